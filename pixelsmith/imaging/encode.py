"""Encoding results exactly as ``output_format`` asks."""

from __future__ import annotations

import io

from PIL import Image

from pixelsmith.imaging.composite import flatten

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def encode(image: Image.Image, fmt: str, *, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, "PNG", compress_level=4)
    elif fmt == "jpeg":
        flatten(image).save(buf, "JPEG", quality=quality, subsampling=0 if quality >= 90 else 2, optimize=False)
    elif fmt == "webp":
        keep_alpha = image.mode == "RGBA"
        image.save(buf, "WEBP", quality=quality, method=4, alpha_quality=100 if keep_alpha else 90, exact=keep_alpha)
    else:
        raise ValueError(f"unknown output format {fmt!r}")
    return buf.getvalue()


def mime_for(fmt: str) -> str:
    return MIME[fmt]
