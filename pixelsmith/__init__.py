"""pixelsmith: self-hosted image production service (the Stability AI Image Services toolbox).

Python API::

    import pixelsmith
    out = pixelsmith.run("remove-background", image="photo.jpg")
    out.image.save("cut.png")          # a PIL image
    open("cut.webp", "wb").write(pixelsmith.run("remove-background", image=img, output_format="webp").data)
    sel = pixelsmith.segment("photo.jpg", points=[(510, 650, 1)])   # Segment Anything (MobileSAM)
    sel.mask.save("mask.png"); sel.score
    again = pixelsmith.segment(image_id=sel.image_id, points=[(510, 650, 1), (600, 300, 0)])  # cached embedding
"""

from __future__ import annotations

import base64
import binascii
import os
import pathlib
from collections.abc import Sequence
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


def segment(
    image: Any = None,
    *,
    points: Sequence[Sequence[float]] = (),
    box: Sequence[float] | None = None,
    multimask: bool | None = None,
    image_id: str | None = None,
):
    """Select an object with Segment Anything (MobileSAM): ``points`` ``(x, y[, label])`` in image pixels
    (label 1 include, 0 exclude) and/or ``box`` ``(x0, y0, x1, y1)``.

    ``image`` is a PIL image, bytes or a file path; or pass ``image_id`` (from an earlier result) to reuse the
    cached embedding, so a further click costs only the prompt decoder. Returns a
    :class:`pixelsmith.engines.embedded.mobilesam.Segmentation`: ``.mask`` (PIL mode L, 0/255, the image's
    size), ``.score`` (the model's predicted IoU), ``.image_id``, ``.seconds``, ``.array`` (bool), ``.logits``.

    Raises :class:`pixelsmith.errors.InvalidRequest` (no prompt, a prompt outside the image),
    :class:`pixelsmith.errors.NotFound` (an image_id no longer cached: send the image again) and
    :class:`pixelsmith.errors.ToolUnavailable` (MobileSAM not installed: ``pixelsmith models fetch mobilesam``).
    """

    from PIL import Image

    from pixelsmith.errors import InvalidRequest, Missing, NotFound, ToolUnavailable
    from pixelsmith.imaging.decode import decode_image
    from pixelsmith.models import get_model, is_installed

    if (image is None) == (image_id is None):
        raise InvalidRequest.one("image", "give either an image or the image_id of an earlier result")
    if not is_installed("mobilesam"):
        raise ToolUnavailable(
            "segment", [Missing("embedded", ["mobilesam"], f"{get_model('mobilesam').command} mobilesam")]
        )
    if image is not None and not isinstance(image, Image.Image):
        data = image if isinstance(image, bytes) else pathlib.Path(image).read_bytes()
        image = decode_image(data)
    elif image is not None:
        image.load()
    from pixelsmith.engines.embedded import session
    from pixelsmith.engines.sessions import Segmenter

    sam = session("mobilesam", Segmenter)
    try:
        return sam.segment(image if image is not None else str(image_id), points, box, multimask)
    except KeyError:
        raise NotFound(
            f"image_id {image_id} is not (or no longer) cached on this server: send the image again"
        ) from None
    except ValueError as exc:
        raise InvalidRequest.one("box" if "box" in str(exc) else "points", str(exc)) from None


def tools() -> list[str]:
    """The names of every tool."""
    from pixelsmith.tools import all_tools

    return [t.name for t in all_tools()]


__all__ = ["run", "segment", "tools", "__version__"]
