"""``pixelsmith run TOOL INPUT -o OUTPUT [--field ...]``: one tool on one image.

``run`` is a Typer group whose sub-commands are made on demand, one Typer command per
tool, with its options generated from the tool's request model (:mod:`pixelsmith.cli.flags`).
Only the tool asked for is built; ``pixelsmith --help`` builds none.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any, Optional, get_args

import click
import typer
from typer.core import TyperGroup

from pixelsmith.cli.common import USAGE, escape, fail, fail_with
from pixelsmith.cli.flags import describe, field_parameters, fields_from
from pixelsmith.errors import PixelsmithError, UnknownTool

if TYPE_CHECKING:
    from pixelsmith.core import Output, RunProgress
    from pixelsmith.tools.base import Tool

EXT_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}
HELP = "Run one tool on one image: pixelsmith run TOOL INPUT -o OUTPUT [--field VALUE ...]"


def format_for(output: pathlib.Path, given: str | None, supported: tuple[str, ...] = ()) -> str | None:
    """An explicit --output-format wins (the user asked for that name, whatever the file is called); else the
    output file's extension decides, and one that is not a supported format is a usage error. No extension:
    None (the request's default)."""
    if given:
        return given
    ext = output.suffix.lower()
    if not ext:
        return None
    fmt = EXT_FORMAT.get(ext)
    if fmt is None or (supported and fmt not in supported):
        names = ", ".join(f"{f} ({'/'.join(e for e, v in EXT_FORMAT.items() if v == f)})" for f in supported)
        fail(
            f"output {output.name}: {ext} is not a supported output format; supported: {names} "
            f"(or name one with --output-format)",
            USAGE,
        )
    return fmt


def output_formats(tool: Tool) -> tuple[str, ...]:
    info = tool.request.model_fields.get("output_format")
    return tuple(str(a) for a in get_args(info.annotation)) if info else ("png",)


def _parameters(tool: Tool) -> list[inspect.Parameter]:
    model = tool.request
    primary = model.primary_image()
    params: list[inspect.Parameter] = []
    if primary:
        required = model.model_fields[primary].is_required()  # generate takes an image only for img2img
        params.append(
            inspect.Parameter(
                "input",
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
                default=typer.Argument(... if required else None, exists=True, dir_okay=False, show_default=False),
                annotation=pathlib.Path if required else Optional[pathlib.Path],  # noqa: UP045 - runtime type
            )
        )
    params.append(
        inspect.Parameter(
            "output",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(..., "-o", "--output", dir_okay=False, help="Where to write the result"),
            annotation=pathlib.Path,
        )
    )
    params.append(
        inspect.Parameter(
            "engine",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, "--engine", help="Force an engine (embedded, diffusers)", show_default=False),
            annotation=Optional[str],  # noqa: UP045
        )
    )
    params.append(
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(
                False, "--json", help="Print one JSON object on stdout (output, tool, engine, seed, seconds, ...)"
            ),
            annotation=bool,
        )
    )
    params.append(
        inspect.Parameter(
            "quiet",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--quiet", "-q", help="No progress bar and no summary line (errors still)"),
            annotation=bool,
        )
    )
    taken = {p.name for p in params}
    skip = tuple(taken | ({primary} if primary else set()))
    params.extend(field_parameters(model, model.image_fields(), skip=skip))
    return params


def run_tool(tool: Tool, values: dict[str, Any]) -> None:
    """The command's body: the parsed flags -> the request -> ``core.run`` -> the output file."""
    from pixelsmith import core

    model = tool.request
    primary = model.primary_image()
    output: pathlib.Path = values["output"]
    fields = fields_from(values, model)
    if primary and values.get("input") is not None:
        fields[primary] = values["input"]
    fmt = format_for(output, fields.get("output_format"), output_formats(tool))
    if fmt and "output_format" in model.model_fields:
        fields["output_format"] = fmt
    quiet = bool(values.get("quiet"))
    try:
        request = tool.parse(fields)
        with progress_bar(tool.name, enabled=not quiet) as progress:
            out = core.run(tool.name, request, engine=values.get("engine"), progress=progress)
        out.save(str(output))
    except PixelsmithError as exc:
        fail_with(exc)
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror or exc}")
    if values.get("as_json"):
        typer.echo(json.dumps(result_json(out, output), default=str))
    elif not quiet:
        seed = f", seed {out.seed}" if out.seed else ""
        typer.echo(
            f"{tool.name}: wrote {output} ({out.image.width}x{out.image.height} {out.format}, "
            f"{out.seconds:.2f} s on {out.engine}{seed})"
        )


