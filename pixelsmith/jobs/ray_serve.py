"""``pixelsmith serve --ray ADDRESS``: the pixelsmith server as a Ray Serve application.

* One ``tools-<engine>`` deployment per engine group wraps :func:`pixelsmith.core.run`;
  each replica loads its models once (at start with ``--preload``; the engines
  cache them per process). A group takes a CPU per replica, an accelerated engine's
  group (``Engine.accelerated``) a GPU fraction; both autoscale on ongoing requests per replica.
* An engine's batched tools (``Engine.batched_tools``: the diffusers engine's
  ``generate``) go to its group's ``batched`` method, a ``@serve.batch``: Serve hands it
  up to PIXELSMITH_MAX_BATCH (default 4) requests that arrived together, and
  :func:`pixelsmith.core.run_many` runs them as one announced group, so the
  same-shape text-to-image requests among them share one pipeline call.
* The ``Gateway`` ingress serves the full server app (Stability REST, Bedrock,
  jobs API, studio) built by ``create_app`` from the Settings the ``serve``
  command was given (passed in the replica's environment), auth included; its
  tool runs go to the group deployments through :class:`ServeBackend`.

Errors travel back as plain data (typed errors do not survive pickling: their
constructors take other arguments than their message) and are raised again in
the gateway, so the caller gets them in its own API's error shape.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

APP_NAME = "pixelsmith"
ENGINES_ENV = "PIXELSMITH_SERVE_ENGINES"  # the deployed groups, told to the gateway


def max_batch() -> int:
    return max(1, int(os.environ.get("PIXELSMITH_MAX_BATCH", "4")))


def batch_wait_s() -> float:
    """How long Serve holds a first request for others to join its batch."""
    return float(os.environ.get("PIXELSMITH_SERVE_BATCH_WAIT_S", "0.05"))


def group_options(engine: str) -> dict[str, Any]:
    """Replica resources and autoscaling per engine group (read when deploying)."""
    from pixelsmith.engines import ENGINES

    if ENGINES[engine].accelerated:
        batch = max_batch()
        gpus = float(os.environ.get("PIXELSMITH_GPU_FRACTION", "0") or 0)
        # the GPU fraction lets several diffusion replicas share one card when their models fit (docs/scale.md);
        # room for one batch running and one gathering; the replicas' batcher takes the same batch size
        return {
            "ray_actor_options": {
                "num_cpus": 1,
                "num_gpus": gpus,
                "runtime_env": {"env_vars": {"PIXELSMITH_MAX_BATCH": str(batch)}},
            },
            "max_ongoing_requests": 2 * batch,
            "autoscaling_config": {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": batch},
        }
    return {
        "ray_actor_options": {"num_cpus": 1},
        "max_ongoing_requests": 4,
        "autoscaling_config": {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 2},
    }


# -- results and errors across processes ---------------------------------------------------------


def encode_result(result: Any) -> dict[str, Any]:
    """A core.Output, or a PixelsmithError, as plain data for the trip to the gateway."""
    from pixelsmith.errors import PixelsmithError

    if isinstance(result, PixelsmithError):
        return {"error": {"type": type(result), "message": result.message, "state": dict(vars(result))}}
    return {
        "data": result.data,
        "format": result.format,
        "seed": result.seed,
        "engine": result.engine,
        "finish_reason": result.finish_reason,
        "seconds": result.seconds,
        "metadata": {**result.metadata, "ray_pid": os.getpid()},
    }


def decode_result(tool: str, res: dict[str, Any]) -> Any:
    """The replica's answer as a core.Output, or its typed error raised here."""
    from pixelsmith import core

    if "error" in res:
        err = res["error"]
        exc = Exception.__new__(err["type"])
        Exception.__init__(exc, err["message"])
        vars(exc).update(err["state"])
        raise exc
    return core.Output(
        tool,
        res["engine"],
        None,  # type: ignore[arg-type]  # no decoded image crosses from the replica
        res["data"],
        res["format"],
        res["seed"],
        res["finish_reason"],
        res["seconds"],
        res["metadata"],
    )


