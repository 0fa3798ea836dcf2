"""Output-name templates: the documented placeholders and nothing else.

A template is text with placeholders ``{stem}``, ``{name}``, ``{ext}``, ``{tool}``,
``{tools}``, ``{item}``, ``{parent}`` and ``{index}`` (``{index:04d}``: the item
number zero-padded to 1-9 digits, the only format allowed); ``{{`` and ``}}`` are
literal braces. There are no format specs, no attribute or index access (this is
not ``str.format``: ``{stem.__class__}``, ``{index:>50000000}`` are refused), and a
rendered name is at most :data:`MAX_NAME` bytes per path segment. Every refusal is a
:class:`TemplateError` (400) naming the bad placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pixelsmith.errors import PixelsmithError

PLACEHOLDERS = ("stem", "name", "ext", "tool", "tools", "item", "parent", "index")
MAX_NAME = 255  # bytes (UTF-8): what most filesystems allow for one name
MAX_TEMPLATE = 1024
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_INDEX_PAD = re.compile(r"index:0([1-9])d")


class TemplateError(PixelsmithError):
    code = "bad_manifest"
    status = 400


def _allowed() -> str:
    return ", ".join("{" + p + "}" for p in PLACEHOLDERS) + " and {index:04d}"


def render(template: str, values: Mapping[str, str | int]) -> str:
    """``template`` with its placeholders filled from ``values``; TemplateError on anything else."""
    if len(template) > MAX_TEMPLATE:
        raise TemplateError(f"output name template is {len(template)} characters; at most {MAX_TEMPLATE}")
    out: list[str] = []
    pos = 0
    for match in _TOKEN.finditer(template):
        out.append(template[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            out.append(token[0])
            continue
        inner = match.group(1)
        if inner is None:  # a lone brace
            raise TemplateError(f"output name template: unmatched {token!r}; write {token * 2} for a literal brace")
        pad = _INDEX_PAD.fullmatch(inner)
        if pad:
            out.append(str(int(values["index"])).zfill(int(pad.group(1))))
        elif inner in PLACEHOLDERS:
            out.append(str(values[inner]))
        else:
            raise TemplateError(f"output name template: unknown placeholder {{{inner[:40]}}}; use {_allowed()}")
        if sum(len(part.encode()) for part in out) > MAX_TEMPLATE:
            break  # already too long: refused below
    out.append(template[pos:])
    name = "".join(out)
    if len(name.encode()) > MAX_TEMPLATE or any(len(part.encode()) > MAX_NAME for part in name.split("/")):
        raise TemplateError(
            f"output name template {template[:60]!r} makes a name over {MAX_NAME} bytes; shorten the template"
        )
    return name


__all__ = ["MAX_NAME", "PLACEHOLDERS", "TemplateError", "render"]
