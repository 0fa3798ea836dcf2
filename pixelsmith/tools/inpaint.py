"""inpaint: fill or replace the masked area following a prompt."""

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


class InpaintRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD, "The image to inpaint.")]
    prompt: str = Prompt()
    mask: (
        Annotated[
            Image.Image,
            ImageField(
                rules.MASK, "White = repaint, black = keep; if absent, the image's alpha (transparent = repaint)."
            ),
        ]
        | None
    ) = None
    grow_mask: float = Field(5, ge=0, le=100, description="Grow the mask outward by this many pixels, feathered")
    negative_prompt: str | None = NegativePrompt()
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="inpaint",
    group="edit",
    title="Inpaint",
    request=InpaintRequest,
    rest_path="/v2beta/stable-image/edit/inpaint",
    bedrock_model="stability.stable-image-inpaint-v1:0",
    summary="Fills or replaces the masked region with content that follows the prompt.",
)
