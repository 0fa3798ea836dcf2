"""``pixelsmith tools``: every tool, its group, and whether this machine can serve it now."""

from __future__ import annotations

import json
from typing import Any

import typer


def tools_status() -> list[dict[str, Any]]:
    from pixelsmith.core import availability, recipes_for
    from pixelsmith.tools import all_tools

    rows = []
    for tool in all_tools():
        recipe, missing = availability(tool)
        rows.append(
            {
                "name": tool.name,
                "group": tool.group,
                "title": tool.title,
                "ready": recipe is not None,
                "engine": recipe.engine if recipe else None,
                "engines": sorted(recipes_for(tool)),
                "missing": [m.line() for m in missing],
                "install": [m.command for m in missing if m.command],
            }
        )
    return rows


def tools(as_json: bool = typer.Option(False, "--json", help="Machine-readable output")) -> None:
    """List all tools, their group, and what this machine can serve now."""
    from rich.console import Console
    from rich.table import Table

    rows = tools_status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="pixelsmith tools")
    for col in ("tool", "group", "served now", "engines", "what is missing"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(
            r["name"],
            r["group"],
            f"[green]yes ({r['engine']})[/]" if r["ready"] else "[red]no[/]",
            ", ".join(r["engines"]) or "-",
            "\n".join(r["missing"]) if not r["ready"] else "",
        )
    Console().print(table)
