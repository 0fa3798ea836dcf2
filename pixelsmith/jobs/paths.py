"""What paths and URLs a job submitted over HTTP may use, and who may see a job and its uploads.

The jobs API (:mod:`pixelsmith.jobs.api`) asks this module, and nothing else, before a
submission touches the server's disk or the network:

* A path in a JSON manifest (an input, an image field such as ``mask``, the output
  folder) is refused unless it lies under a prefix the operator allowed
  (``PIXELSMITH_JOBS_ALLOW``: comma-separated folders or URL prefixes such as
  ``s3://bucket/in/``). A caller must not make the server read its files or fetch
  arbitrary URLs.
* Files this very request uploaded (spooled under ``<root>/inputs/<tag>/``) are always
  allowed, and an output name template cannot leave the job's output folder.
* A job is visible only to the key that created it; another key's job answers
  "not found" (its existence is not revealed). An item's uploaded inputs are served
  only when they are files the job's own upload spooled, never a manifest's path or
  another job's spool.

No HTTP here: every rule is a plain function of paths, so it is tested directly.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pixelsmith.errors import Forbidden, NotFound
from pixelsmith.jobs.manifest import Manifest, resolve
from pixelsmith.jobs.net import normal_url
from pixelsmith.jobs.store import ItemRecord, JobStatus, JobStore

ALLOW_ENV = "PIXELSMITH_JOBS_ALLOW"


def allowed_prefixes(environ: Mapping[str, str] | None = None) -> list[str]:
    """The operator's allowed folders and URL prefixes (``PIXELSMITH_JOBS_ALLOW``)."""
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def _normal(path: str) -> str:
    """A local path resolved (symlinks, ``..``); a URL in its canonical form (:func:`normal_url`:
    scheme and host case, default port, percent-encoding; dot segments are refused)."""
    return normal_url(path) if "://" in path else str(pathlib.Path(path).resolve())


def _tool_image_fields(tool: str) -> Iterable[str]:
    from pixelsmith.tools import get_tool

    return get_tool(tool).request.image_fields()


