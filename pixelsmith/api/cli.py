"""``pixelsmith serve`` and ``pixelsmith keys create|list|revoke``."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import typer

keys_app = typer.Typer(
    help="API keys for the HTTP server (Bearer on both APIs, SigV4 for Bedrock)", no_args_is_help=True
)
DATA_DIR_HELP = "Server data folder (keys, async results); default $PIXELSMITH_DATA or <pixelsmith home>/server"


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
    engine: str | None = typer.Option(None, help="Force one engine (embedded or diffusers)"),
    preload: bool = typer.Option(True, "--preload/--lazy", help="Load servable models at start (/readyz waits)"),
    log_level: str = typer.Option("info", help="Log level"),
) -> None:
    """Serve the Stability REST v2beta and Amazon Bedrock APIs (and the jobs API and studio when installed)."""
    import uvicorn

    from pixelsmith.api.app import SETTINGS_ENV, Settings, create_app
    from pixelsmith.api.logging import setup

    if auth is False and not _loopback(host):
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
        concurrency=concurrency,
        queue_size=queue,
        queue_timeout=queue_timeout,
        engine=engine,
        preload=preload,
        ray_address=ray,
    )
    setup(log_level)
    keys = len([k for k in _store(data_dir).list() if k.active])
    state = (
        "ON: clients must send an API key" if settings.auth_enabled else "OFF (loopback only; --auth to require keys)"
    )
    if settings.auth_enabled and not keys:
        typer.echo("no API keys yet: create one with `pixelsmith keys create`", err=True)
    if ray:
        _serve_on_ray(settings, ray, workers, f"auth {state}; {keys} active key(s) in {settings.data_path}")
        return
    typer.echo(
        f"pixelsmith serving on http://{host}:{port}  auth {state}; {keys} active key(s) in {settings.data_path}",
        err=True,
    )
    common = dict(
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


def _serve_on_ray(settings, address: str, workers: int, auth_line: str) -> None:
    """The same server as a Ray Serve app: the gateway replica gets these settings, tools run in deployments."""
    from pixelsmith.jobs.ray_serve import installed_engines, serve_on_ray

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

    serve_on_ray(address, settings.host, settings.port, engines=engines, settings=settings, on_ready=ready)
    typer.echo("Ray Serve shut down", err=True)


def _loopback(host: str) -> bool:
    from pixelsmith.api.app import is_loopback

    return is_loopback(host)


def _store(data_dir: str | None):
    from pixelsmith.api.app import Settings
    from pixelsmith.api.auth import KeyStore

    return KeyStore(Settings(data_dir=data_dir).data_path)


@keys_app.command("create")
def keys_create(
    name: str = typer.Option("", help="A label for the key"),
    rate: float | None = typer.Option(None, help="This key's requests per second (default: the server's)"),
    burst: int | None = typer.Option(None, help="This key's token bucket size (default: the server's)"),
    data_dir: str | None = typer.Option(None, help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Create a key; its secret is shown once."""
    new = _store(data_dir).create(name, rate, burst)
    if as_json:
        typer.echo(json.dumps({"id": new.key.id, "secret": new.secret, "bearer": new.bearer, "name": new.key.name}))
        return
    typer.echo(
        f"key id (AWS access key id):  {new.key.id}\n"
        f"secret (AWS secret key):     {new.secret}\n"
        f"bearer token (REST/Bedrock): {new.bearer}\n"
        "The secret is not shown again."
    )


@keys_app.command("list")
def keys_list(
    data_dir: str | None = typer.Option(None, help=DATA_DIR_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """Keys and their state (secrets are never shown)."""
    rows = [
        {
            "id": k.id,
            "name": k.name,
            "created": time.strftime("%Y-%m-%d %H:%M", time.gmtime(k.created)),
            "state": "active" if k.active else "revoked",
            "rate": k.rate,
            "burst": k.burst,
        }
        for k in _store(data_dir).list()
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        limit = f" rate {r['rate']}/s burst {r['burst']}" if r["rate"] is not None else ""
        typer.echo(f"{r['id']}  {r['state']:8}  {r['created']} UTC  {r['name']}{limit}")
    if not rows:
        typer.echo("no keys (pixelsmith keys create)")


@keys_app.command("revoke")
def keys_revoke(key_id: str, data_dir: str | None = typer.Option(None, help=DATA_DIR_HELP)) -> None:
    """Revoke a key (servers stop accepting it within seconds)."""
    if not _store(data_dir).revoke(key_id):
        typer.echo(f"no active key {key_id}", err=True)
        sys.exit(1)
    typer.echo(f"revoked {key_id}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")
