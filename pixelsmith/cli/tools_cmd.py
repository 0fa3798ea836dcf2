"""``pixelsmith tools``: every tool, its group, and whether this machine can serve it now."""

from __future__ import annotations

import json
import shutil
import textwrap
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


def tools(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
    wide: bool = typer.Option(False, "--wide", help="One table with a what-is-missing column (wide terminals)"),
) -> None:
    """List all tools, their group, and what this machine can serve now."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    rows = tools_status()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    console = Console()
    # Names and engines never wrap (a name broken mid-word cannot be copied); what is missing, with its
    # install command, goes below the table, one plain line each, unless --wide asks for it as a column.
    table = Table(title="pixelsmith tools", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("tool", no_wrap=True)
    table.add_column("group", no_wrap=True)
    table.add_column("served now", no_wrap=True)
    table.add_column("engines", no_wrap=True)
    if wide:
        table.add_column("what is missing", no_wrap=True)
    for r in rows:
        cells = [
            r["name"],
            r["group"],
            f"[green]yes ({r['engine']})[/]" if r["ready"] else "[red]no[/]",
            ", ".join(r["engines"]) or "-",
        ]
        if wide:
            cells.append("\n".join(r["missing"]) if not r["ready"] else "")
        table.add_row(*cells)
    console.print(table)
    missing = [r for r in rows if not r["ready"]]
    if wide or not missing:
        return
    width = max(40, shutil.get_terminal_size().columns - 1)
    typer.echo("Not served on this machine:")
    for r in missing:
        for line in r["missing"]:
            what = f"{r['name']}: {line.split(' (install: ')[0]}"
            typer.echo(textwrap.fill(what, width, initial_indent="  ", subsequent_indent="    ", **WHOLE_WORDS))
        for command in dict.fromkeys(r["install"]):
            typer.echo(shell_lines(command, width, "    install: "))


# never break a word or a model name at its hyphens
WHOLE_WORDS: dict[str, Any] = {"break_long_words": False, "break_on_hyphens": False}


def shell_lines(command: str, width: int, prefix: str) -> str:
    """``command`` after ``prefix``, wrapped between words with shell continuations (``\\``), so every line
    fits in ``width`` and the whole still pastes into a shell as one command."""
    lines = textwrap.wrap(command, width - 2, initial_indent=prefix, subsequent_indent=" " * len(prefix), **WHOLE_WORDS)
    return " \\\n".join(lines)
