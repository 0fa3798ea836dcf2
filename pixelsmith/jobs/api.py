"""The jobs HTTP API: submit a manifest or uploaded files with steps, follow it, fetch results.

    POST /v1/jobs                       JSON manifest, or multipart files + steps (Idempotency-Key honoured);
                                        kind=run: one interactive item, claimed before batch items; without
                                        files when its tool needs no input image (text-to-image)
    GET  /v1/jobs                       the caller's jobs (runs with their item)
    GET  /v1/jobs/{id}                  progress counts, rate, ETA, queue position, running items' progress
    GET  /v1/jobs/{id}/items            per-item state, attempts, error, checksum, timings, progress, queue
    GET  /v1/jobs/{id}/items/{item}/inputs/{name}   an uploaded input ("input") or image field (e.g. "mask")
    GET  /v1/jobs/{id}/results          listing (JSON) or ?format=zip
    GET  /v1/jobs/{id}/results/{item}   one output
    POST /v1/jobs/{id}/cancel

A key sees only its own jobs (others answer 404). Paths in a JSON manifest are
refused unless they start with a prefix the operator allowed
(``PIXELSMITH_JOBS_ALLOW``, comma-separated folders or URL prefixes such as
``s3://bucket/in/``): a caller must not make the server read its files or
fetch arbitrary URLs. Uploads always work. Those rules live in
:mod:`pixelsmith.jobs.paths`; this module is the HTTP shape around them, and
no image logic lives here.

The handlers are module-level; :func:`mount` adds them to the server app with
the app's one :class:`~pixelsmith.jobs.service.JobService` (``app.state.jobs``)
and its path policy (``app.state.job_paths``). Typed errors are raised, and
rendered by the app's exception handler (:func:`error_response` is the jobs
API's error shape).
"""

from __future__ import annotations

import asyncio
import io
import mimetypes
import os
import pathlib
import re
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pixelsmith.api.auth import ApiKey, current_key
from pixelsmith.errors import InvalidRequest, NotFound, PixelsmithError
from pixelsmith.jobs.manifest import ManifestError, expand
from pixelsmith.jobs.paths import PathPolicy, owned_job, uploaded_input
from pixelsmith.jobs.service import JobService
from pixelsmith.jobs.store import PRIORITY_BATCH, PRIORITY_INTERACTIVE, ItemRecord, JobStatus
from pixelsmith.jobs.webhooks import EVENT, SIGNATURE_HEADER, check_destination

