"""erase: remove what the mask covers and fill it with the surroundings."""

from __future__ import annotations

from typing import Annotated

from PIL import Image

from pixelsmith.tools.base import Field, ImageField, OutputFormat, Seed, Tool, ToolRequest, rules


class EraseRequest(ToolRequest):
    image: Annotated[Image.Image, ImageField(rules.STANDARD, "The image to erase from.")]
    mask: (
        Annotated[
            Image.Image,
            ImageField(rules.MASK, "White = erase, black = keep; if absent, the image's alpha (transparent = erase)."),
        ]
        | None
    ) = None
    grow_mask: float = Field(5, ge=0, le=20, description="Grow the mask outward by this many pixels, feathered")
    snap_mask: bool = Field(
        False,
        description="pixelsmith extension: snap a sloppy brushed mask to the object it mostly covers (Segment "
        "Anything, MobileSAM): the whole object is erased, a spill onto a neighbour is not (embedded engine)",
    )
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")


TOOL = Tool(
    name="erase",
    group="edit",
    title="Erase Object",
    request=EraseRequest,
    rest_path="/v2beta/stable-image/edit/erase",
    bedrock_model="stability.stable-image-erase-object-v1:0",
    summary="Removes unwanted objects (under a mask) and fills in the background.",
)
