"""Encoding results exactly as ``output_format`` asks."""

from __future__ import annotations

import io

from PIL import Image

from pixelsmith.imaging.composite import flatten

# PNG compress level, chosen from bench/png_level.py (CPU seconds interleaved, docs/performance.md): level 1 takes
# 0.54-0.63x level 4's time for +8.6-13.6 % bytes on a 4 MP photo, a 1 MP render and an RGBA cut-out; level 2
# is no faster than 1, 6 costs 1.8-2.3x for -1 to -3.5 %. The time saved outweighs the bytes on links above ~10 Mbit/s.
PNG_LEVEL = 1

MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def encode(image: Image.Image, fmt: str, *, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    if fmt == "png":
        image.save(buf, "PNG", compress_level=PNG_LEVEL)
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
