"""Entry point: ``pixelsmith`` / ``python -m pixelsmith``.

Sub-commands live in their own modules; each exposes ``register(app)``.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    help="pixelsmith: self-hosted image production service",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_COMMAND_MODULES = (
    "pixelsmith.cli.tools_cmd",
    "pixelsmith.cli.models_cmd",
    "pixelsmith.cli.batch_cmd",
    "pixelsmith.api.cli",
    "pixelsmith.jobs.cli",
)


def build():
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that front end is not part of this install
            raise
        module.register(app)
    from pixelsmith.cli.run_cmd import run_group

    command = typer.main.get_command(app)
    command.add_command(run_group, "run")
    return command


def main() -> None:
    sys.exit(build()(standalone_mode=True))
