"""Safe decoding of untrusted image bytes.

Order matters: identify the format and read the declared size from the header,
check it against the field's rule, and only then decode the pixels. A
decompression bomb is therefore rejected before it can allocate anything.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re

from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from pixelsmith.errors import ImageTooLarge, InvalidRequest
from pixelsmith.imaging.rules import HARD_MAX_PIXELS, HARD_MAX_SIDE, ImageRule

# We check every declared size ourselves (per field, against HARD_MAX_PIXELS at
# most) before any pixel is decoded, so Pillow's own global guard is not needed;
# it would fire inside Image.open and hide the size from the caller's message.
Image.MAX_IMAGE_PIXELS = None
# A truncated stream must fail the decode (a 400), never come back padded with grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
log = logging.getLogger("pixelsmith.imaging")
ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
_SRGB = ImageCms.createProfile("sRGB")


def b64decode_field(field: str, text: str) -> bytes:
    """Strict base64 (a ``data:`` URL prefix is tolerated)."""
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest.one(field, "is not valid base64", "bad_base64") from None


def decode_image(data: bytes, *, field: str = "image", rule: ImageRule | None = None) -> Image.Image:
    """Bytes -> an RGB or RGBA image, upright, 8 bits per channel, sRGB."""
    if not data:
        raise InvalidRequest.one(field, "is empty (0 bytes)", "empty_image")
    try:
        img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except UnidentifiedImageError:
        raise InvalidRequest.one(field, "is not a PNG, JPEG or WebP image", "unsupported_image") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is the caller's bad file
        raise InvalidRequest.one(
            field, f"could not be read as an image ({type(exc).__name__})", "corrupt_image"
        ) from None

    width, height = img.size
    if rule is not None:
        rule.check(field, width, height)
    elif width * height > HARD_MAX_PIXELS or max(width, height) > HARD_MAX_SIDE:
        raise ImageTooLarge.one(field, f"image is {width}x{height}, over {HARD_MAX_PIXELS:,} pixels", "image_too_large")

    if ImageFile.LOAD_TRUNCATED_IMAGES:  # some library switched Pillow's global back on: undo it
        log.warning("PIL.ImageFile.LOAD_TRUNCATED_IMAGES was set; pixelsmith turns it off")
        ImageFile.LOAD_TRUNCATED_IMAGES = False
    if img.format == "JPEG" and not img.info.get("progressive"):
        strict = _strict_jpeg(data)
        if strict is not data:
            img = Image.open(io.BytesIO(strict), formats=("JPEG",))
    try:
        img.load()  # the whole stream: a premature end raises here
    except Exception:  # noqa: BLE001 - truncated or corrupt pixel data
        raise InvalidRequest.one(field, "is truncated or corrupt", "corrupt_image") from None
    return normalise(img)


_ECS_END = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")  # the marker that ends entropy-coded data
_SCAN_PAD = b"\x00" * 16


def _strict_jpeg(data: bytes) -> bytes:
    """A baseline JPEG whose scan may be cut short, made so that a short scan fails to decode.

    libjpeg fills a scan that ends early at a marker (``EOI`` right after a cut)
    with flat grey and only warns, which Pillow drops: 691 bytes would decode as a
    1000x1000 image. Pillow stops reading once the last row is decoded, so the
    ``EOI`` after the (single) scan is replaced by a few zero bytes of look-ahead:
    a complete scan decodes exactly as before, a short one runs out of data and
    raises "image file is truncated". Other layouts are returned unchanged.
    """
    sos = data.find(b"\xff\xda")
    if sos < 0 or sos + 4 > len(data):
        return data
    start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    end = _ECS_END.search(data, start)
    if end is None or end.group(1) != b"\xd9":
        return data  # another scan follows (or no end marker at all: Pillow reports that itself)
    return data[: end.start()] + _SCAN_PAD


def normalise(img: Image.Image) -> Image.Image:
    """EXIF orientation, colour profile, 16-bit, palette and CMYK -> RGB(A) 8-bit sRGB."""
    img = ImageOps.exif_transpose(img)
    icc = img.info.get("icc_profile")
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode in ("RGB", "L") and "transparency" in img.info)
    if icc and img.mode in ("RGB", "RGBA", "CMYK"):
        img = _to_srgb(img, icc)
    target = "RGBA" if has_alpha else "RGB"
    if img.mode != target:
        img = img.convert(target)
    img.info = {}
    return img


def _to_8bit(img: Image.Image) -> Image.Image:
    import numpy as np

    arr = np.asarray(img).astype(np.float64)
    top = 65535.0 if img.mode.startswith("I") and arr.max() > 255 else max(arr.max(), 1.0)
    if img.mode == "F":
        top = 1.0 if arr.max() <= 1.0 else arr.max()
    return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")


def _to_srgb(img: Image.Image, icc: bytes) -> Image.Image:
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        alpha = img.getchannel("A") if img.mode == "RGBA" else None
        base = img.convert("RGB") if img.mode == "RGBA" else img
        out = ImageCms.profileToProfile(base, src, _SRGB, outputMode="RGB")
        assert out is not None  # profileToProfile returns None only with inPlace=True
        if alpha is not None:
            out.putalpha(alpha)
        return out
    except Exception:  # noqa: BLE001 - a broken profile is ignored, not fatal
        return img
