"""pixelsmith: self-hosted image production service (the Stability AI Image Services toolbox).

Python API::

    import pixelsmith
    out = pixelsmith.run("remove-background", image="photo.jpg")
    out.image.save("cut.png")          # a PIL image
    open("cut.webp", "wb").write(pixelsmith.run("remove-background", image=img, output_format="webp").data)
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

__version__ = "0.1.0"


def run(tool: str, *, engine: str | None = None, **fields: Any):
    """Run ``tool`` with its request fields. Image fields take a PIL image, bytes, or a file path.

    Returns :class:`pixelsmith.core.Output` (``.image`` PIL, ``.data`` encoded bytes, ``.seed``).
    Raises :class:`pixelsmith.errors.PixelsmithError` subclasses on bad input or a missing model.
    """
    from pixelsmith import core
    from pixelsmith.tools import get_tool

    spec = get_tool(tool)
    images = set(spec.request.image_fields())
    data = {
        k: (pathlib.Path(v) if k in images and isinstance(v, (str, os.PathLike)) else v)
        for k, v in fields.items()
        if v is not None
    }
    return core.run(spec.name, spec.parse(data), engine=engine)


def tools() -> list[str]:
    from pixelsmith.tools import all_tools

    return [t.name for t in all_tools()]


__all__ = ["run", "tools", "__version__"]
