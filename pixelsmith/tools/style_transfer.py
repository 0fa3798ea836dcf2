"""style-transfer: repaint init_image in the style of style_image."""

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
    Tool,
    ToolRequest,
    rules,
)


class StyleTransferRequest(ToolRequest):
    init_image: Annotated[Image.Image, ImageField(rules.STANDARD_ASPECT, "The image to restyle.")]
    style_image: Annotated[Image.Image, ImageField(rules.STANDARD, "The image whose style to apply.")]
    prompt: str = Prompt("", description="Optional description of the result")
    negative_prompt: str | None = NegativePrompt()
    style_strength: float = Field(1.0, ge=0, le=1, description="How strongly the style is applied")
    composition_fidelity: float = Field(
        0.9, ge=0, le=1, description="How closely the composition of init_image is kept"
    )
    change_strength: float = Field(0.9, ge=0.1, le=1, description="How much the original image may change")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")


TOOL = Tool(
    name="style-transfer",
    group="control",
    title="Style Transfer",
    request=StyleTransferRequest,
    rest_path="/v2beta/stable-image/control/style-transfer",
    bedrock_model="stability.stable-style-transfer-v1:0",
    summary="Applies the style of style_image to init_image, keeping its composition.",
)
