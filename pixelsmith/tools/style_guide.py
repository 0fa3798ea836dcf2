"""style-guide: generate from the prompt in the style of a reference image."""

from __future__ import annotations

from typing import Annotated

from PIL import Image

from pixelsmith.tools.base import (
    AspectRatio,
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


class StyleGuideRequest(ToolRequest):
    image: Annotated[
        Image.Image, ImageField(rules.STANDARD_ASPECT, "The reference image whose style guides the result.")
    ]
    prompt: str = Prompt()
    aspect_ratio: AspectRatio = Field("1:1", description="Aspect ratio of the output")
    fidelity: float = Field(0.5, ge=0, le=1, description="How closely the output's style follows the reference")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="style-guide",
    group="control",
    title="Style Guide",
    request=StyleGuideRequest,
    rest_path="/v2beta/stable-image/control/style",
    bedrock_model="stability.stable-image-style-guide-v1:0",
    summary="Generates a new image from the prompt in the style of the reference image.",
)
