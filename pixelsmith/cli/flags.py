"""CLI flags generated from a tool's request model: no second list of fields.

Each field becomes a Typer option ``--field-name`` (image fields take a file path); the
tool's primary image is the positional INPUT. Ranges, choices and defaults in the help
come straight from the model. Every option defaults to None, so the request model, not
the command line, applies the defaults and validates the values (one set of rules and
messages for the CLI, the HTTP APIs and the Python API).
"""

from __future__ import annotations

import inspect
import pathlib
import types
import typing
from typing import TYPE_CHECKING, Any, Literal, Optional, get_args, get_origin

import typer

from pixelsmith.cli.common import escape

if TYPE_CHECKING:  # pydantic is imported with the tools, not for `pixelsmith --help`
    from pydantic import BaseModel
    from pydantic.fields import FieldInfo


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def _unwrap(tp: Any) -> Any:
    """Optional[X] -> X."""
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _bounds(info: FieldInfo) -> tuple[Any, Any]:
    lo = hi = None
    for meta in info.metadata:
        if getattr(meta, "ge", None) is not None:
            lo = meta.ge
        if getattr(meta, "le", None) is not None:
            hi = meta.le
    return lo, hi


def _cli_type(info: FieldInfo) -> Any:
    """The type Typer parses the flag's text into; pydantic then checks the value."""
    tp = _unwrap(info.annotation)
    if get_origin(tp) is Literal:
        return Literal[tuple(str(v) for v in get_args(tp))]  # shown as a choice in the help
    if tp in (bool, int, float):
        return tp
    return str


def describe(info: FieldInfo) -> str:
    """The field's description; an image field keeps its own in its JSON schema (with the size rules)."""
    if info.description:
        return info.description
    metadata = list(info.metadata)
    for arg in get_args(info.annotation):  # Optional[Annotated[Image, ...]]
        metadata += getattr(arg, "__metadata__", ())
    from pixelsmith.tools.base import ImageField

    for meta in metadata:
        if isinstance(meta, ImageField):  # an image field: its description plus its size rule
            return f"{meta.description} PNG, JPEG or WebP; {meta.rule.describe()}."
        schema = getattr(meta, "json_schema", None)
        if isinstance(schema, dict) and schema.get("description"):
            return str(schema["description"])
    return ""


def help_for(info: FieldInfo) -> str:
    """The field's description, its range ``[lo..hi]``, its default, and whether it is required."""
    text = describe(info)
    lo, hi = _bounds(info)
    if lo is not None or hi is not None:
        text += f" [{lo if lo is not None else ''}..{hi if hi is not None else ''}]"
    if info.is_required():
        text += " (required)"
    elif info.default is not None:
        text += f" (default {info.default})"
    return escape(text.strip())


def field_parameter(name: str, info: FieldInfo, *, is_image: bool) -> inspect.Parameter:
    """One request field as a keyword parameter carrying its Typer option."""
    if is_image:
        option = typer.Option(
            None, flag_name(name), exists=True, dir_okay=False, help=help_for(info) or "image file", show_default=False
        )
        annotation: Any = Optional[pathlib.Path]  # noqa: UP045 - a runtime type for Typer, not an annotation
    else:
        cli_type = _cli_type(info)
        decl = f"{flag_name(name)}/--no-{flag_name(name)[2:]}" if cli_type is bool else flag_name(name)
        option = typer.Option(None, decl, help=help_for(info), show_default=False)
        annotation = Optional[cli_type]  # noqa: UP045
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=annotation)


def field_parameters(
    model: type[BaseModel], images: list[str], *, skip: tuple[str, ...] = ()
) -> list[inspect.Parameter]:
    return [field_parameter(n, f, is_image=n in images) for n, f in model.model_fields.items() if n not in skip]


def fields_from(params: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Typer's parsed params -> request fields (only those the user gave)."""
    return {name: params[name] for name in model.model_fields if params.get(name) is not None}
