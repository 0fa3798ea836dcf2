"""CLI flags generated from a tool's request model: no second list of fields.

Each field becomes ``--field-name`` (image fields take a file path); the tool's
primary image is the positional INPUT. Ranges, choices and defaults in the help
come straight from the model.
"""

from __future__ import annotations

import pathlib
import types
import typing
from typing import Any, Literal, get_args, get_origin

import click
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
        lo = getattr(meta, "ge", lo) if getattr(meta, "ge", None) is not None else lo
        hi = getattr(meta, "le", hi) if getattr(meta, "le", None) is not None else hi
    return lo, hi


def option_for(name: str, info: FieldInfo, *, is_image: bool) -> click.Option:
    tp = _unwrap(info.annotation)
    help_text = info.description or ""
    if is_image:
        return click.Option(
            [flag_name(name)],
            type=click.Path(exists=True, dir_okay=False, path_type=pathlib.Path),
            help=help_text or "image file",
        )
    if get_origin(tp) is Literal:
        ctype: Any = click.Choice([str(v) for v in get_args(tp)])
    elif tp is bool:
        ctype = click.BOOL
    elif tp is int:
        ctype = click.INT
    elif tp is float:
        ctype = click.FLOAT
    else:
        ctype = click.STRING
    lo, hi = _bounds(info)
    if lo is not None or hi is not None:
        help_text += f" [{lo if lo is not None else ''}..{hi if hi is not None else ''}]"
    if not info.is_required() and info.default is not None:
        help_text += f" (default {info.default})"
    if info.is_required():
        help_text += " (required)"
    # Defaults stay None here so the request model applies its own.
    return click.Option([flag_name(name)], type=ctype, default=None, help=help_text.strip())


def options_for(model: type, *, skip: tuple[str, ...] = ()) -> list[click.Option]:
    images = set(model.image_fields())
    return [option_for(n, f, is_image=n in images) for n, f in model.model_fields.items() if n not in skip]


def fields_from(params: dict[str, Any], model: type) -> dict[str, Any]:
    """Click's parsed params -> request fields (only those the user gave)."""
    out = {}
    for name in model.model_fields:
        value = params.get(name)
        if value is not None:
            out[name] = value
    return out
