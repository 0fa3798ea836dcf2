"""``pixelsmith run TOOL INPUT -o OUTPUT [--field ...]``: one tool on one image."""

from __future__ import annotations

import pathlib
import sys

import click

from pixelsmith.cli.flags import fields_from, options_for
from pixelsmith.errors import PixelsmithError

EXT_FORMAT = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def format_for(output: pathlib.Path, given: str | None) -> str | None:
    """An explicit --output-format wins; else the output file's extension decides."""
    return given or EXT_FORMAT.get(output.suffix.lower())


def tool_command(tool) -> click.Command:
    model = tool.request
    primary = model.primary_image()
    params: list[click.Parameter] = []
    if primary:
        required = model.model_fields[primary].is_required()  # generate takes an image only for img2img
        params.append(
            click.Argument(
                ["input"], required=required, type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path)
            )
        )
    params.append(
        click.Option(
            ["-o", "--output"],
            type=click.Path(dir_okay=False, path_type=pathlib.Path),
            required=True,
            help="Where to write the result",
        )
    )
    params.append(click.Option(["--engine"], default=None, help="Force an engine (embedded, diffusers)"))
    params.extend(options_for(model, skip=(primary,) if primary else ()))

    def callback(**kwargs):
        from pixelsmith import core

        output: pathlib.Path = kwargs.pop("output")
        engine = kwargs.pop("engine")
        fields = fields_from(kwargs, model)
        if primary and kwargs.get("input") is not None:
            fields[primary] = kwargs["input"]
        if "output_format" in model.model_fields:
            fmt = format_for(output, fields.get("output_format"))
            if fmt:
                fields["output_format"] = fmt
        try:
            out = core.run(tool.name, tool.parse(fields), engine=engine)
            out.save(output)
        except PixelsmithError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2 if exc.status < 500 else 1)
        seed = f", seed {out.seed}" if out.seed else ""
        click.echo(
            f"{tool.name}: wrote {output} ({out.image.width}x{out.image.height} {out.format}, "
            f"{out.seconds:.2f} s on {out.engine}{seed})"
        )

    return click.Command(tool.name, params=params, callback=callback, help=tool.summary, short_help=tool.summary)


class RunGroup(click.Group):
    """Lazily builds one sub-command per tool from the registry."""

    def list_commands(self, ctx):
        from pixelsmith.tools import all_tools

        return [t.name for t in all_tools()]

    def get_command(self, ctx, name):
        from pixelsmith.tools import get_tool

        try:
            return tool_command(get_tool(name))
        except PixelsmithError:
            return None


run_group = RunGroup("run", help="Run one tool on one image: pixelsmith run TOOL INPUT -o OUTPUT [--field VALUE ...]")
