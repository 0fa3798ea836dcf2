"""search-and-replace: find an object by a short phrase and replace it with the prompt."""

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


class SearchAndReplaceRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD_ASPECT, "The image to edit.")]
    prompt: str = Prompt(description="What to put in place of the found object")
    search_prompt: str = Field(..., max_length=10_000, description="What to find and replace, e.g. 'sweater'")
    negative_prompt: str | None = NegativePrompt()
    mask: (
        Annotated[
            Image.Image,
            ImageField(
                rules.MASK,
                "pixelsmith extension: white = the object to replace. When given it is used instead of searching for "
                "search_prompt (the studio's click-to-select sends it).",
            ),
        ]
        | None
    ) = None
    grow_mask: float = Field(3, ge=0, le=20, description="Grow the found mask by this many pixels, feathered")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="search-and-replace",
    group="edit",
    title="Search and Replace",
    request=SearchAndReplaceRequest,
    rest_path="/v2beta/stable-image/edit/search-and-replace",
    bedrock_model="stability.stable-image-search-replace-v1:0",
    summary="Finds the object named by search_prompt and replaces it with what the prompt describes.",
)
