"""remove-background: the subject kept, the background made transparent.

Embedded: ISNet's soft matte becomes the alpha channel at the input resolution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image

from pixelsmith.tools.base import Field, ImageInput, Tool, ToolRequest, ToolResult, rules


class RemoveBackgroundRequest(ToolRequest):
    image: ImageInput(rules.REMOVE_BACKGROUND, "The image whose background to remove.")
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


@TOOL.recipe("embedded", models=["isnet-general"], priority=10)
def remove_background(req: RemoveBackgroundRequest, ctx) -> ToolResult:
    matte = ctx.session("isnet-general").matte(req.image)
    alpha = Image.fromarray(np.clip(matte * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    out = req.image.convert("RGB")
    out.putalpha(alpha)
    return ToolResult(out, metadata={"foreground_fraction": round(float((matte >= 0.5).mean()), 4)})
