"""``pixelsmith serve``: the Stability REST v2beta and Bedrock APIs, locally (uvicorn) or on Ray Serve."""

from __future__ import annotations

import os
import tempfile
from typing import TYPE_CHECKING, Any

import typer

from pixelsmith.cli.common import fail_with, need
from pixelsmith.cli.keys_cmd import DATA_DIR_HELP, key_store
from pixelsmith.errors import PixelsmithError

if TYPE_CHECKING:
    from pixelsmith.api.app import Settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind; auth is on by default unless it is loopback"),
    port: int = typer.Option(8000, help="TCP port"),
    workers: int = typer.Option(1, help="Worker processes (each loads its own models)"),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Deploy on Ray Serve at this Ray cluster ('auto', "
        "'HOST:6379', 'ray://host:10001', or 'local' to start Ray in this process)",
    ),
    auth: bool | None = typer.Option(None, "--auth/--no-auth", help="Require API keys (default: on unless loopback)"),
    data_dir: str | None = typer.Option(None, help=DATA_DIR_HELP),
    concurrency: int = typer.Option(0, help="Tool runs at once per worker (0 = half the cores; 32 with --ray)"),
    queue: int = typer.Option(64, help="Requests that may wait for a free slot before 503"),
    queue_timeout: float = typer.Option(120.0, help="Seconds a request may wait for a slot before 503"),
    rate: float = typer.Option(15.0, help="Requests per second per key (token bucket refill; 0 = unlimited)"),
    burst: int = typer.Option(150, help="Token bucket size per key"),
    cost_rate: float = typer.Option(
        0.5, help="Cost units (output MP x tool factor, ~1 s of CPU each) per second per key; 0 = unlimited"
    ),
    cost_burst: float = typer.Option(200.0, help="Cost budget per key when full (a maximal fast-upscale costs 32)"),
    queue_cost: float = typer.Option(256.0, help="Cost units that may wait for a slot before 503 (0 = no limit)"),
    engine: str | None = typer.Option(None, help="Force one engine (embedded or diffusers)"),
    preload: bool = typer.Option(True, "--preload/--lazy", help="Load servable models at start (/readyz waits)"),
    log_level: str = typer.Option("info", help="Log level"),
) -> None:
    """Serve the Stability REST v2beta and Amazon Bedrock APIs (and the jobs API and studio when installed)."""
    try:
        import uvicorn

        from pixelsmith.api.app import SETTINGS_ENV, Settings, create_app, is_loopback
        from pixelsmith.api.logging import setup
    except ModuleNotFoundError as exc:
        need("pixelsmith serve", exc)

    if auth is False and not is_loopback(host):
        typer.echo(
            f"warning: auth is OFF on a non-loopback address ({host}); anyone who can reach it can use it", err=True
        )
    settings = Settings(
        host=host,
        port=port,
        data_dir=data_dir,
        auth=auth,
        rate=rate,
        burst=burst,
        cost_rate=cost_rate,
        cost_burst=cost_burst,
        queue_cost=queue_cost,
        concurrency=concurrency,
        queue_size=queue,
        queue_timeout=queue_timeout,
        engine=engine,
        preload=preload,
        ray_address=ray,
    )
    setup(log_level)
    if log_level.lower() in ("debug", "trace"):
        os.environ.setdefault("PIXELSMITH_NATIVE_LOGS", "1")  # MediaPipe's C++ notices too (see --debug)
    keys = len([k for k in key_store(data_dir).list() if k.active])
    state = (
        "ON: clients must send an API key" if settings.auth_enabled else "OFF (loopback only; --auth to require keys)"
    )
    if settings.auth_enabled and not keys:
        typer.echo("no API keys yet: create one with `pixelsmith keys create`", err=True)
    try:
        if ray:
            _serve_on_ray(settings, ray, workers, f"auth {state}; {keys} active key(s) in {settings.data_path}")
            return
        typer.echo(
            f"pixelsmith serving on http://{host}:{port}  auth {state}; {keys} active key(s) in {settings.data_path}",
            err=True,
        )
        common: dict[str, Any] = dict(
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"),
            timeout_keep_alive=30,
        )
        if workers > 1:
            os.environ[SETTINGS_ENV] = settings.to_env()
            os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="pixelsmith-metrics-"))
            uvicorn.run("pixelsmith.api.app:app_from_env", factory=True, workers=workers, **common)
        else:
            uvicorn.run(create_app(settings), **common)
    except PixelsmithError as exc:
        fail_with(exc)


def _serve_on_ray(settings: Settings, address: str, workers: int, auth_line: str) -> None:
    """The same server as a Ray Serve app: the gateway replica gets these settings, tools run in deployments."""
    try:
        from pixelsmith.jobs.ray_serve import installed_engines, serve_on_ray
    except ModuleNotFoundError as exc:
        need("pixelsmith serve --ray", exc)

    if workers > 1:
        typer.echo("note: --workers is ignored with --ray; Ray Serve scales the replicas", err=True)
    # the gateway replica reads keys and results here: resolved now, not from the replica's own environment
    settings.data_dir = str(settings.data_path)
    engines = [settings.engine] if settings.engine else installed_engines()
    url = f"http://{settings.host}:{settings.port}"
    typer.echo(f"deploying pixelsmith on Ray Serve (Ray: {address}) ...", err=True)

    def ready() -> None:
        typer.echo(
            f"pixelsmith serving on Ray Serve at {url}  {auth_line}; deployments: Gateway, "
            f"{', '.join('tools-' + e for e in engines)}. Ctrl-C shuts Serve down",
            err=True,
        )

    try:
        serve_on_ray(address, settings.host, settings.port, engines=engines, settings=settings, on_ready=ready)
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] != "ray":
            raise
        need("pixelsmith serve --ray", exc)
    typer.echo("Ray Serve shut down", err=True)
