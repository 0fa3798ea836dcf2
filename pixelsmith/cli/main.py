"""Entry point: ``pixelsmith`` / ``python -m pixelsmith``: one Typer app.

One module per command group under :mod:`pixelsmith.cli`; each imports only Typer and the
standard library at import time (rich only where it prints a table or a bar), and the heavy
parts (tools, models, server, jobs) inside its command functions, so ``pixelsmith --help``
starts fast (docs/performance.md, start-up). Exit codes: see
:mod:`pixelsmith.cli.common` (0 ok, 1 runtime failure, 2 usage or validation).
"""

from __future__ import annotations

import os

import click
import typer
import typer.core

from pixelsmith.cli import lean_help
from pixelsmith.cli.batch_cmd import batch
from pixelsmith.cli.doctor_cmd import doctor
from pixelsmith.cli.keys_cmd import keys_app
from pixelsmith.cli.models_cmd import models_app
from pixelsmith.cli.run_cmd import run_app
from pixelsmith.cli.segment_cmd import segment_command
from pixelsmith.cli.serve_cmd import serve
from pixelsmith.cli.tools_cmd import tools

DEBUG_ENV = "PIXELSMITH_DEBUG"

lean_help.install()  # help pages and usage errors without rich.markdown / rich.traceback (see lean_help)


def describe(exc: BaseException) -> str:
    """One line for an unexpected failure: what went wrong and on which file, never a traceback."""
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Commands(typer.core.TyperGroup):
    """Every command's unexpected error becomes one ``error:`` line and a hint (exit 1); --debug re-raises."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - shown as one line; the traceback with --debug
            if ctx.meta.get("pixelsmith.debug") or os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"error: {describe(exc)}", err=True)
            click.echo("hint: run again with --debug (or PIXELSMITH_DEBUG=1) for the traceback", err=True)
            ctx.exit(1)


app = typer.Typer(
    help="pixelsmith: self-hosted image production service",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Commands,
)
# Read by pixelsmith.engines.embedded.mediapipe_people (named here too: importing it would load the engine).
NATIVE_LOGS_ENV = "PIXELSMITH_NATIVE_LOGS"


def version() -> str:
    """The installed distribution's version; the source tree's when it is not installed."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("pixelsmith")
    except PackageNotFoundError:
        from pixelsmith import __version__

        return __version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"pixelsmith {version()}")
        raise typer.Exit()


@app.callback()
def common_options(
    ctx: typer.Context,
    debug: bool = typer.Option(
        False,
        "--debug",
        help="Show the Python traceback of an unexpected error, and the third-party native logs (MediaPipe, "
        "TF Lite) that are held back by default",
    ),
    show_version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    ctx.meta["pixelsmith.debug"] = debug
    if debug:
        os.environ[NATIVE_LOGS_ENV] = "1"  # worker processes (batch, serve --workers) inherit it
        os.environ[DEBUG_ENV] = "1"  # the commands' own handlers see it too


app.add_typer(run_app, name="run")
app.command("tools")(tools)
app.add_typer(models_app, name="models")
app.command("batch")(batch)
app.command("serve")(serve)
app.add_typer(keys_app, name="keys")
app.command("doctor")(doctor)
app.command("segment")(segment_command)


def build() -> click.Command:
    """The app as a click command (what ``main`` runs; tests invoke it with click's CliRunner)."""
    return typer.main.get_command(app)


def main() -> None:
    app(prog_name="pixelsmith")
