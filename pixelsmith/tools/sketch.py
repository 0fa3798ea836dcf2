"""sketch: turn a rough drawing into an image following the prompt."""

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


class SketchRequest(ToolRequest):
    image: Annotated[
        Image.Image, ImageField(rules.STANDARD_ASPECT, "The sketch or line drawing that controls the result.")
    ]
    prompt: str = Prompt()
    control_strength: float = Field(0.7, ge=0, le=1, description="How strongly the sketch controls the result")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="sketch",
    group="control",
    title="Control Sketch",
    request=SketchRequest,
    rest_path="/v2beta/stable-image/control/sketch",
    bedrock_model="stability.stable-image-control-sketch-v1:0",
    summary="Generates an image that follows the lines of a sketch.",
)