def result_json(out: Output, output: pathlib.Path) -> dict[str, Any]:
    """What ``run --json`` prints: one object, so scripts need not parse the summary line."""
    return {
        "output": str(output),
        "outputs": [str(output)],
        "tool": out.tool,
        "engine": out.engine,
        "seed": out.seed,
        "seconds": round(out.seconds, 3),
        "finish_reason": out.finish_reason,
        "format": out.format,
        "width": out.image.width,
        "height": out.image.height,
        "metadata": out.metadata,
    }


@contextmanager
def progress_bar(label: str, *, enabled: bool) -> Iterator[RunProgress | None]:
    """A rich progress bar on stderr in the recipe's unit (tiles, levels, steps), with elapsed time and ETA,
    when stderr is a terminal; otherwise (or with --quiet) no callback and nothing printed."""
    if not enabled or not _may_be_terminal():
        yield None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=None, unit="")

        def report(done: int, total: int, unit: str) -> None:
            bar.update(task, completed=done, total=total, unit=unit + ("s" if total != 1 else ""))

        yield report


def _may_be_terminal() -> bool:
    """False only where rich's ``Console(stderr=True).is_terminal`` is surely False too (stderr is no tty and
    neither TTY_COMPATIBLE nor FORCE_COLOR says otherwise), so a run in a script or a pipe does not import
    rich.console (~15 ms) just to learn that it draws no bar."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed
        return False


def _help(tool: Tool) -> str:
    """The tool's summary, and which request field INPUT is (the argument's own help is not shown by every
    Typer/click pairing, so it goes in the command's help)."""
    primary = tool.request.primary_image()
    if not primary:
        return tool.summary
    field = escape(describe(tool.request.model_fields[primary]))
    return f"{tool.summary}\n\nINPUT: the {primary} field, a file. {field}".strip()


def engine_notes(tool: Tool) -> str:
    """What the help says about the engines: each recipe's note (fields that have no effect there, ...),
    the one that would serve the tool on this machine first."""
    from pixelsmith.core import availability, recipes_for

    serving = availability(tool)[0]
    recipes = sorted(recipes_for(tool).values(), key=lambda r: (r is not serving, -r.priority))
    lines = []
    for r in recipes:
        if r.note:
            note = re.sub(rf"^{re.escape(r.engine)}( engine)?:\s*", "", r.note)
            here = " (it serves this tool here)" if r is serving else ""
            lines.append(f"On the {r.engine} engine{here}: {note}.")
    return escape("\n\n".join(lines))


def tool_command(tool: Tool, *, notes: bool = True) -> click.Command:
    """One Typer command for ``tool``: its parameters are the request model's fields. ``notes=False`` leaves
    out the help's engine notes, which import every engine's recipe for the tool and check what is installed
    (~25 ms of a 64x64 fast-upscale's start, bench/startup.py): only ``--help`` shows them."""

    def command(**values: Any) -> None:
        run_tool(tool, values)

    command.__signature__ = inspect.Signature(_parameters(tool))  # type: ignore[attr-defined]
    one = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    epilog = (engine_notes(tool) or None) if notes else None
    one.command(tool.name, help=_help(tool), short_help=tool.summary, epilog=epilog)(command)
    return typer.main.get_command(one)


HELP_ASKED = "pixelsmith.run.help"  # ctx.meta: the tool command is built for its --help page


class ToolGroup(TyperGroup):
    """The ``run`` group: one sub-command per tool in the registry, built when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from pixelsmith.tools import all_tools

        return [t.name for t in all_tools()]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        from pixelsmith.tools import get_tool

        try:
            return tool_command(get_tool(cmd_name), notes=ctx.meta.get(HELP_ASKED, True))
        except UnknownTool:
            return None

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta[HELP_ASKED] = "--help" in args[1:]  # the tool's own help page (its only help option)
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError:
            if args and not args[0].startswith("-"):  # an unknown tool: say which ones there are
                names = self.list_commands(ctx)
                close = get_close_matches(args[0], names)
                hint = f"did you mean {', '.join(close)}?" if close else "tools: " + ", ".join(names)
                raise click.UsageError(f"unknown tool {args[0]!r}; {hint}", ctx) from None
            raise


run_app = typer.Typer(name="run", cls=ToolGroup, help=HELP, no_args_is_help=True)
