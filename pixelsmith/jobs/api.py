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
fetch arbitrary URLs. Uploads always work. No image logic lives here.
"""

from __future__ import annotations

import io
import os
import pathlib
import uuid
import zipfile
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pixelsmith.errors import Forbidden, InvalidRequest, NotFound, PixelsmithError
from pixelsmith.jobs.manifest import ManifestError, expand, resolve
from pixelsmith.jobs.service import JobService
from pixelsmith.jobs.store import PRIORITY_BATCH, PRIORITY_INTERACTIVE

MAX_FILES = 1000
# kind=run: a person waits at the studio for this one image, so it goes before batch work
KINDS = {"batch": PRIORITY_BATCH, "run": PRIORITY_INTERACTIVE}


def _no_auth() -> None:
    return None


def _key_dependency() -> Callable[..., Any]:
    try:
        from pixelsmith.api.auth import current_key
    except ModuleNotFoundError:
        return _no_auth
    return current_key


def allowed_prefixes() -> list[str]:
    raw = os.environ.get("PIXELSMITH_JOBS_ALLOW", "")
    return [p.strip() for p in raw.split(",") if p.strip()]


def _error(exc: PixelsmithError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "message": exc.message, "details": exc.details}, status_code=exc.status)


def jobs_router(
    service: JobService | None = None,
    *,
    allow: list[str] | None = None,
    key_dependency: Callable[..., Any] | None = None,
    threads: int = 1,
) -> APIRouter:
    """The router; the server mounts it. ``service`` defaults to one under the server's data folder."""
    router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
    current_key = key_dependency or _key_dependency()
    holder: dict[str, JobService] = {}
    prefixes = allow if allow is not None else allowed_prefixes()

    def get_service(request: Request) -> JobService:
        if service is not None:
            return service.start()
        if "svc" not in holder:
            settings = getattr(request.app.state, "settings", None)
            root = pathlib.Path(settings.data_path) / "jobs" if settings is not None else None
            holder["svc"] = JobService(root, threads=threads).start()
        return holder["svc"]

    def owner_of(key: Any) -> str | None:
        return getattr(key, "id", None) if key is not None else None

    def own(svc: JobService, job_id: str, key: Any):
        try:
            status = svc.store.job(job_id)
        except NotFound:
            raise NotFound(f"no job {job_id}") from None
        if status.owner != owner_of(key):
            raise NotFound(f"no job {job_id}")  # another key's job: do not reveal it exists
        return status

    def check_path(path: str, what: str) -> None:
        norm = path if "://" in path else str(pathlib.Path(path).resolve())
        for prefix in prefixes:
            p = prefix if "://" in prefix else str(pathlib.Path(prefix).resolve())
            if norm == p or norm.startswith(p.rstrip("/") + "/"):
                return
        raise Forbidden(
            f"{what} {path!r} is not under an allowed prefix (PIXELSMITH_JOBS_ALLOW); upload the files instead"
        )

    def status_body(status, svc: JobService | None = None) -> dict[str, Any]:
        body = status.as_dict()
        body["meta"] = {k: v for k, v in body["meta"].items() if k in ("webhook", "webhook_sent", "kind", "tool")}
        if svc is not None and status.meta.get("kind") == "run":  # a studio run: its one item, for the history
            body["item"] = next(iter(item_bodies(svc, status, svc.store.items(status.id, limit=1))), None)
        return body

    def item_bodies(svc: JobService, status, rows) -> list[dict[str, Any]]:
        """Items as the API shows them: result URL, uploaded inputs' URLs, queue position when queued."""
        ahead = svc.store.queue_ahead(r.id for r in rows if r.state == "queued")
        out = []
        for r in rows:
            d = r.as_dict()
            base = f"/v1/jobs/{status.id}/items/{r.id}/inputs"
            d["inputs"] = {name: f"{base}/{name}" for name in uploaded_inputs(svc, status, r)}
            if r.state == "done":
                d["url"] = f"/v1/jobs/{status.id}/results/{r.id}"
            if r.id in ahead:
                d["ahead"] = ahead[r.id]
            out.append(d)
        return out

    def uploaded_inputs(svc: JobService, status, item) -> dict[str, pathlib.Path]:
        """The files this job's upload spooled for the item: its input and image fields (mask...)."""
        tag = status.meta.get("spool")
        candidates = [("input", item.input)] + [
            (name, value)
            for step in item.steps
            for name, value in step.items()
            if name != "tool" and isinstance(value, str)
        ]
        found: dict[str, pathlib.Path] = {}
        for name, value in candidates:
            if name not in found and (path := svc.spooled(tag, value)) is not None:
                found[name] = path
        return found

    @router.post("", status_code=201, summary="Submit a job: a JSON manifest, or multipart files + steps")
    async def submit(request: Request, key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        owner = owner_of(key)
        idem = request.headers.get("idempotency-key") or None
        if idem:
            existing = svc.store.find_job(idem, owner)
            if existing:
                return JSONResponse({**status_body(svc.store.job(existing)), "new": False}, status_code=200)
        tag = uuid.uuid4().hex
        try:
            doc, webhook, spooled = await _read_submission(request, svc, tag)
            kind = str(doc.pop("kind", None) or "batch")
            if kind not in KINDS:
                raise InvalidRequest.one("kind", f"must be one of {', '.join(KINDS)}")
            out_dir = doc.pop("output", None)
            if out_dir:
                check_path(out_dir, "output")
            for raw in doc.get("items") or []:  # before expanding: no listing of folders we may not read
                given = raw.get("input") if isinstance(raw, dict) else raw
                if isinstance(given, str) and resolve(str(svc.root), given) not in spooled:
                    check_path(resolve(str(svc.root), given), "input")
            out_root = out_dir or str(svc.output_dir(tag))
            if kind == "run" and not doc.get("items"):
                # no image given: one item without input (its tool makes the image, e.g. text-to-image),
                # named after the job's tag; a tool that needs an image is refused by expand
                doc["items"] = [{"label": tag[:8]}]
            manifest = expand(doc, str(svc.root), output=out_root, check_tools=False, inputless=kind == "run")
            from pixelsmith.tools import get_tool

            for item in manifest.items:  # every path must be an upload of this request or allowed
                if item.input is not None and item.input not in spooled:
                    check_path(item.input, "input")
                target = item.output if "://" in item.output else str(pathlib.Path(item.output).resolve())
                if not target.startswith(out_root.rstrip("/") + "/"):  # a name template with ../
                    raise Forbidden(f"output {item.output!r} is outside the job's output folder")
                for step in item.steps:
                    for name in get_tool(step.tool).request.image_fields():
                        value = step.fields.get(name)
                        if isinstance(value, str) and value not in spooled:
                            check_path(value, name)
            if kind == "run" and len(manifest.items) != 1:
                raise InvalidRequest.one("files", "a run (kind=run) is one image; submit more as a batch")
        except PixelsmithError as exc:
            return _error(exc)
        meta = {
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
        return JSONResponse(
            {**status_body(svc.store.job(job_id), svc), "new": created}, status_code=201 if created else 200
        )

    @router.get("", summary="The caller's jobs")
    async def list_jobs(request: Request, key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        return JSONResponse(
            {"jobs": [status_body(j, svc) for j in svc.store.jobs(owner=owner_of(key)) if j.owner == owner_of(key)]}
        )

    @router.get("/{job_id}", summary="Progress: counts per state, rate, ETA, queue position, running items")
    async def get_job(job_id: str, request: Request, key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        try:
            status = own(svc, job_id, key)
        except PixelsmithError as exc:
            return _error(exc)
        body = status_body(status, svc)
        first_queued = svc.store.items(job_id, state="queued", limit=1)
        ahead = svc.store.queue_ahead(r.id for r in first_queued)
        # ahead: queued items (any job) claimed before this job's next one; running: items being worked on now
        body["queue"] = {"ahead": next(iter(ahead.values()), None), "running": svc.store.running_count()}
        body["progress"] = [
            {"item": r.id, **r.progress} for r in svc.store.items(job_id, state="running", limit=100) if r.progress
        ]
        return JSONResponse(body)

    @router.get("/{job_id}/items", summary="Items: state, attempts, error, checksum, timings")
    async def get_items(
        job_id: str,
        request: Request,
        state: str | None = None,
        offset: int = 0,
        limit: int = 100,
        key: Any = Depends(current_key),
    ) -> Response:
        svc = get_service(request)
        try:
            status = own(svc, job_id, key)
        except PixelsmithError as exc:
            return _error(exc)
        rows = svc.store.items(job_id, state=state, offset=max(0, offset), limit=max(1, min(limit, 1000)))
        return JSONResponse(
            {
                "job": job_id,
                "total": status.total,
                "items": item_bodies(svc, status, rows),
                "running": svc.store.running_count(),
            }
        )

    @router.get(
        "/{job_id}/items/{item_id}/inputs/{name}",
        summary="An item's uploaded input ('input') or uploaded image field (e.g. 'mask')",
    )
    async def input_file(
        job_id: str, item_id: int, name: str, request: Request, key: Any = Depends(current_key)
    ) -> Response:
        svc = get_service(request)
        try:
            status = own(svc, job_id, key)
            item = svc.store.item(item_id)
            if item.job_id != job_id:
                raise NotFound(f"no item {item_id} in job {job_id}")
            path = uploaded_inputs(svc, status, item).get(name)
            if path is None:  # only files this job's upload spooled: never a manifest's or another job's path
                raise NotFound(f"item {item_id} has no uploaded {name!r}")
        except PixelsmithError as exc:
            return _error(exc)
        import mimetypes

        # the spool's names: 0000-<uploaded name> for inputs, field-<name><ext> for image fields
        shown = path.name.split("-", 1)[1] if path.name[:4].isdigit() and "-" in path.name else path.name
        return Response(
            path.read_bytes(),
            media_type=mimetypes.guess_type(shown)[0] or "application/octet-stream",
            headers={"content-disposition": f'inline; filename="{shown}"'},
        )

    @router.get("/{job_id}/results", summary="Finished outputs: a listing, or ?format=zip")
    async def results(job_id: str, request: Request, format: str = "json", key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        try:
            own(svc, job_id, key)
        except PixelsmithError as exc:
            return _error(exc)
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
                        "output": r.output,
                        "url": f"/v1/jobs/{job_id}/results/{r.id}",
                    }
                    for r in done
                ],
            }
        )

    @router.get("/{job_id}/results/{item_id}", summary="One finished output")
    async def result_file(job_id: str, item_id: int, request: Request, key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        try:
            own(svc, job_id, key)
            item = svc.store.item(item_id)
            if item.job_id != job_id or item.state != "done":
                raise NotFound(f"item {item_id} of job {job_id} has no result (yet)")
        except PixelsmithError as exc:
            return _error(exc)
        from pixelsmith.imaging.encode import mime_for
        from pixelsmith.jobs.execute import read_bytes

        fmt = item.result.get("format", "png")
        return Response(
            read_bytes(item.output), media_type=mime_for(fmt), headers={"x-checksum-sha256": item.checksum or ""}
        )

    @router.post("/{job_id}/cancel", summary="Cancel: queued items stop, running ones finish")
    async def cancel(job_id: str, request: Request, key: Any = Depends(current_key)) -> Response:
        svc = get_service(request)
        try:
            own(svc, job_id, key)
        except PixelsmithError as exc:
            return _error(exc)
        n = svc.store.cancel(job_id)
        svc.poke()
        return JSONResponse({"cancelled": n, **status_body(svc.store.job(job_id), svc)})

    return router


def _name_in(item) -> str:
    return pathlib.PurePath(item.output).name if "://" not in item.output else item.output.rsplit("/", 1)[-1]


async def _read_submission(request: Request, svc: JobService, tag: str) -> tuple[dict[str, Any], Any, set[str]]:
    """JSON: a manifest document. Multipart: files (+ extra image fields by name) and a steps JSON
    (no files: a run whose tool makes the image).
    Also returns the paths this request uploaded (the only local paths it may use unchecked)."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        from pixelsmith.api.bodies import parse_json

        doc = parse_json(await request.body())  # 400 when not JSON or nested too deeply (no RecursionError)
        if not isinstance(doc, dict):
            raise ManifestError("the body must be a manifest object with 'items' and 'steps'")
        webhook = doc.pop("webhook", None)
        return doc, webhook, set()
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
            extras[name] = svc.spool(tag, f"field-{_safe(name)}{ext}", await value.read())
    items = []
    for n, f in enumerate(files):
        filename = _safe(getattr(f, "filename", None) or f"upload-{n}.png")
        items.append({"input": svc.spool(tag, f"{n:04d}-{filename}", await f.read())})
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
