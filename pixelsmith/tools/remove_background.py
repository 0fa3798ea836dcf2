"""remove-background: the subject kept, the background made transparent."""

from __future__ import annotations

from typing import Annotated, Literal

from PIL import Image

from pixelsmith.tools.base import Field, ImageField, Tool, ToolRequest, rules


class RemoveBackgroundRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.REMOVE_BACKGROUND, "The image whose background to remove.")]
    output_format: Literal["png", "webp", "jpeg"] = Field(
        "png", description="png or webp keep the transparency; jpeg (Bedrock only) flattens onto white"
    )


TOOL = Tool(
    name="remove-background",
    group="edit",
    title="Remove Background",
    request=RemoveBackgroundRequest,
    rest_path="/v2beta/stable-image/edit/remove-background",
    bedrock_model="stability.stable-image-remove-background-v1:0",
    summary="Segments the foreground subject and makes the background transparent.",
)
