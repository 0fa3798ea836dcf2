"""fast-upscale: x4 in about a second, at most 16 MP out.

Embedded: Real-ESRGAN's compact model (realesr-animevideov3) through ncnn, tiled.
"""

from __future__ import annotations

import math

from PIL import Image

from pixelsmith.tools.base import Field, ImageInput, OutputFormat, Tool, ToolRequest, ToolResult, rules

MAX_OUTPUT_PIXELS = 16_777_216


class FastUpscaleRequest(ToolRequest):
    image: ImageInput(rules.FAST_UPSCALE, "The image to upscale 4x.")
    output_format: OutputFormat = Field("png", description="Format of the upscaled image")


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


@TOOL.recipe("embedded", models=["realesr-animevideov3-x4"], priority=10, progress_unit="tile")
def fast_upscale(req: FastUpscaleRequest, ctx) -> ToolResult:
    up = ctx.session("realesr-animevideov3-x4").upscale(req.image, progress=ctx.progress)
    target = output_size(*req.image.size)
    if up.size != target:
        up = up.resize(target, Image.Resampling.LANCZOS)
    return ToolResult(up, metadata={"scale": target[0] / req.image.width})