MAX_FILES = 1000
MAX_ITEMS_ENV = "PIXELSMITH_MAX_JOB_ITEMS"
DEFAULT_MAX_ITEMS = 2000  # items per job: a bigger batch is several jobs (or the batch CLI)
# kind=run: a person waits at the studio for this one image, so it goes before batch work
KINDS = {"batch": PRIORITY_BATCH, "run": PRIORITY_INTERACTIVE}
SHOWN_META = (
    "webhook",
    "webhook_sent",
    "webhook_delivered",
    "webhook_attempts",
    "webhook_error",
    "kind",
    "tool",
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
secret_router = APIRouter(tags=["jobs"])


def mount(app: FastAPI, service: JobService, policy: PathPolicy | None = None) -> None:
    """Serve the jobs API on ``app`` from ``service``; ``policy`` defaults to ``PIXELSMITH_JOBS_ALLOW``."""
    app.state.jobs = service
    no_redirects_in_fsspec()
    app.state.job_paths = policy or PathPolicy.from_env(service.root)
    app.include_router(router)
    app.include_router(secret_router)


def no_redirects_in_fsspec() -> None:
    """fsspec's HTTP filesystem (listing a folder URL while a manifest is expanded) follows no redirect
    in the server process: a redirect's target was never checked against the allow-list."""
    import fsspec.config

    for protocol in ("http", "https"):
        fsspec.config.conf.setdefault(protocol, {})["allow_redirects"] = False


def error_response(exc: PixelsmithError) -> JSONResponse:
    """The jobs API's (and the server's own JSON routes') error shape: ``{error, message, details}``."""
    return JSONResponse({"error": exc.code, "message": exc.message, "details": exc.details}, status_code=exc.status)


# -- dependencies ---------------------------------------------------------------------------------------
def job_service(request: Request) -> JobService:
    return request.app.state.jobs


def job_paths(request: Request) -> PathPolicy:
    return request.app.state.job_paths


def owner_of(key: ApiKey | None = Depends(current_key)) -> str | None:
    """The caller's key id (None when the server runs without auth); every job is filed under it."""
    return key.id if key is not None else None


# -- bodies ---------------------------------------------------------------------------------------------
def status_body(status: JobStatus, svc: JobService | None = None, paths: PathPolicy | None = None) -> dict[str, Any]:
    body = status.as_dict()
    body["meta"] = {k: v for k, v in body["meta"].items() if k in SHOWN_META}
    if svc is not None and paths is not None and status.meta.get("kind") == "run":
        # a studio run: its one item, for the history
        body["item"] = next(iter(item_bodies(svc, paths, status, svc.store.items(status.id, limit=1))), None)
    return body


def item_bodies(
    svc: JobService, paths: PathPolicy, status: JobStatus, rows: Iterable[ItemRecord]
) -> list[dict[str, Any]]:
    """Items as the API shows them: result URL, uploaded inputs' URLs, queue position when queued."""
    rows = list(rows)
    ahead = svc.store.queue_ahead(r.id for r in rows if r.state == "queued")
    out = []
    for r in rows:
        d = shown(r.as_dict(), svc.root)
        base = f"/v1/jobs/{status.id}/items/{r.id}/inputs"
        d["inputs"] = {name: f"{base}/{name}" for name in paths.uploaded_inputs(status, r)}
        if r.state == "done":
            d["url"] = f"/v1/jobs/{status.id}/results/{r.id}"
        if r.id in ahead:
            d["ahead"] = ahead[r.id]
        out.append(d)
    return out


def shown(value: Any, root: pathlib.Path) -> Any:
    """``value`` (an item's fields, an error message...) with the server's own paths made relative to
    the job: ``<root>/inputs/<tag>/a.png`` is ``inputs/a.png``, ``<root>/outputs/<tag>/b.png`` is
    ``outputs/b.png``. A caller never sees where the server keeps its data; paths the caller gave
    (an allowed folder, a URL) are shown as given."""
    if isinstance(value, str):
        if str(root) not in value:
            return value
        text = _job_folder(root).sub(r"\1/", value)
        return text.replace(str(root) + os.sep, "").replace(str(root), ".")
    if isinstance(value, dict):
        return {k: shown(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v, root) for v in value]
    return value


def _job_folder(root: pathlib.Path) -> re.Pattern[str]:
    return re.compile(re.escape(str(root)) + r"/(inputs|outputs)/[^/\s'\"]+/")


# -- routes ---------------------------------------------------------------------------------------------
@router.post("", status_code=201, summary="Submit a job: a JSON manifest, or multipart files + steps")
async def submit(
    request: Request,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    idem = request.headers.get("idempotency-key") or None
    tag = uuid.uuid4().hex
    doc, webhook, spooled = await _read_submission(request, svc, tag)
    # Parsing, expanding and checking a manifest, and writing its items, cost time in proportion to
    # its size: all of it runs in a worker thread, so the event loop (and /healthz) never waits on it.
    body, status = await asyncio.to_thread(_submit, svc, paths, owner, idem, tag, doc, webhook, spooled)
    return JSONResponse(body, status_code=status)


def max_job_items(environ: Mapping[str, str] | None = None) -> int:
    """Items one job may have (``PIXELSMITH_MAX_JOB_ITEMS``, default 2000; a bad value: the default)."""
    raw = (os.environ if environ is None else environ).get(MAX_ITEMS_ENV, "")
    try:
        return max(1, int(raw)) if raw.strip() else DEFAULT_MAX_ITEMS
    except ValueError:
        return DEFAULT_MAX_ITEMS


def _check_item_count(n: int) -> None:
    cap = max_job_items()
    if n > cap:
        raise InvalidRequest.one(
            "items",
            f"{n} items is over this server's limit of {cap} per job ({MAX_ITEMS_ENV}); split the work into jobs",
            code="too_many_items",
        )


def _submit(
    svc: JobService,
    paths: PathPolicy,
    owner: str | None,
    idem: str | None,
    tag: str,
    doc: Any,
    webhook: Any,
    spooled: set[str],
) -> tuple[dict[str, Any], int]:
    """The blocking part of a submission (runs in a worker thread): the response body and status."""
    if idem:
        existing = svc.store.find_job(idem, owner)
        if existing:
            return {**status_body(svc.store.job(existing)), "new": False}, 200
    if isinstance(doc, bytes):  # a JSON body, parsed here rather than on the event loop
        doc, webhook = _parse_manifest(doc)
    raw_items = doc.get("items")
    if isinstance(raw_items, list):
        _check_item_count(len(raw_items))  # before expanding: a huge manifest costs nothing more
    kind = str(doc.pop("kind", None) or "batch")
    if kind not in KINDS:
        raise InvalidRequest.one("kind", f"must be one of {', '.join(KINDS)}")
    if webhook is not None:  # an allowed (or public) destination, in its canonical form
        webhook = check_destination(webhook)
    out_dir = doc.pop("output", None)
    paths.check_output_dir(out_dir)
    paths.canonical_urls(doc)  # URLs checked and fetched in one canonical spelling
    paths.check_raw_inputs(doc.get("items"), spooled)  # before expanding: no listing of folders we may not read
    out_root = out_dir or str(svc.output_dir(tag))
    if kind == "run" and not doc.get("items"):
        # no image given: one item without input (its tool makes the image, e.g. text-to-image),
        # named after the job's tag; a tool that needs an image is refused by expand
        doc["items"] = [{"label": tag[:8]}]
    manifest = expand(doc, str(svc.root), output=out_root, check_tools=False, inputless=kind == "run")
    _check_item_count(len(manifest.items))  # globs and folders may name more files than items given
    paths.check_manifest(manifest, spooled, out_root)  # every path: an upload of this request, or allowed
    if kind == "run" and len(manifest.items) != 1:
        raise InvalidRequest.one("files", "a run (kind=run) is one image; submit more as a batch")
    meta: dict[str, Any] = {
        "kind": "run" if kind == "run" else "api",
        **({"webhook": webhook} if webhook else {}),
        **({"spool": tag} if spooled else {}),
    }
    if kind == "run":
        meta["tool"] = manifest.items[0].steps[-1].tool if manifest.items[0].steps else ""
    job_id, created = svc.submit(
        manifest.items,
        owner=owner,
        idempotency_key=idem,
        title=str(doc.get("title") or "job"),
        meta=meta,
        priority=KINDS[kind],
    )
    return {**status_body(svc.store.job(job_id), svc, paths), "new": created}, 201 if created else 200


@router.get("", summary="The caller's jobs")
def list_jobs(
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    mine = [j for j in svc.store.jobs(owner=owner) if j.owner == owner]
    return JSONResponse({"jobs": [status_body(j, svc, paths) for j in mine]})


@router.get("/{job_id}", summary="Progress: counts per state, rate, ETA, queue position, running items")
def get_job(
    job_id: str,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    status = owned_job(svc.store, job_id, owner)
    body = status_body(status, svc, paths)
    first_queued = svc.store.items(job_id, state="queued", limit=1)
    ahead = svc.store.queue_ahead(r.id for r in first_queued)
    # ahead: queued items (any job) claimed before this job's next one; running: items being worked on now
    body["queue"] = {"ahead": next(iter(ahead.values()), None), "running": svc.store.running_count()}
    body["progress"] = [
        {"item": r.id, **r.progress} for r in svc.store.items(job_id, state="running", limit=100) if r.progress
    ]
    return JSONResponse(body)


@router.get("/{job_id}/items", summary="Items: state, attempts, error, checksum, timings")
def get_items(
    job_id: str,
    state: str | None = None,
    offset: int = 0,
    limit: int = 100,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    status = owned_job(svc.store, job_id, owner)
    rows = svc.store.items(job_id, state=state, offset=max(0, offset), limit=max(1, min(limit, 1000)))
    return JSONResponse(
        {
            "job": job_id,
            "total": status.total,
            "items": item_bodies(svc, paths, status, rows),
            "running": svc.store.running_count(),
        }
    )


@router.get(
    "/{job_id}/items/{item_id}/inputs/{name}",
    summary="An item's uploaded input ('input') or uploaded image field (e.g. 'mask')",
)
def input_file(
    job_id: str,
    item_id: int,
    name: str,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    path = uploaded_input(paths, svc.store, job_id, item_id, name, owner)
    # the spool's names: 0000-<uploaded name> for inputs, field-<name><ext> for image fields
    shown = path.name.split("-", 1)[1] if path.name[:4].isdigit() and "-" in path.name else path.name
    return Response(
        path.read_bytes(),
        media_type=mimetypes.guess_type(shown)[0] or "application/octet-stream",
        headers={"content-disposition": f'inline; filename="{shown}"'},
    )


@router.get("/{job_id}/results", summary="Finished outputs: a listing, or ?format=zip")
def results(
    job_id: str,
    format: str = "json",
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
) -> Response:
    owned_job(svc.store, job_id, owner)
    done = svc.store.items(job_id, state="done")
    if format == "zip":
        from pixelsmith.jobs.execute import read_bytes

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # images are compressed already
            for r in done:
                zf.writestr(_name_in(r), read_bytes(r.output))
        return StreamingResponse(
            iter([buf.getvalue()]),
            media_type="application/zip",
            headers={"content-disposition": f'attachment; filename="{job_id}.zip"'},
        )
    return JSONResponse(
        {
            "job": job_id,
            "results": [
                {
                    "item": r.id,
                    "name": _name_in(r),
                    "checksum": r.checksum,
                    "size": r.size,
                    "output": shown(r.output, svc.root),
                    "url": f"/v1/jobs/{job_id}/results/{r.id}",
                }
                for r in done
            ],
        }
    )


@router.get("/{job_id}/results/{item_id}", summary="One finished output")
def result_file(
    job_id: str,
    item_id: int,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
) -> Response:
    owned_job(svc.store, job_id, owner)
    item = svc.store.item(item_id)
    if item.job_id != job_id or item.state != "done":
        raise NotFound(f"item {item_id} of job {job_id} has no result (yet)")
    from pixelsmith.imaging.encode import mime_for
    from pixelsmith.jobs.execute import read_bytes

    fmt = item.result.get("format", "png")
    return Response(
        read_bytes(item.output), media_type=mime_for(fmt), headers={"x-checksum-sha256": item.checksum or ""}
    )


@router.post("/{job_id}/cancel", summary="Cancel: queued items stop, running ones finish")
def cancel(
    job_id: str,
    owner: str | None = Depends(owner_of),
    svc: JobService = Depends(job_service),
    paths: PathPolicy = Depends(job_paths),
) -> Response:
    owned_job(svc.store, job_id, owner)
    n = svc.store.cancel(job_id)
    svc.poke()
    return JSONResponse({"cancelled": n, **status_body(svc.store.job(job_id), svc, paths)})


@secret_router.get("/v1/webhook-secret", summary="The caller's webhook signing secret and how signatures are made")
def webhook_secret(owner: str | None = Depends(owner_of), svc: JobService = Depends(job_service)) -> Response:
    return JSONResponse(
        {
            "secret": svc.webhook_secret(owner),
            "header": SIGNATURE_HEADER,
            "signature": "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.' + raw body)>",
            "events": [EVENT],
        },
        headers={"cache-control": "no-store"},
    )


def _name_in(item: ItemRecord) -> str:
    return pathlib.PurePath(item.output).name if "://" not in item.output else item.output.rsplit("/", 1)[-1]


def _parse_manifest(body: bytes) -> tuple[dict[str, Any], Any]:
    """A JSON body -> (manifest document, its webhook)."""
    from pixelsmith.api.bodies import parse_json

    doc = parse_json(body)  # 400 when not JSON or nested too deeply (no RecursionError)
    if not isinstance(doc, dict):
        raise ManifestError("the body must be a manifest object with 'items' and 'steps'")
    webhook = doc.pop("webhook", None)
    return doc, webhook


async def _read_submission(request: Request, svc: JobService, tag: str) -> tuple[dict[str, Any] | bytes, Any, set[str]]:
    """JSON: the body's bytes (parsed in the worker thread by :func:`_submit`). Multipart: files
    (+ extra image fields by name) and a steps JSON (no files: a run whose tool makes the image).
    Also returns the paths this request uploaded (the only local paths it may use unchecked)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return await request.body(), None, set()
    # a plain urlencoded form carries no files, but a text-to-image run needs none
    if not ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise InvalidRequest.one("", "send a JSON manifest or multipart/form-data with files and steps")
    form = await request.form()
    files = [f for f in form.getlist("files") if hasattr(f, "read")]
    if not files and form.get("kind") != "run":  # a run may make its image (text-to-image); a batch needs files
        raise InvalidRequest.one("files", "upload one or more images as 'files'")
    if len(files) > MAX_FILES:
        raise InvalidRequest.one("files", f"at most {MAX_FILES} files per job")
    from pixelsmith.api.bodies import parse_json

    steps = parse_json(str(form.get("steps") or "null"), field="steps", what="the steps")
    if isinstance(steps, dict):
        steps = [steps]
    extras: dict[str, str] = {}
    for name, value in form.multi_items():
        if name not in ("files", "steps", "name", "webhook", "title", "kind") and hasattr(value, "read"):
            ext = pathlib.PurePath(_safe(getattr(value, "filename", None) or "")).suffix[:8]
            extras[name] = await asyncio.to_thread(svc.spool, tag, f"field-{_safe(name)}{ext}", await value.read())
    items = []
    for n, f in enumerate(files):
        filename = _safe(getattr(f, "filename", None) or f"upload-{n}.png")
        items.append({"input": await asyncio.to_thread(svc.spool, tag, f"{n:04d}-{filename}", await f.read())})
    if isinstance(steps, list):  # uploaded extra images (e.g. mask) fill the steps' image fields of that name
        for step in steps:
            if isinstance(step, dict):
                for name, path in extras.items():
                    step.setdefault(name, path)
    doc = {
        "items": items,
        "steps": steps,
        "name": str(form.get("name") or "{index:04d}-{stem}-{tool}.{ext}"),
        "title": str(form.get("title") or "upload"),
        "kind": form.get("kind"),
    }
    return doc, form.get("webhook"), {i["input"] for i in items} | set(extras.values())


def _safe(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.path.basename(name))
    return keep.lstrip(".")[:100] or "file"
