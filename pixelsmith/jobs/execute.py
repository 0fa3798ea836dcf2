"""Run one work item: read its input, run its chain of steps, write its output atomically.

An item without input (a text-to-image run) starts with no image: its first
tool's primary image stays empty and that tool makes the picture.

Inputs, extra images (masks, style images) and outputs are fsspec paths, so a
cluster can read and write shared storage (``s3://...`` once ``s3fs`` is
installed); local paths use :func:`pixelsmith.fsutil.atomic_write`.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pixelsmith.errors import PixelsmithError
from pixelsmith.jobs.manifest import WorkItem
from pixelsmith.tools.base import MAX_SEED


class ItemFailed(Exception):
    """Why an item failed, and whether trying again may help."""

    def __init__(self, reason: str, *, transient: bool):
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class Stopped(Exception):
    """The item's lease was lost or its job cancelled: stop between steps."""


@dataclass
class Outcome:
    checksum: str
    size: int
    seconds: float
    result: dict[str, Any] = field(default_factory=dict)


def read_bytes(path: str) -> bytes:
    """A local path, an http(s) URL (fetched without following redirects: a redirect's target was
    never checked against the allow-list) or any other fsspec URL (``s3://``...)."""
    if "://" not in path:
        with open(path, "rb") as fh:
            return fh.read()
    if path.lower().startswith(("http://", "https://")):
        from pixelsmith.jobs.net import RedirectRefused, http_get

        try:
            return http_get(path)
        except RedirectRefused as exc:
            raise ItemFailed(str(exc), transient=False) from None
    import fsspec

    with fsspec.open(path, "rb") as fh:
        return fh.read()


def write_atomic(path: str, data: bytes, *, sweep: bool = True) -> None:
    """Never leaves a half-written file under the final name, even after kill -9. ``sweep``: first remove the
    temporary files (local or remote) that a try killed between writing and renaming left; it lists the
    output's folder, so a caller that knows no earlier try of this item started passes False."""
    if "://" not in path or path.startswith("file://"):
        from pixelsmith.fsutil import atomic_write, remove_stale_parts

        local = path.removeprefix("file://")
        if sweep:  # the caller holds the item's lease now, so a leftover is nobody's
            remove_stale_parts(local)
        atomic_write(local, data)
        return
    import uuid

    import fsspec

    fs, target = fsspec.core.url_to_fs(path)
    if sweep:
        name = target.rsplit("/", 1)[-1]
        for stale in fs.glob(f"{_glob_escape(target)}.*.part"):
            if _REMOTE_PART.fullmatch(stale.rsplit("/", 1)[-1].removeprefix(name)):
                fs.rm_file(stale)
    tmp = f"{target}.{uuid.uuid4().hex[:8]}.part"
    fs.pipe_file(tmp, data)
    # cp_file and rm_file take one path as it is: mv and rm read their arguments as glob patterns, so an output
    # named "a[1].png" moved "a1.png..." instead. Object stores make the copied object visible whole, at once.
    fs.cp_file(tmp, target)
    fs.rm_file(tmp)


_REMOTE_PART = re.compile(r"\.[0-9a-f]{8}\.part")  # what write_atomic adds to a remote target's name


def _glob_escape(path: str) -> str:
    """``path`` with fsspec's glob characters bracketed, so an output named ``a[1].png`` matches only itself."""
    return re.sub(r"([*?\[\]])", r"[\1]", path)


def exists(path: str) -> bool:
    if "://" not in path:
        import os

        return os.path.exists(path)
    import fsspec

    fs, target = fsspec.core.url_to_fs(path)
    return fs.exists(target)


def item_seed(key: str, step: int) -> int:
    """A seed fixed by the item, so a re-run after a crash writes the very same image."""
    digest = hashlib.sha256(f"{key}#{step}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (MAX_SEED - 1) + 1


def classify(exc: BaseException) -> ItemFailed:
    """Bad input, a bad request or a missing model will fail again: fail now. Anything else
    (I/O hiccups, out of memory, a crashed runtime) is worth another try."""
    if isinstance(exc, ItemFailed):
        return exc
    if isinstance(exc, PixelsmithError):
        return ItemFailed(exc.message, transient=exc.status >= 500 and exc.code != "model_not_installed")
    if isinstance(exc, FileNotFoundError):
        return ItemFailed(f"not found: {exc.filename or exc}", transient=False)
    if isinstance(exc, IsADirectoryError):
        return ItemFailed(f"is a folder: {exc.filename}", transient=False)
    return ItemFailed(f"{type(exc).__name__}: {exc}", transient=True)


def run_item(
    work: WorkItem,
    *,
    keep_going: Callable[[], bool] | None = None,
    progress: Callable[[int, int, str, int], None] | None = None,
    first_try: bool = False,
) -> Outcome:
    """Run the chain and write the output; raises :class:`ItemFailed` or :class:`Stopped`.
    ``progress(done, total, unit, step)`` hears the recipe of the chain's step number ``step`` report
    (tiles, levels, steps...); it may raise :class:`Stopped` to end the work early. ``first_try``: no earlier
    try of this item started, so none can have left a temporary file to sweep (the write skips listing the
    output folder: one listing per item is O(n^2) over a large batch). The store's attempt count says so; it
    restarts at 1 only when a failed item is retried on a re-run, so the temporary file of a quarantined item's
    last killed try can stay (hidden, never under the output's name)."""
    from pixelsmith import core
    from pixelsmith.tools import get_tool

    started = time.perf_counter()
    steps_meta: list[dict[str, Any]] = []
    try:
        current: Any = read_bytes(work.input) if work.input is not None else None
        out = None
        for index, step in enumerate(work.steps):
            if keep_going is not None and not keep_going():
                raise Stopped()
            tool = get_tool(step.tool)
            model = tool.request
            fields = dict(step.fields)
            for name in model.image_fields():
                if isinstance(fields.get(name), str):
                    fields[name] = read_bytes(fields[name])
            primary = model.primary_image()
            if primary and current is not None:
                fields[primary] = current
            if "seed" in model.model_fields and not fields.get("seed"):
                fields["seed"] = item_seed(work.key, index)
            last = index == len(work.steps) - 1
            # Only the last step's image is written: the others are not encoded at all.
            out = core.run(tool.name, tool.parse(fields), progress=_reporter(progress, index), encoded=last)
            steps_meta.append(
                {
                    "tool": tool.name,
                    "engine": out.engine,
                    "seconds": round(out.seconds, 3),
                    "size": list(out.image.size),
                    **({"seed": out.seed} if out.seed else {}),
                }
            )
            current = out.image  # the next step takes the PIL image: no re-encode between steps
        assert out is not None
        data = out.data
        if keep_going is not None and not keep_going():
            raise Stopped()
        write_atomic(work.output, data, sweep=not first_try)
    except (Stopped, ItemFailed):
        raise
    except Exception as exc:  # noqa: BLE001 - every failure is recorded with its reason
        raise classify(exc) from exc
    return Outcome(
        hashlib.sha256(data).hexdigest(),
        len(data),
        time.perf_counter() - started,
        {"steps": steps_meta, "format": out.format, "size": list(out.image.size)},
    )


def _reporter(
    progress: Callable[[int, int, str, int], None] | None, step: int
) -> Callable[[int, int, str], None] | None:
    """core.run's (done, total, unit) hook, tagged with the chain's step number."""
    if progress is None:
        return None
    return lambda done, total, unit: progress(done, total, unit, step)
