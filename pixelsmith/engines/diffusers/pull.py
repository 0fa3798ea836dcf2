"""``pixelsmith models pull NAME|TOOL|all``: install hub models for the diffusers engine.

Three ways in, one result (the model's folder checked and marked ``.complete``):
- from the Hugging Face hub with ``huggingface_hub.snapshot_download`` (a token
  for gated repositories; interrupted downloads resume; LFS files are checked
  against the sha256 the hub publishes);
- offline (``HF_HUB_OFFLINE=1``) from an already populated Hugging Face cache:
  the model's folder gets symbolic links to the cached snapshot's files, no copy;
- ``--from PATH``: a local folder (a copy made elsewhere, a mirror, a USB disk),
  hard-linked when on the same file system, else copied. PATH may hold the model
  itself or one sub-folder per model name (for ``pull --from DIR all``).
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
from collections.abc import Callable

from pixelsmith.engines import ENGINES
from pixelsmith.models.catalog import CATALOG, HubRepo, get_model, is_installed, model_path
from pixelsmith.models.fetch import sha256_file
from pixelsmith.models.hub import KIND, LAYOUT

Log = Callable[[str], None]


class PullError(Exception):
    pass


def resolve(targets: list[str]) -> list[str]:
    """Model names for NAME|TOOL|all (tools expand to the models their diffusers recipe needs)."""
    from pixelsmith.tools import TOOLS, all_tools, get_tool

    all_tools()
    names: list[str] = []
    for target in targets or ["all"]:
        if target == "all":
            names += [n for n, s in CATALOG.items() if isinstance(s.source, HubRepo)]
        elif target in CATALOG:
            names.append(target)
        else:
            try:
                tool = get_tool(target)
            except Exception:
                raise PullError(
                    f"{target!r} is neither a model nor a tool; models: {', '.join(sorted(CATALOG))}; "
                    f"tools: {', '.join(TOOLS)}"
                ) from None
            recipe = ENGINES["diffusers"].recipe(tool.name)
            if recipe is None:
                raise PullError(f"{tool.name} has no diffusers recipe")
            names += list(recipe.models)
    return list(dict.fromkeys(names))


def pull(
    targets: list[str],
    *,
    source: str | os.PathLike | None = None,
    token: str | None = None,
    revision: str | None = None,
    force: bool = False,
    log: Log = print,
) -> list[str]:
    """Install each target; returns the model names now installed."""
    done = []
    names = resolve(targets)
    for name in names:
        spec = get_model(name)
        if source is not None and len(names) > 1 and not (pathlib.Path(source) / name).is_dir():
            log(f"{name}: no {name}/ folder in {source}; skipped")
            continue
        if spec.engine == "embedded":
            from pixelsmith.models.fetch import fetch_embedded

            fetch_embedded([name], log=log)
        elif is_installed(name) and not force:
            log(f"{name}: already installed")
        elif source is not None:
            import_folder(name, pathlib.Path(source), log)
        elif offline():
            from_cache(name, revision, log)
        else:
            download(name, token, revision, log)
        done.append(name)
    return done


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check_layout(name: str, folder: pathlib.Path) -> list[str]:
    """What the folder lacks to be a ``name`` model (empty when it is complete)."""
    wanted = LAYOUT[KIND[name]]
    return [" or ".join(alts) for alts in wanted if not any((folder / a).exists() for a in alts)]


def _mark(name: str, info: dict) -> None:
    folder = model_path(name)
    folder.mkdir(parents=True, exist_ok=True)
    info = {**info, "installed_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
    tmp = folder / ".complete.tmp"
    tmp.write_text(json.dumps(info, indent=2))
    tmp.replace(folder / ".complete")


def _clear(name: str) -> pathlib.Path:
    folder = model_path(name)
    (folder / ".complete").unlink(missing_ok=True)
    return folder


def _replace(name: str) -> pathlib.Path:
    """Unmark and remove the model's folder, for an import that rebuilds it whole (downloads resume instead)."""
    folder = _clear(name)
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def import_folder(name: str, path: pathlib.Path, log: Log) -> None:
    src = path / name if (path / name).is_dir() else path
    if not src.is_dir():
        raise PullError(f"{name}: {src} is not a folder")
    gaps = check_layout(name, src)
    if gaps:
        raise PullError(f"{name}: {src} does not look like this model; missing {', '.join(gaps)}")
    dest = _replace(name)
    shutil.copytree(src, dest, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".complete"))
    _mark(name, {"source": "folder", "path": str(src.resolve())})
    log(f"{name}: imported from {src}")


