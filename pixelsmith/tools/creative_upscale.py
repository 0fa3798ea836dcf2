"""creative-upscale: from <= 1 MP up to 4K, reimagining detail (asynchronous on REST)."""

from __future__ import annotations

from typing import Annotated

from PIL import Image

from pixelsmith.tools.base import (
    Field,
    ImageField,
    NegativePrompt,
    OutputFormat,
    Prompt,
    Seed,
    StylePreset,
    Tool,
    ToolRequest,
    rules,
)


class CreativeUpscaleRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.CREATIVE_UPSCALE, "The image to upscale (at most 1 megapixel).")]
    prompt: str = Prompt()
    creativity: float = Field(0.3, ge=0.1, le=0.5, description="How much detail may be invented")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="creative-upscale",
    group="upscale",
    title="Creative Upscale",
    request=CreativeUpscaleRequest,
    rest_path="/v2beta/stable-image/upscale/creative",
    bedrock_model="stability.stable-creative-upscale-v1:0",
    rest_async=True,
    summary="Upscales degraded images up to 4K, generating new detail guided by the prompt.",
)
