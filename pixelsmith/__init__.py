"""pixelsmith: self-hosted image production service (the Stability AI Image Services toolbox).

Python API::

    import pixelsmith
    out = pixelsmith.run("remove-background", image="photo.jpg")
    out.image.save("cut.png")          # a PIL image
    open("cut.webp", "wb").write(pixelsmith.run("remove-background", image=img, output_format="webp").data)
"""

from __future__ import annotations

import base64
import binascii
import os
import pathlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixelsmith.core import Output

__version__ = "0.1.0"

# No PNG, JPEG or WebP file is smaller than this: shorter base64 is a mistyped path, not an image.
_MIN_IMAGE_BYTES = 24


def _is_file(text: str) -> bool:
    try:
        return pathlib.Path(text).is_file()
    except (OSError, ValueError):  # too long for a file name, or a NUL in it: not a path
        return False


def _image_input(field: str, value: Any) -> Any:
    """An image field's value as the request model takes it.

    A ``pathlib.Path`` (any ``os.PathLike``) or a ``str`` naming an existing file is a path; any other
    ``str`` is base64 text, bare or as a ``data:image/...;base64,`` URL; bytes and PIL images pass as
    they are. A ``str`` that is neither a file nor base64 is an :class:`~pixelsmith.errors.InvalidRequest`
    naming the field.
    """
    if isinstance(value, os.PathLike):
        return pathlib.Path(value)
    if not isinstance(value, str):
        return value
    if _is_file(value):
        return pathlib.Path(value)
    text = value.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if len(data) < _MIN_IMAGE_BYTES:
        from pixelsmith.errors import InvalidRequest

        shown = value if len(value) <= 60 else value[:57] + "..."
        raise InvalidRequest.one(field, f"is neither an existing file nor base64 image data: {shown!r}", "not_an_image")
    return data


def run(tool: str, *, engine: str | None = None, **fields: Any) -> Output:
    """Run ``tool`` with its request fields.

    Image fields take a file path (``str`` or ``pathlib.Path``), bytes, base64 text (or a
    ``data:`` URL) or a PIL image. Returns :class:`pixelsmith.core.Output` (``.image`` PIL,
    ``.data`` encoded bytes, ``.seed``). Raises :class:`pixelsmith.errors.PixelsmithError`
    subclasses on bad input (``InvalidRequest`` names the field) or a missing model
    (``ToolUnavailable``).
    """
    from pixelsmith import core
    from pixelsmith.tools import get_tool

    spec = get_tool(tool)
    images = set(spec.request.image_fields())
    data = {k: (_image_input(k, v) if k in images else v) for k, v in fields.items() if v is not None}
    return core.run(spec.name, spec.parse(data), engine=engine)


def tools() -> list[str]:
    """The names of every tool."""
    from pixelsmith.tools import all_tools

    return [t.name for t in all_tools()]


__all__ = ["run", "tools", "__version__"]
