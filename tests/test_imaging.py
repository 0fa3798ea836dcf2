"""The imaging core against a corpus of bad and unusual files, and the mask/composite invariants."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from conftest import png_bytes
from PIL import Image

from pixelsmith.errors import ImageTooLarge, InvalidRequest
from pixelsmith.imaging import composite, decode_image, encode, grow_mask, mask_for
from pixelsmith.imaging.rules import FAST_UPSCALE, STANDARD, STANDARD_ASPECT


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares a size but whose data is a few bytes (a bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def photo(w=320, h=240, mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    arr = (rng.random((h, w, 4)) * 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGBA")  # a real, varying alpha channel
    return img if mode == "RGBA" else img.convert("RGB").convert(mode)


@pytest.mark.parametrize(
    "data, code",
    [
        (b"", "empty_image"),
        (b"this is not an image at all" * 10, "unsupported_image"),
        (b"GIF89a" + b"\x00" * 100, "unsupported_image"),
        (b"%PDF-1.4\n" + b"\x00" * 100, "unsupported_image"),
    ],
)
def test_garbage_is_rejected_with_a_clear_error(data, code):
    with pytest.raises(InvalidRequest) as err:
        decode_image(data, field="image", rule=STANDARD)
    assert err.value.problems[0].code == code
    assert err.value.problems[0].field == "image"


def test_truncated_png_and_jpeg():
    for fmt in ("PNG", "JPEG"):
        data = png_bytes(photo(), fmt)
        with pytest.raises(InvalidRequest) as err:
            decode_image(data[: len(data) // 2], field="image", rule=STANDARD)
        assert "truncated" in err.value.message or "could not be read" in err.value.message


def test_bomb_header_is_rejected_before_decoding():
    # 20000x20000 declared: rejected from the header alone, with the size in the message.
    with pytest.raises(ImageTooLarge) as err:
        decode_image(_png_header_only(20000, 20000), field="image", rule=STANDARD)
    assert "20000x20000" in err.value.message
    # Even with no rule, the hard cap applies.
    with pytest.raises(InvalidRequest):
        decode_image(_png_header_only(60000, 60000), field="image")


def test_size_rules():
    with pytest.raises(InvalidRequest) as err:
        decode_image(png_bytes(photo(1, 1)), field="image", rule=STANDARD)
    assert err.value.problems[0].code == "image_too_small"
    with pytest.raises(InvalidRequest) as err:
        decode_image(png_bytes(photo(640, 128)), field="image", rule=STANDARD_ASPECT)
    assert err.value.problems[0].code == "bad_aspect_ratio"
    assert decode_image(png_bytes(photo(640, 128)), field="image", rule=STANDARD).size == (640, 128)
    with pytest.raises(ImageTooLarge):
        decode_image(png_bytes(photo(1600, 64)), field="image", rule=FAST_UPSCALE)


def test_cmyk_16bit_palette_la_are_normalised():
    cmyk = decode_image(png_bytes(photo(128, 96, "CMYK"), "JPEG"), rule=STANDARD)
    assert cmyk.mode == "RGB" and cmyk.size == (128, 96)

    gray16 = Image.fromarray((np.linspace(0, 65535, 128 * 96).reshape(96, 128)).astype(np.uint16))
    out = decode_image(png_bytes(gray16), rule=STANDARD)
    assert out.mode == "RGB"
    arr = np.asarray(out)[..., 0]
    assert arr.min() <= 1 and arr.max() >= 254  # the full 16-bit range maps to the full 8-bit range

    pal = photo(128, 96).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    out = decode_image(png_bytes(pal, transparency=0), rule=STANDARD)
    assert out.mode == "RGBA"
    assert (np.asarray(out)[..., 3] == 0).any() and (np.asarray(out)[..., 3] == 255).any()

    la = photo(128, 96).convert("LA")
    assert decode_image(png_bytes(la), rule=STANDARD).mode == "RGBA"


def test_exif_orientation_is_applied():
    img = photo(200, 100)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    data = png_bytes(img, "JPEG", exif=exif.tobytes())
    assert decode_image(data, rule=STANDARD).size == (100, 200)


def test_webp_with_alpha_round_trips():
    img = photo(128, 96, "RGBA")
    out = decode_image(png_bytes(img, "WEBP", lossless=True), rule=STANDARD)
    assert out.mode == "RGBA" and out.size == (128, 96)


def test_mask_from_alpha_and_explicit_mask_resized():
    img = photo(100, 80, "RGBA")
    alpha = np.full((80, 100), 255, np.uint8)
    alpha[20:40, 30:60] = 0
    img.putalpha(Image.fromarray(alpha))
    m = mask_for(img, None)
    assert m.shape == (80, 100) and m[30, 40] == 1.0 and m[5, 5] == 0.0

    small = Image.new("L", (50, 40), 0)
    small.paste(255, (10, 10, 20, 20))
    m2 = mask_for(photo(100, 80), small.convert("RGB"))
    assert m2.shape == (80, 100) and m2[30, 30] > 0.9 and m2[70, 90] == 0.0

    with pytest.raises(InvalidRequest) as err:
        mask_for(photo(100, 80), None)
    assert err.value.problems[0].field == "mask"


def test_grow_mask_dilates_and_feathers():
    m = np.zeros((100, 100), np.float32)
    m[40:60, 40:60] = 1.0
    g = grow_mask(m, 8)
    assert (g[40:60, 40:60] == 1.0).all()  # the original area keeps full strength
    assert 0 < g[50, 34] < 1.0  # the grown band is feathered
    assert g[50, 20] == 0.0  # beyond the growth nothing changes
    assert (g > 0).sum() > (m > 0).sum()
    assert (grow_mask(m, 0) == m).all()


def test_composite_keeps_outside_bit_identical():
    orig, edited = photo(120, 90), photo(120, 90).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    m = np.zeros((90, 120), np.float32)
    m[30:60, 40:80] = 1.0
    m = grow_mask(m, 5)
    out = np.asarray(composite(orig, edited, m))
    o = np.asarray(orig)
    assert (out[m == 0] == o[m == 0]).all()
    assert (out[m == 1] == np.asarray(edited)[m == 1]).all()


@pytest.mark.parametrize("fmt, magic", [("png", b"\x89PNG"), ("jpeg", b"\xff\xd8\xff"), ("webp", b"RIFF")])
def test_encode_writes_the_requested_format(fmt, magic):
    data = encode(photo(64, 64, "RGBA"), fmt)
    assert data.startswith(magic)
    back = Image.open(io.BytesIO(data))
    assert back.format == {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}[fmt]
    assert back.mode == ("RGB" if fmt == "jpeg" else "RGBA")
