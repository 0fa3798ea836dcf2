"""structure: keep an image's structure, repaint everything else from the prompt."""

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


class StructureRequest(ToolRequest):
    image: Annotated[
        Image.Image, ImageField(rules.STANDARD_ASPECT, "The image whose structure (edges, depth) controls the result.")
    ]
    prompt: str = Prompt()
    control_strength: float = Field(0.7, ge=0, le=1, description="How strongly the structure controls the result")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="structure",
    group="control",
    title="Control Structure",
    request=StructureRequest,
    rest_path="/v2beta/stable-image/control/structure",
    bedrock_model="stability.stable-image-control-structure-v1:0",
    summary="Generates an image that keeps the structure of the input image.",
)