def _link_tree(src: pathlib.Path, dest: pathlib.Path) -> None:
    """dest mirrors src with symbolic links to its files (no copy; sizes on disk still add up)."""
    for path in src.rglob("*"):
        target = dest / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path)


def _link_or_copy(src: str, dst: str) -> str:
    try:
        os.link(src, dst)  # no second copy of multi-GB weights on the same disk
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _hub(name: str) -> HubRepo:
    source = get_model(name).source
    if not isinstance(source, HubRepo):
        raise PullError(f"{name} is not a hub model")
    return source


def from_cache(name: str, revision: str | None, log: Log) -> None:
    """HF_HUB_OFFLINE: link to the snapshot already in the Hugging Face cache, without copying it."""
    from huggingface_hub import snapshot_download

    repo = _hub(name)
    try:
        snap = pathlib.Path(
            snapshot_download(
                repo.repo_id,
                revision=revision or repo.revision,
                allow_patterns=list(repo.allow_patterns) or None,
                local_files_only=True,
                cache_dir=os.environ.get("HF_HUB_CACHE"),
            )
        )
    except Exception as exc:  # LocalEntryNotFoundError and friends
        raise PullError(
            f"{name}: not in the Hugging Face cache and HF_HUB_OFFLINE is set "
            f"({type(exc).__name__}); run the pull once with internet, or use --from PATH"
        ) from None
    gaps = check_layout(name, snap)
    if gaps:
        raise PullError(f"{name}: the cached snapshot {snap} lacks {', '.join(gaps)}")
    folder = _replace(name)
    _link_tree(snap, folder)
    _mark(name, {"source": "hf-cache", "repo": repo.repo_id, "snapshot": str(snap)})
    log(f"{name}: linked to the cached snapshot {snap}")


def download(name: str, token: str | None, revision: str | None, log: Log) -> None:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    repo = _hub(name)
    rev = revision or repo.revision
    folder = _clear(name)
    folder.mkdir(parents=True, exist_ok=True)
    log(f"{name}: downloading {repo.repo_id}@{rev} into {folder} (resumable)")
    try:
        info = HfApi(token=token).model_info(repo.repo_id, revision=rev, files_metadata=True)
        snapshot_download(
            repo.repo_id,
            revision=info.sha,
            allow_patterns=list(repo.allow_patterns) or None,
            local_dir=folder,
            token=token,
        )
    except GatedRepoError:
        raise PullError(
            f"{name}: {repo.repo_id} is gated: accept its licence at https://huggingface.co/"
            f"{repo.repo_id}, then pass --token or set HF_TOKEN (or run `hf auth login`)"
        ) from None
    except RepositoryNotFoundError:
        raise PullError(f"{name}: {repo.repo_id} not found (or gated and no token given)") from None
    except Exception as exc:  # noqa: BLE001 - no network, DNS, TLS, a proxy, a hub error: one line, not a traceback
        from huggingface_hub import constants

        reason = _reason(exc)
        raise PullError(
            f"{name}: cannot download {repo.repo_id} from {constants.ENDPOINT}: {reason}. Check the network "
            "(or HF_ENDPOINT / HTTPS_PROXY); offline, use HF_HUB_OFFLINE=1 with a populated HF cache or "
            "`--from FOLDER`; a re-run resumes"
        ) from exc
    bad = verify(folder, info, log)
    if bad:
        raise PullError(f"{name}: sha256 mismatch for {', '.join(bad)}; run the pull again to re-download them")
    gaps = check_layout(name, folder)
    if gaps:
        raise PullError(f"{name}: download incomplete, missing {', '.join(gaps)}")
    _mark(name, {"source": "hub", "repo": repo.repo_id, "revision": info.sha})
    log(f"{name}: installed ({_size(folder) / 1e9:.2f} GB)")


def _reason(exc: BaseException) -> str:
    """The innermost cause of a network failure, in a few words (not the 99-line chain)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    text = str(exc).splitlines()[0] if str(exc) else ""
    text = text.split("] ", 1)[-1] if text.startswith("[Errno") else text
    return f"{type(exc).__name__}{': ' + text[:160] if text else ''}"


def verify(folder: pathlib.Path, info, log: Log) -> list[str]:
    """Files whose sha256 differs from what the hub publishes for them (LFS files only)."""
    bad = []
    for sib in info.siblings or []:
        lfs = getattr(sib, "lfs", None)
        path = folder / sib.rfilename
        if not lfs or not path.is_file():
            continue
        if sha256_file(path) != lfs.sha256:
            path.unlink()
            bad.append(sib.rfilename)
        else:
            log(f"  ok {sib.rfilename}")
    return bad


def _size(folder: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
