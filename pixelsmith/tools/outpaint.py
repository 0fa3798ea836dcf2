"""outpaint: extend the canvas in any direction with content that continues the image."""

from __future__ import annotations

from typing import Annotated

from PIL import Image
from pydantic import model_validator

from pixelsmith.tools.base import (
    Field,
    ImageField,
    OutputFormat,
    Prompt,
    Seed,
    StylePreset,
    Tool,
    ToolRequest,
    rules,
)


class OutpaintRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD_ASPECT, "The image to extend.")]
    left: int = Field(0, ge=0, le=2000, description="Pixels to add on the left")
    right: int = Field(0, ge=0, le=2000, description="Pixels to add on the right")
    up: int = Field(0, ge=0, le=2000, description="Pixels to add at the top")
    down: int = Field(0, ge=0, le=2000, description="Pixels to add at the bottom")
    creativity: float = Field(0.5, ge=0, le=1, description="How freely the new area may be invented")
    prompt: str = Prompt("", description="What to see in the new area (optional)")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")

    @model_validator(mode="after")
    def _one_direction(self) -> OutpaintRequest:
        if not (self.left or self.right or self.up or self.down):
            raise ValueError("at least one of left, right, up, down must be non-zero")
        return self


TOOL = Tool(
    name="outpaint",
    group="edit",
    title="Outpaint",
    request=OutpaintRequest,
    rest_path="/v2beta/stable-image/edit/outpaint",
    bedrock_model="stability.stable-outpaint-v1:0",
    summary="Extends the image in any direction, continuing its content.",
)
