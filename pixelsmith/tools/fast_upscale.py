"""fast-upscale: x4 in about a second, at most 16 MP out."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from PIL import Image

from pixelsmith.tools.base import Field, ImageField, OutputFormat, Tool, ToolRequest, rules

MAX_OUTPUT_PIXELS = 16_777_216

# pixelsmith extension (not in Stability's API; both the REST and the Bedrock APIs accept it):
# "auto" picks the photo or the illustration network from the input's content (see docs/quality.md).
UpscaleModel = Literal["auto", "photo", "illustration", "span", "clearreality-nc"]


class FastUpscaleRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.FAST_UPSCALE, "The image to upscale 4x.")]
    output_format: OutputFormat = Field("png", description="Format of the upscaled image")
    model: UpscaleModel = Field(
        "auto",
        description=(
            "pixelsmith extension: which network upscales. auto (default) = photo or illustration by the "
            "input's flat-colour share; photo = Real-ESRGAN general-x4v3 with the input's tones kept; "
            "illustration = Real-ESRGAN animevideov3; span = SPAN x4 (clean, uncompressed inputs only: it "
            "reproduces JPEG blocks); clearreality-nc = ClearReality x4, weights CC-BY-NC-SA-4.0, "
            "NON-COMMERCIAL use only"
        ),
    )


TOOL = Tool(
    name="fast-upscale",
    group="upscale",
    title="Fast Upscale",
    request=FastUpscaleRequest,
    rest_path="/v2beta/stable-image/upscale/fast",
    bedrock_model="stability.stable-fast-upscale-v1:0",
    summary="Upscales 4x with a fast, compact super-resolution network (output at most 16 MP).",
)


def output_size(width: int, height: int) -> tuple[int, int]:
    """4x, scaled down to fit 16 MP when 4x would exceed it."""
    w, h = width * 4, height * 4
    if w * h > MAX_OUTPUT_PIXELS:
        k = math.sqrt(MAX_OUTPUT_PIXELS / (w * h))
        w, h = int(w * k), int(h * k)
    return w, h