@dataclass(frozen=True)
class PathPolicy:
    """The rules for one job service: ``root`` is its folder (manifest-relative paths resolve there)."""

    root: pathlib.Path
    prefixes: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, root: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> PathPolicy:
        return cls(pathlib.Path(root), tuple(allowed_prefixes(environ)))

    def allowed(self, path: str) -> bool:
        """Whether ``path`` (a path or URL) is one of the allowed prefixes or lies under one, both
        normalised first. A URL with a dot segment is never allowed (:meth:`check` says why)."""
        try:
            norm = _normal(path)
        except Forbidden:
            return False
        for prefix in self.prefixes:
            if ("://" in prefix) != ("://" in norm):
                continue
            p = _normal(prefix)
            if norm == p or norm.startswith(p.rstrip("/") + "/"):
                return True
        return False

    def check(self, path: str, what: str) -> None:
        if "://" in path:
            normal_url(path, what)  # a URL that could mean something else than its text: refused, saying why
        if not self.allowed(path):
            raise Forbidden(f"{what} {path!r} is not under an allowed prefix ({ALLOW_ENV}); upload the files instead")

    def check_output_dir(self, out_dir: str | None) -> None:
        """A manifest's own ``output`` folder must be allowed (the default, the job's folder, always is)."""
        if out_dir:
            self.check(out_dir, "output")

    def canonical_urls(self, doc: dict[str, Any]) -> None:
        """Rewrite, in place, the URLs of a manifest document (item inputs, steps' fields) to their
        canonical form (:func:`normal_url`), so what is checked is exactly what is fetched; a URL with
        a dot segment is refused here, with its reason."""

        def fix(value: Any, what: str) -> Any:
            return normal_url(value, what) if isinstance(value, str) and "://" in value else value

        def fix_steps(steps: Any) -> None:
            for step in steps if isinstance(steps, list) else []:
                if isinstance(step, dict):
                    for name in list(step):
                        if name != "tool":
                            step[name] = fix(step[name], name)

        fix_steps(doc.get("steps"))
        items: Any = doc.get("items")
        for n, raw in enumerate(items if isinstance(items, list) else []):
            if isinstance(raw, dict):
                if "input" in raw:
                    raw["input"] = fix(raw["input"], "input")
                fix_steps(raw.get("steps"))
            else:
                items[n] = fix(raw, "input")

    def check_raw_inputs(self, raw_items: Any, spooled: set[str]) -> None:
        """The manifest's ``items`` before they are expanded, so no folder we may not read is listed."""
        for raw in raw_items or []:
            given = raw.get("input") if isinstance(raw, dict) else raw
            if isinstance(given, str):
                path = resolve(str(self.root), given)
                if path not in spooled:
                    self.check(path, "input")

    def check_manifest(
        self,
        manifest: Manifest,
        spooled: set[str],
        out_root: str,
        image_fields: Callable[[str], Iterable[str]] = _tool_image_fields,
    ) -> None:
        """Every expanded item: its input and image fields are this request's uploads or allowed,
        and its output lies inside the job's output folder (a name template with ``../`` is refused)."""
        for item in manifest.items:
            if item.input is not None and item.input not in spooled:
                self.check(item.input, "input")
            target = _normal(item.output)
            if not target.startswith(out_root.rstrip("/") + "/"):
                raise Forbidden(f"output {item.output!r} is outside the job's output folder")
            for step in item.steps:
                for name in image_fields(step.tool):
                    value = step.fields.get(name)
                    if isinstance(value, str) and value not in spooled:
                        self.check(value, name)

    # -- uploads -----------------------------------------------------------------------------------
    def spool_dir(self, tag: str) -> pathlib.Path:
        return self.root / "inputs" / tag

    def spooled(self, tag: str | None, path: Any) -> pathlib.Path | None:
        """``path`` as a file this job's upload spooled (directly under ``inputs/<tag>/``), or None for
        any other path: a manifest's own files, another job's uploads, anything reached through ``..``."""
        if not tag or not isinstance(path, str) or "://" in path:
            return None
        folder = self.spool_dir(tag).resolve()
        target = pathlib.Path(path).resolve()
        return target if target.parent == folder and target.is_file() else None

    def uploaded_inputs(self, status: JobStatus, item: ItemRecord) -> dict[str, pathlib.Path]:
        """The files the job's upload spooled for the item, by name: ``input`` and its image fields
        (``mask``...). A job without a spool (a JSON manifest) has none."""
        tag = status.meta.get("spool")
        candidates = [("input", item.input)] + [
            (name, value)
            for step in item.steps
            for name, value in step.items()
            if name != "tool" and isinstance(value, str)
        ]
        found: dict[str, pathlib.Path] = {}
        for name, value in candidates:
            if name not in found and (path := self.spooled(tag, value)) is not None:
                found[name] = path
        return found


# -- owners -------------------------------------------------------------------------------------------
def owned_job(store: JobStore, job_id: str, owner: str | None) -> JobStatus:
    """The job, if ``owner`` made it; NotFound otherwise, the same as for a job that does not exist."""
    try:
        status = store.job(job_id)
    except NotFound:
        raise NotFound(f"no job {job_id}") from None
    if status.owner != owner:
        raise NotFound(f"no job {job_id}")  # another key's job: do not reveal it exists
    return status


def owned_item(store: JobStore, status: JobStatus, item_id: int) -> ItemRecord:
    """An item of this (owned) job; NotFound for an item of another job."""
    item = store.item(item_id)
    if item.job_id != status.id:
        raise NotFound(f"no item {item_id} in job {status.id}")
    return item


def uploaded_input(
    policy: PathPolicy, store: JobStore, job_id: str, item_id: int, name: str, owner: str | None
) -> pathlib.Path:
    """The uploaded file ``name`` of an item, for its owner only; NotFound for anything else."""
    status = owned_job(store, job_id, owner)
    item = owned_item(store, status, item_id)
    path = policy.uploaded_inputs(status, item).get(name)
    if path is None:  # only files this job's upload spooled: never a manifest's or another job's path
        raise NotFound(f"item {item_id} has no uploaded {name!r}")
    return path
