"""search-and-recolor: find an object by a short phrase and change its colour."""

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


class SearchAndRecolorRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD_ASPECT, "The image to recolor.")]
    prompt: str = Prompt(description="The new look, e.g. 'pink jacket'")
    select_prompt: str = Field(..., max_length=10_000, description="What to find and recolor, e.g. 'jacket'")
    negative_prompt: str | None = NegativePrompt()
    mask: (
        Annotated[
            Image.Image,
            ImageField(
                rules.MASK,
                "pixelsmith extension: white = the object to recolor. When given it is used instead of searching for "
                "select_prompt (the studio's click-to-select sends it).",
            ),
        ]
        | None
    ) = None
    grow_mask: float = Field(3, ge=0, le=20, description="Grow the found mask by this many pixels, feathered")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="search-and-recolor",
    group="edit",
    title="Search and Recolor",
    request=SearchAndRecolorRequest,
    rest_path="/v2beta/stable-image/edit/search-and-recolor",
    bedrock_model="stability.stable-image-search-recolor-v1:0",
    summary="Finds the object named by select_prompt and recolors it as the prompt says.",
)
