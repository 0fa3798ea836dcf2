"""erase: remove what the mask covers and fill it with the surroundings."""

from __future__ import annotations

from pixelsmith.tools.base import Field, ImageInput, OutputFormat, Seed, Tool, ToolRequest, ToolResult, rules


class EraseRequest(ToolRequest):
    image: ImageInput(rules.STANDARD, "The image to erase from.")
    mask: (
        ImageInput(rules.MASK, "White = erase, black = keep; if absent, the image's alpha (transparent = erase).")
        | None
    ) = None
    grow_mask: float = Field(5, ge=0, le=20, description="Grow the mask outward by this many pixels, feathered")
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


@TOOL.recipe(
    "embedded",
    models=[],
    priority=5,
    progress_unit="level",
    note="embedded: exemplar-based completion (multi-scale PatchMatch), no model",
)
def erase_embedded(req: EraseRequest, ctx) -> ToolResult:
    """Fill the grown mask with patches of the surroundings; outside it every pixel is kept."""
    import numpy as np
    from PIL import Image

    from pixelsmith.engines.embedded.patchmatch import complete
    from pixelsmith.imaging.composite import composite
    from pixelsmith.imaging.masks import grow_mask, mask_for

    grown = grow_mask(mask_for(req.image, req.mask), req.grow_mask)
    hole = grown > 0
    rgb = np.asarray(req.image.convert("RGB"))
    filled = Image.fromarray(complete(rgb, hole, seed=ctx.seed, progress=ctx.progress), "RGB")
    original = req.image
    if req.mask is None and original.mode == "RGBA":
        # The alpha channel was the mask: what was transparent is now filled, so the result is opaque.
        original = original.convert("RGB")
    elif original.mode == "RGBA":
        filled.putalpha(original.getchannel("A"))
    out = composite(original, filled, grown)
    return ToolResult(out, seed=ctx.seed, metadata={"erased_fraction": round(float(hole.mean()), 4)})
