"""fast-upscale: x4 with real texture restored, measured against bicubic on real photos."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image
from skimage import data

import pixelsmith
from pixelsmith.tools.fast_upscale import output_size

sys.path.insert(0, str(ROOT))
from bench.quality.metrics import coarse_psnr, texture_ratio  # noqa: E402


def degraded(truth: Image.Image) -> Image.Image:
    """4x smaller and JPEG-compressed, as real low-res inputs are."""
    small = truth.resize((truth.width // 4, truth.height // 4), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=75)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize(
    "truth",
    [
        Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS),
        Image.open(ROOT / "samples" / "upscale_input.jpg").convert("RGB").crop((100, 300, 356, 556)),
    ],
    ids=["astronaut", "big-ben"],
)
def test_sharper_than_bicubic_and_faithful_at_coarse_scale(embedded_models, truth):
    small = degraded(truth)
    out = pixelsmith.run("fast-upscale", image=small)
    assert out.image.size == (truth.width, truth.height)
    bicubic = small.resize(truth.size, Image.Resampling.BICUBIC)
    # Measured: texture ratio 0.72 vs 0.31 (astronaut), 0.20 vs 0.11 (Big Ben); coarse PSNR within 1.5 dB.
    assert texture_ratio(out.image, truth) > 1.5 * texture_ratio(bicubic, truth)
    assert coarse_psnr(out.image, truth) > coarse_psnr(bicubic, truth) - 2.5
    # No colour shift: channel means stay close to the input's.
    assert np.abs(np.asarray(out.image, float).mean((0, 1)) - np.asarray(small, float).mean((0, 1))).max() < 4


def test_alpha_is_carried_and_format_honoured(embedded_models):
    img = Image.new("RGBA", (64, 48), (200, 30, 30, 255))
    img.paste((0, 0, 0, 0), (0, 0, 32, 48))
    out = pixelsmith.run("fast-upscale", image=img, output_format="webp")
    back = Image.open(io.BytesIO(out.data))
    assert back.size == (256, 192) and back.mode == "RGBA"
    alpha = np.asarray(back.getchannel("A"))
    assert alpha[:, :100].max() < 10 and alpha[:, 160:].min() > 245


def test_output_is_capped_at_16_megapixels():
    assert output_size(640, 480) == (2560, 1920)
    w, h = output_size(1536, 682)  # 4x would be 16.76 MP
    assert w * h <= 16_777_216 and abs(w / h - 1536 / 682) < 0.01
