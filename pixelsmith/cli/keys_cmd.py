"""``pixelsmith keys create|list|revoke``: API keys for the HTTP server."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import typer

from pixelsmith.cli.common import USAGE, fail, need

if TYPE_CHECKING:
    from pixelsmith.api.auth import KeyStore

keys_app = typer.Typer(
    help="API keys for the HTTP server (Bearer on both APIs, SigV4 for Bedrock)", no_args_is_help=True
)
DATA_DIR_HELP = "Server data folder (keys, async results); default $PIXELSMITH_DATA or <pixelsmith home>/server"


def key_store(data_dir: str | None) -> KeyStore:
    """The server's key store in ``data_dir`` (the server's default folder when None)."""
    try:
        from pixelsmith.api.app import Settings
        from pixelsmith.api.auth import KeyStore
    except ModuleNotFoundError as exc:
        need("the HTTP server", exc)
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
    new = key_store(data_dir).create(name, rate, burst)
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
        for k in key_store(data_dir).list()
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
    if not key_store(data_dir).revoke(key_id):
        fail(f"no active key {key_id}", USAGE)
    typer.echo(f"revoked {key_id}")