def _run_one(tool: str, fields: dict[str, Any], engine: str) -> dict[str, Any]:
    from pixelsmith import core
    from pixelsmith.errors import PixelsmithError

    try:
        return encode_result(core.run(tool, fields, engine=engine))
    except PixelsmithError as exc:
        return encode_result(exc)


def _preload(engine: str) -> None:
    """Load the models of every tool this engine can serve here (as the server's --preload does)."""
    from pixelsmith import core

    for recipe in core.servable_recipes(engine):
        for model in recipe.models:
            core.load_model(engine, model)


# -- deployments -----------------------------------------------------------------------------------


def _deployments() -> tuple[Any, Any]:
    from ray import serve

    class _Group:
        def __init__(self, engine: str, preload: bool = False):
            self.engine = engine
            os.environ.setdefault("PIXELSMITH_THREADS", "1")
            from pixelsmith.tools import all_tools

            all_tools()
            if preload:
                _preload(engine)

        def run(self, tool: str, fields: dict[str, Any]) -> dict[str, Any]:
            return _run_one(tool, fields, self.engine)  # Serve runs sync methods in its thread pool

    ToolGroup = serve.deployment(name="ToolGroup")(_Group)

    class _BatchingGroup(_Group):
        @serve.batch(max_batch_size=max_batch(), batch_wait_timeout_s=batch_wait_s())
        async def batched(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
            """A Serve batch of requests for the engine's batched tools ({"tool", "fields"} each), run as one
            announced group (``core.run_many``: one pipeline call per shape)."""
            import logging

            from pixelsmith import core
            from pixelsmith.engines import ENGINES

            engine = ENGINES[self.engine]
            before = len(engine.batch_sizes())
            calls = [(call["tool"], call["fields"]) for call in batch]
            results = await asyncio.to_thread(core.run_many, calls, engine=self.engine)
            tools = ", ".join(sorted({tool for tool, _ in calls}))
            logging.getLogger("ray.serve").info(
                "serve batch of %d %s request(s); pipeline batch sizes %s",
                len(batch),
                tools,
                engine.batch_sizes()[before:],
            )
            return [encode_result(r) for r in results]

    BatchingGroup = serve.deployment(name="BatchingGroup")(_BatchingGroup)
    return ToolGroup, BatchingGroup


class ServeBackend:
    """The server's tool-run backend on Ray Serve: ``run(tool, request, engine) -> core.Output``.

    Each engine's deployment handle is looked up on first use (the gateway's app
    is built before the handles can be fetched).
    """

    def __init__(self, engines: list[str] | None = None):
        import threading

        self.engines = engines
        self.handles: dict[str, Any] = {}
        self._lock = threading.Lock()  # requests arrive on many threads; one handle per engine

    def _handle(self, tool: str, engine: str) -> Any:
        if self.engines is not None and engine not in self.engines:
            from pixelsmith.errors import Missing, ToolUnavailable

            raise ToolUnavailable(
                tool,
                [
                    Missing(
                        engine, [], "", f"is not deployed on this Ray Serve app (deployed: {', '.join(self.engines)})"
                    )
                ],
            )
        with self._lock:
            if engine not in self.handles:
                from ray import serve

                self.handles[engine] = serve.get_deployment_handle(f"tools-{engine}", app_name=APP_NAME)
            return self.handles[engine]

    def run(self, tool_name: str, request: Any, engine: str) -> Any:
        fields = request.model_dump(mode="json") if hasattr(request, "model_dump") else dict(request)
        handle = self._handle(tool_name, engine)
        from pixelsmith.engines import ENGINES

        if tool_name in ENGINES[engine].batched_tools:
            res = handle.batched.remote({"tool": tool_name, "fields": fields}).result()  # joins a @serve.batch
        else:
            res = handle.run.remote(tool_name, fields).result()
        return decode_result(tool_name, res)


def build_gateway_app() -> Any:
    """Built inside the Gateway replica (a FastAPI app does not travel between processes)."""
    from pixelsmith.api.app import SETTINGS_ENV, Settings, create_app

    if os.environ.get(SETTINGS_ENV):
        settings = Settings.from_env()
    else:  # deployed without serve_on_ray: keep the safe default, keys required
        settings = Settings(host="0.0.0.0", auth=True)
    settings.preload = False  # the group replicas load the models, not the gateway
    settings.ray_address = settings.ray_address or "serve"  # tool runs wait on the cluster: many slots
    app = create_app(settings)
    engines = [e for e in os.environ.get(ENGINES_ENV, "").split(",") if e] or None
    app.state.service.backend = ServeBackend(engines)
    return app


def _gateway(max_ongoing: int) -> Any:
    from ray import serve

    @serve.deployment(name="Gateway", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=max_ongoing)
    @serve.ingress(build_gateway_app)
    class Gateway:
        def __init__(self, **groups: Any):
            self.groups = groups  # bound so Serve deploys the groups with the gateway

    return Gateway


def installed_engines() -> list[str]:
    """The engine groups this machine can deploy (their Python packages are installed)."""
    from pixelsmith.engines import ENGINES

    return [e for e, spec in ENGINES.items() if not spec.missing_packages()]


def build_application(engines: list[str] | None = None, settings: Any = None) -> Any:
    """The Serve application: a ``tools-<engine>`` deployment per engine group, behind the Gateway."""
    from pixelsmith.api.app import SETTINGS_ENV, Settings

    settings = settings or Settings(host="0.0.0.0")
    engines = engines or installed_engines()
    from pixelsmith.engines import ENGINES

    ToolGroup, BatchingGroup = _deployments()
    groups = {
        e: (BatchingGroup if ENGINES[e].batched_tools else ToolGroup)
        .options(name=f"tools-{e}", **group_options(e))
        .bind(e, settings.preload)
        for e in engines
    }
    env = {SETTINGS_ENV: settings.to_env(), ENGINES_ENV: ",".join(engines)}
    gateway = _gateway(settings.slots + settings.queue_size)  # the gateway's own gate answers 503 past that
    return gateway.options(ray_actor_options={"num_cpus": 0, "runtime_env": {"env_vars": env}}).bind(**groups)


def serve_on_ray(
    address: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    engines: list[str] | None = None,
    settings: Any = None,
    blocking: bool = True,
    on_ready: Any = None,
) -> Any:
    """Deploy pixelsmith on Ray Serve at ``address`` ('local' or None starts Ray in this process).

    ``settings`` (pixelsmith.api.app.Settings) configure the gateway's server:
    auth, limits, data folder, forced engine. Blocking, it waits until Ctrl-C
    (or SIGTERM), then shuts Serve down.
    """
    import dataclasses
    import signal
    import time

    from pixelsmith.jobs.ray_local import pin_loopback

    pin_loopback(address)  # before Ray is imported (see pixelsmith.jobs.ray_local)
    from ray import serve

    from pixelsmith.api.app import Settings
    from pixelsmith.jobs.ray_batch import connect

    settings = dataclasses.replace(settings) if settings is not None else Settings(host=host, port=port)
    settings.host, settings.port, settings.ray_address = host, port, address or "local"
    if settings.engine and not engines:
        engines = [settings.engine]
    ray = connect(address)
    serve.start(http_options={"host": host, "port": port})
    handle = serve.run(build_application(engines, settings), name=APP_NAME, route_prefix="/", blocking=False)
    if on_ready is not None:
        on_ready()
    if not blocking:
        return handle

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM (docker stop, systemd) shuts down like Ctrl-C

    signal.signal(signal.SIGTERM, stop)
    # SIGINT too, as uvicorn does for `pixelsmith serve`: a command started in the background by a shell without
    # job control (`nohup ... &` in a script, a CI step) inherits SIGINT ignored, and Python keeps it ignored,
    # so `kill -INT` (and the tests' Ctrl-C) never reached the server.
    signal.signal(signal.SIGINT, stop)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        if address in (None, "local"):
            ray.shutdown()
    return handle
