"""``pixelsmith serve --ray``: the tools as Ray Serve deployments, one per engine group.

* ``ToolGroup`` deployments wrap :func:`pixelsmith.core.run`; each replica loads
  its models once (the engines cache sessions per process). The embedded group
  takes a CPU per replica, the diffusers group a GPU fraction; both autoscale on
  queued requests per replica.
* The ``Gateway`` ingress serves the pixelsmith HTTP server app when it is
  installed (Stability REST + Bedrock + jobs API), with its tool runs sent to
  the group deployments through :class:`ServeBackend`; otherwise a minimal
  ``POST /v1/run/{tool}`` JSON endpoint.

``serve_on_ray(address, host, port)`` is what ``pixelsmith serve --ray`` calls.
:class:`ServeBackend` has the ``run(tool, request, engine) -> Output`` shape the
server's Ray backend uses, so the server can route to the deployments instead
of plain Ray tasks.
"""
from __future__ import annotations

import base64
import os
from typing import Any

from fastapi import Request  # module level: FastAPI resolves the endpoints' string annotations here

GROUPS = {
    # engine -> replica resources and autoscaling; the GPU fraction lets several diffusion
    # replicas share one card when their models fit (see docs/scale.md)
    "embedded": {"ray_actor_options": {"num_cpus": 1},
                 "autoscaling_config": {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 2}},
    "diffusers": {"ray_actor_options": {"num_cpus": 1, "num_gpus": float(os.environ.get("PIXELSMITH_GPU_FRACTION",
                                                                                       "0") or 0)},
                  "autoscaling_config": {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 2}},
}


def _encode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: base64.b64encode(v).decode() if isinstance(v, (bytes, bytearray)) else v for k, v in fields.items()}


def run_tool(tool: str, fields: dict[str, Any], engine: str | None) -> dict[str, Any]:
    """One tool run in a replica: JSON fields in (images base64), encoded image out."""
    from pixelsmith import core

    out = core.run(tool, fields, engine=engine)
    return {"data": out.data, "format": out.format, "seed": out.seed, "finish_reason": out.finish_reason,
            "seconds": out.seconds, "engine": out.engine, "pid": os.getpid()}


def _deployments():
    from ray import serve

    @serve.deployment(name="ToolGroup", max_ongoing_requests=4)
    class ToolGroup:
        def __init__(self, engine: str):
            self.engine = engine
            os.environ.setdefault("PIXELSMITH_THREADS", "1")
            from pixelsmith.tools import all_tools

            all_tools()

        def run(self, tool: str, fields: dict[str, Any]) -> dict[str, Any]:
            return run_tool(tool, fields, self.engine)

    return ToolGroup


class ServeBackend:
    """``run(tool, request, engine) -> core.Output`` through the group deployments' handles."""

    def __init__(self, handles: dict[str, Any]):
        self.handles = handles

    def run(self, tool_name: str, request: Any, engine: str) -> Any:
        from pixelsmith import core

        fields = request.model_dump(mode="json") if hasattr(request, "model_dump") else dict(request)
        handle = self.handles.get(engine) or next(iter(self.handles.values()))
        res = handle.run.remote(tool_name, fields).result()
        return core.Output(tool_name, res["engine"], None, res["data"], res["format"], res["seed"],  # type: ignore
                           res["finish_reason"], res["seconds"], {"ray_pid": res["pid"]})


APP_NAME = "pixelsmith"


def _handle(engine: str) -> Any:
    from ray import serve

    return serve.get_deployment_handle(f"tools-{engine}", app_name=APP_NAME)


class _LazyBackend(ServeBackend):
    """Handles looked up by engine when first used (the replica builds the app before they exist)."""

    def __init__(self) -> None:
        super().__init__({})

    def run(self, tool_name: str, request: Any, engine: str) -> Any:
        if engine not in self.handles:
            self.handles[engine] = _handle(engine)
        return super().run(tool_name, request, engine)


def build_gateway_app() -> Any:
    """Built inside the Gateway replica (a FastAPI app does not travel between processes)."""
    import logging

    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, Response

    app: FastAPI
    try:  # the full server (REST, Bedrock, jobs API) when that front end is installed
        from pixelsmith.api.app import Settings, create_app

        app = create_app(Settings(host="0.0.0.0", auth=os.environ.get("PIXELSMITH_AUTH", "1") != "0"))
        service = getattr(app.state, "service", None)
        if service is not None and hasattr(service, "ray"):
            service.ray = _LazyBackend()  # the server's tool runs go to the group deployments
    except Exception as exc:  # noqa: BLE001 - the minimal endpoints below still serve
        logging.getLogger("pixelsmith").warning("full server app unavailable on Ray Serve: %s", exc)
        app = FastAPI(title="pixelsmith on Ray Serve")
    minimal = FastAPI()

    @minimal.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @minimal.post("/v1/run/{tool}")
    async def run(tool: str, request: Request) -> Response:
        from pixelsmith import core
        from pixelsmith.errors import PixelsmithError
        from pixelsmith.tools import get_tool

        try:
            spec = get_tool(tool)
            recipe = core.choose(spec, None)
            fields = await request.json()
            spec.parse(fields)  # refuse a bad request here, before it takes a replica's time
            res = await _handle(recipe.engine).run.remote(spec.name, fields)
        except PixelsmithError as exc:
            return JSONResponse({"error": exc.code, "message": exc.message, "details": exc.details},
                                status_code=exc.status)
        return Response(res["data"], media_type=f"image/{res['format']}",
                        headers={"seed": str(res["seed"]), "x-engine": res["engine"], "x-replica-pid": str(res["pid"])})

    app.mount("/ray", minimal)  # always there: /ray/healthz, /ray/v1/run/{tool}
    return app


def _gateway():
    from ray import serve

    @serve.deployment(name="Gateway", ray_actor_options={"num_cpus": 0})
    @serve.ingress(build_gateway_app)
    class Gateway:
        def __init__(self, **groups: Any):
            self.groups = groups  # bound so Serve deploys the groups with the gateway

    return Gateway


def build_application(engines: list[str] | None = None):
    """The Serve application: one ToolGroup deployment per engine group, behind the Gateway."""
    from pixelsmith.engines import ENGINES

    ToolGroup = _deployments()
    engines = engines or [e for e, spec in ENGINES.items() if not spec.missing_packages()]
    groups = {e: ToolGroup.options(name=f"tools-{e}", **GROUPS.get(e, GROUPS["embedded"])).bind(e) for e in engines}
    return _gateway().bind(**groups)


def serve_on_ray(address: str | None = None, host: str = "127.0.0.1", port: int = 8000, *,
                 engines: list[str] | None = None, blocking: bool = True) -> Any:
    """Deploy pixelsmith on Ray Serve at ``address`` ('local' or None starts a local Ray)."""
    from ray import serve

    from pixelsmith.jobs.ray_batch import connect

    connect(address)
    serve.start(http_options={"host": host, "port": port})
    handle = serve.run(build_application(engines), name=APP_NAME, route_prefix="/", blocking=False)
    if blocking:
        import time

        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            serve.shutdown()
    return handle
