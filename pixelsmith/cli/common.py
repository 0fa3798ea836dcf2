"""What every command shares: the exit-code convention and the one-line error.

Exit codes (documented in docs/cli.md and the README):

- 0: done.
- 1: runtime failure: the tool failed, a model is missing, the server could not start, a batch item failed.
- 2: usage or validation: a bad flag, an invalid field value, an unknown tool, model or key.

Click's own usage errors (unknown option, missing argument, bad choice) already exit 2.
"""

from __future__ import annotations

import re
from typing import NoReturn

import typer

from pixelsmith.errors import PixelsmithError

OK = 0
FAILURE = 1
USAGE = 2

# The HTTP statuses of the errors that mean "the request is wrong": fixing the command line fixes it
# (400 invalid field, bad manifest; 404 unknown tool, model, job; 413 input too large). Every other
# error is a runtime failure: 424 model missing, 422 the tool could not do it, 5xx, ...
_USAGE_STATUSES = frozenset({400, 404, 413})


def exit_code(exc: PixelsmithError) -> int:
    """The exit code for a typed failure: 2 when the request is wrong, 1 when running it failed."""
    return USAGE if exc.status in _USAGE_STATUSES else FAILURE


def fail(message: str, code: int = FAILURE) -> NoReturn:
    """Print ``error: MESSAGE`` on one line of stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def fail_with(exc: PixelsmithError) -> NoReturn:
    fail(exc.message, exit_code(exc))


def need(feature: str, exc: ModuleNotFoundError) -> NoReturn:
    """An optional dependency is not installed: a runtime failure that says what to install."""
    fail(f"{feature} needs the Python package {exc.name!r}, which is not installed (pip install {exc.name})")


_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape(markup: str) -> str:
    """Text made safe for rich markup (help text, epilogs): ``rich.markup.escape``, the same regex and rules.

    A copy so that building a tool's command imports no rich: rich.markup pulls in rich.text, rich.emoji and
    rich.jupyter (~20 ms at start-up), which a ``pixelsmith run`` whose help is never shown does not need.
    tests/test_startup.py checks it against rich's on the tools' own help texts."""

    def double(match: re.Match[str]) -> str:
        backslashes, text = match.groups()
        return f"{backslashes}{backslashes}\\{text}"

    markup = _MARKUP_TAG.sub(double, markup)
    if markup.endswith("\\") and not markup.endswith("\\\\"):
        return markup + "\\"
    return markup
