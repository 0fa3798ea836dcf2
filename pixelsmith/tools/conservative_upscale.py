"""conservative-upscale: to about 4 MP, changing the image as little as possible."""

from __future__ import annotations

import math
from typing import Annotated

from PIL import Image

from pixelsmith.tools.base import (
    Field,
    ImageField,
    NegativePrompt,
    OutputFormat,
    Prompt,
    Seed,
    Tool,
    ToolRequest,
    rules,
)


class ConservativeUpscaleRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD_ASPECT, "The image to upscale.")]
    prompt: str = Prompt(description="What the image shows (guides diffusion refinement)")
    creativity: float = Field(0.35, ge=0.1, le=0.5, description="How much detail may be invented")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")


TOOL = Tool(
    name="conservative-upscale",
    group="upscale",
    title="Conservative Upscale",
    request=ConservativeUpscaleRequest,
    rest_path="/v2beta/stable-image/upscale/conservative",
    bedrock_model="stability.stable-conservative-upscale-v1:0",
    summary="Upscales to about 4 megapixels while preserving the input.",
)


TARGET_PIXELS = 4_194_304  # "about 4 megapixels": 2048 x 2048


def output_size(width: int, height: int, target_pixels: int | None = None) -> tuple[int, int]:
    """The tool's output size on every engine: about ``target_pixels`` (default :data:`TARGET_PIXELS`, read at
    call time), the input's aspect ratio, both sides multiples of 4 (the x4 networks' scale)."""
    k = math.sqrt((target_pixels or TARGET_PIXELS) / (width * height))
    return max(4, round(width * k / 4) * 4), max(4, round(height * k / 4) * 4)
