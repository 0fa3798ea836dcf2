"""Putting edited pixels back so that what the tool promised to keep is kept bit for bit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np


def composite(original: Image.Image, edited: Image.Image, mask: np.ndarray) -> Image.Image:
    """``mask`` 1 = edited, 0 = original. Where the mask is 0 the original bytes are copied."""
    import numpy as np

    if edited.size != original.size:
        edited = edited.resize(original.size, Image.Resampling.LANCZOS)
    mode = "RGBA" if original.mode == "RGBA" else "RGB"
    orig = np.asarray(original.convert(mode))
    new = np.asarray(edited.convert(mode))
    m = np.clip(mask, 0.0, 1.0).astype(np.float32)[..., None]
    blend = orig.astype(np.float32) * (1.0 - m) + new.astype(np.float32) * m
    out = np.where(m > 0, np.clip(blend + 0.5, 0, 255).astype(np.uint8), orig)
    return Image.fromarray(out, mode)


def flatten(image: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """RGBA -> RGB over a solid background (for formats with no alpha)."""
    if image.mode != "RGBA":
        return image.convert("RGB")
    base = Image.new("RGB", image.size, background)
    base.paste(image, mask=image.getchannel("A"))
    return base
