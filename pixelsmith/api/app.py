"""The HTTP server: ``create_app(settings)`` builds the FastAPI app.

Routes: Stability REST v2beta (``/v2beta/...``), Bedrock InvokeModel
(``/model/{modelId}/invoke``), ``GET /v1/tools`` (what this server can serve, with
each request model's JSON Schema), ``/healthz``, ``/readyz``, ``/metrics``, the
jobs API (``/v1/jobs``) and the web studio (``/``). The HTTP layer holds no image
logic: it parses the wire format into the tool's request model, calls the core,
and renders the result or the typed error in the caller's wire format (one
renderer per format: :func:`render_error`). Asynchronous REST results and the jobs
API share one :class:`~pixelsmith.jobs.service.JobService`, started and stopped by
the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import pathlib
import re
import time
import uuid
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from pixelsmith import config
from pixelsmith.api import bedrock, stability
from pixelsmith.api.auth import KeyStore
from pixelsmith.api.cost import CostBudget
from pixelsmith.api.limits import BodyLimit, Gate, MiB, RateLimiter
from pixelsmith.api.logging import log_access
from pixelsmith.api.memory import release_memory
from pixelsmith.api.metrics import Metrics
from pixelsmith.api.segment import make_router as segment_router
from pixelsmith.api.service import Service
from pixelsmith.errors import InvalidRequest, PixelsmithError
from pixelsmith.fsutil import private_dir
from pixelsmith.jobs import api as jobs_api
from pixelsmith.jobs.service import JobService
from pixelsmith.studio import mount as mount_studio

log = logging.getLogger("pixelsmith.server")
SETTINGS_ENV = "PIXELSMITH_SERVER_SETTINGS"


@dataclasses.dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: str | None = None  # default: $PIXELSMITH_DATA, else <pixelsmith home>/server
    auth: bool | None = None  # None: on unless the host is a loopback address
    rate: float = 15.0  # requests per second per key (Stability: 150 per 10 s)
    burst: int = 150
    concurrency: int = 0  # tool runs at once per worker; 0 = cores // 2 (at least 1), or 32 with Ray
    queue_size: int = 64  # requests that may wait for a slot
    queue_timeout: float = 120.0  # seconds one may wait
    # Cost units (pixelsmith.api.cost): output megapixels x a tool factor; ~1 s of CPU each.
    cost_rate: float = 0.5  # per key (or client address) per second; <= 0 turns the cost budget off
    cost_burst: float = 200.0  # a key's cost budget when full (a maximal fast-upscale costs 32)
    queue_cost: float = 256.0  # cost of the requests that may wait for a slot at once; <= 0: no limit
    auth_fail_burst: int = 20  # failed authentications per client address before 429 (0: no limit) ...
    auth_fail_rate: float = 0.1  # ... forgiven at this many per second
    allow_unsigned_payload: bool = False  # accept SigV4 UNSIGNED-PAYLOAD (also $PIXELSMITH_ALLOW_UNSIGNED_PAYLOAD=1)
    rest_max_body: int = 10 * MiB
    bedrock_max_body: int = 25_000_000
    result_ttl: float = 24 * 3600
    engine: str | None = None  # force one engine (default: the best installed)
    ray_address: str | None = None  # served on Ray Serve at this cluster (set by `serve --ray`; tool runs wait there)
    preload: bool = False  # load every servable model at start-up (/readyz waits for it)
    access_log: bool = True

    @property
    def auth_enabled(self) -> bool:
        return self.auth if self.auth is not None else not is_loopback(self.host)

    @property
    def data_path(self) -> pathlib.Path:
        return pathlib.Path(self.data_dir or os.environ.get("PIXELSMITH_DATA") or config.home() / "server").expanduser()

    @property
    def slots(self) -> int:
        if self.concurrency:
            return self.concurrency
        if self.ray_address:  # the tools run on the cluster; this process only waits for them
            return 32
        return max(1, (os.cpu_count() or 2) // 2)

    def to_env(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        return cls(**json.loads(os.environ.get(SETTINGS_ENV, "{}")))


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_of(path: str) -> str:
    if path.startswith("/model/"):
        return "bedrock"
    if path.startswith("/v2beta/"):
        return "rest"
    return "other"


def render_error(path: str, exc: Exception, request_id: str) -> Response:
    """The one place an error becomes a response, in the wire format of the path: Bedrock, Stability
    REST, or the jobs API's ``{error, message, details}`` (also the server's own JSON routes')."""
    if api_of(path) == "bedrock":
        return bedrock.error_response(exc, request_id)
    if api_of(path) == "rest":
        return stability.error_response(exc, request_id, path)
    if isinstance(exc, PixelsmithError) and (exc.status < 500 or path.startswith("/v1/jobs")):
        return jobs_api.error_response(exc)
    if isinstance(exc, StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
    return JSONResponse({"error": "internal_error", "message": stability.INTERNAL}, status_code=500)


REJECTIONS = {401: "unauthorized", 403: "forbidden", 413: "body_too_large", 429: "rate_limited", 503: "busy"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")


class Frontdoor:
    """Outermost ASGI middleware: request id, access log, metrics, and a last-resort 500."""

    def __init__(self, app: Any, metrics: Metrics, settings: Settings):
        self.app = app
        self.metrics = metrics
        self.settings = settings

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = uuid.uuid4()
        request_id = given if _SAFE_ID.match(given) else rid.hex
        api = api_of(scope["path"])
        state = scope.setdefault("state", {})
        state["request_id"] = str(rid) if api == "bedrock" and not _SAFE_ID.match(given) else request_id
        started = time.perf_counter()
        status = 500
        sent = 0
        response_started = False

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status, sent, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                extra = [(b"x-request-id", state["request_id"].encode())]
                if api == "bedrock":
                    extra.append((b"x-amzn-requestid", state["request_id"].encode()))
                names = {k.lower() for k, _ in message.get("headers", [])}
                message = {
                    **message,
                    "headers": list(message.get("headers", [])) + [h for h in extra if h[0] not in names],
                }
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except RecursionError:  # a body nested too deeply that some parser recursed on: the caller's fault
            if not response_started:
                error = InvalidRequest.one("", "the request is nested too deeply", "bad_json")
                response = render_error(scope["path"], error, state["request_id"])
                await response(scope, receive, send_with_id)
        except Exception as exc:  # noqa: BLE001 - answered in the caller's shape, traced in the log
            log.exception("unhandled error on %s %s (request %s)", scope["method"], scope["path"], state["request_id"])
            if not response_started:
                await render_error(scope["path"], exc, state["request_id"])(scope, receive, send_with_id)
        finally:
            self.metrics.in_flight.dec()
            seconds = time.perf_counter() - started
            if state.get("release_memory"):  # a large result was answered: give its memory back
                await asyncio.to_thread(release_memory)
            route = state.get("route") or ("unmatched" if api != "other" else _other_route(scope["path"]))
            model = state.get("model", "")
            self.metrics.requests.labels(api, route, model, str(status)).inc()
            if status in REJECTIONS:
                self.metrics.rejected.labels(REJECTIONS[status]).inc()
            self.metrics.latency.labels(api, route).observe(seconds)
            if self.settings.access_log and scope["path"] not in ("/healthz", "/metrics"):
                log_access(
                    request_id=state["request_id"],
                    method=scope["method"],
                    path=scope["path"],
                    api=api,
                    model=model or None,
                    status=status,
                    seconds=round(seconds, 4),
                    tool_seconds=state.get("tool_seconds"),
                    bytes_out=sent,
                    key=state.get("key_id"),
                    client=(scope.get("client") or ("", 0))[0],
                    ignored_fields=state.get("ignored_fields") or None,
                )


def _other_route(path: str) -> str:
    for known in ("/healthz", "/readyz", "/metrics", "/v1/tools", "/v1/jobs", "/docs", "/openapi.json"):
        if path.startswith(known):
            return known
    return "other"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    data = private_dir(settings.data_path)  # 0700: keys, databases, uploads and results are the server's alone
    metrics = Metrics()
    gate = Gate(settings.slots, settings.queue_size, settings.queue_timeout, settings.queue_cost)
    jobs = JobService(data / "jobs")  # every asynchronous piece of work: /v1/jobs and async REST results
    service = Service(gate, metrics, jobs, settings.engine, result_ttl=settings.result_ttl)
    service.budget = CostBudget(settings.cost_rate, settings.cost_burst)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.loop = asyncio.get_running_loop()
        # resumes the work a previous process left unfinished (async REST generations included)
        await asyncio.to_thread(jobs.start)
        if settings.preload:

            async def load() -> None:
                models = await asyncio.to_thread(service.preload)
                app.state.ready = True
                log.info("preloaded models: %s", ", ".join(models) or "none")

            app.state.preload_task = asyncio.get_running_loop().create_task(load())
        try:
            yield
        finally:
            task = getattr(app.state, "preload_task", None)
            if task is not None:
                task.cancel()
            await asyncio.to_thread(jobs.stop)

    app = FastAPI(
        title="pixelsmith",
        version=_version(),
        description="Self-hosted Stability AI Image Services: Stability REST v2beta and Amazon Bedrock "
        "InvokeModel wire formats.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.keys = KeyStore(data)
    jobs.webhook_key = app.state.keys._master  # per-key webhook signing secrets derive from the master key
    app.state.limits = dataclasses.make_dataclass("Limits", ["rate", "gate"])(
        RateLimiter(settings.rate, settings.burst), gate
    )
    app.state.metrics = metrics
    app.state.service = service
    app.state.ready = not settings.preload

    @app.exception_handler(PixelsmithError)
    async def typed_error(request: Request, exc: PixelsmithError) -> Response:
        return render_error(request.url.path, exc, request.state.request_id)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return render_error(request.url.path, exc, request.state.request_id)

    @app.get("/healthz", tags=["Server"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["Server"], summary="Readiness: models loaded (?detail=1: device and loading plans)")
    async def readyz(detail: bool = False) -> Response:
        body: dict[str, Any] = {
            "status": "ready" if app.state.ready else "loading",
            "auth": settings.auth_enabled,
            "loaded_models": sorted(m for _, m in service._loaded),
            "running": gate.running,
            "queued": gate.waiting,
        }
        if detail:  # what `pixelsmith doctor` prints: the device and each diffusion tool's loading plan
            from pixelsmith.engines.diffusers.doctor import readyz_detail

            body["plans"] = await asyncio.to_thread(readyz_detail)
        return JSONResponse(body, status_code=200 if app.state.ready else 503)

    @app.get("/metrics", tags=["Server"], summary="Prometheus metrics")
    async def prometheus() -> Response:
        body, ctype = metrics.render()
        return Response(body, media_type=ctype)

    @app.get("/v1/tools", tags=["Tools"], summary="Tools, their request schemas and whether this server can serve them")
    async def tools() -> list[dict[str, Any]]:
        return tools_listing(settings.engine)

    app.include_router(stability.router())
    app.include_router(bedrock.router())
    jobs_api.mount(app, jobs)  # app.state.jobs, app.state.job_paths, /v1/jobs
    mount_studio(app)
    app.include_router(segment_router())  # POST /v1/segment (MobileSAM click-to-select), the jobs API's auth

    app.add_middleware(BodyLimit, limit_for=lambda path: _body_limit(settings, path), reject=_reject)
    app.add_middleware(Frontdoor, metrics=metrics, settings=settings)
    app.add_middleware(stability.ProxyPrefix)  # outermost: ComfyUI's /proxy/stability/v2beta/... paths
    return app


def _body_limit(settings: Settings, path: str) -> int | None:
    api = api_of(path)
    if api == "rest":
        return settings.rest_max_body
    if api == "bedrock":
        return settings.bedrock_max_body
    return max(settings.rest_max_body, settings.bedrock_max_body)  # jobs API and studio uploads


async def _reject(scope: dict, error: PixelsmithError) -> tuple[int, list, bytes]:
    response = render_error(scope["path"], error, scope.get("state", {}).get("request_id", uuid.uuid4().hex))
    return response.status_code, list(response.raw_headers), bytes(response.body)


def tools_listing(engine: str | None = None) -> list[dict[str, Any]]:
    """Every tool with its JSON Schema and readiness (the studio builds its forms from this)."""
    from pixelsmith import core
    from pixelsmith.tools import all_tools

    listing = []
    for tool in all_tools():
        recipe, missing = core.availability(tool)
        if engine:
            recipe = core.recipes_for(tool).get(engine)
            recipe = recipe if recipe is not None and core.missing_for(recipe) is None else None
        listing.append(
            {
                "name": tool.name,
                "title": tool.title,
                "group": tool.group,
                "summary": tool.summary,
                "rest_path": tool.rest_path,
                "rest_async": tool.rest_async,
                "bedrock_model": tool.bedrock_model,
                "ready": recipe is not None,
                "engine": recipe.engine if recipe else None,
                "missing": [m.line() for m in missing] if recipe is None else [],
                "install": sorted({m.command for m in missing if m.command}) if recipe is None else [],
                "schema": tool.request.model_json_schema(),
            }
        )
    return listing


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pixelsmith")
    except Exception:  # noqa: BLE001 - running from a checkout
        return "0.1.0"


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` worker processes (settings passed in the environment)."""
    from pixelsmith.api.logging import setup

    setup()
    return create_app(Settings.from_env())
