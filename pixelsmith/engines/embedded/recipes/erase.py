"""erase on the embedded engine: exemplar-based completion (multi-scale PatchMatch), no model.

The grown mask is filled with patches of the surroundings, coarse to fine; outside it every pixel is
kept bit-identical (docs/erase-outpaint.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.erase import TOOL, EraseRequest


@recipe(
    TOOL,
    engine="embedded",
    models=[],
    priority=5,
    progress_unit="level",
    note="embedded: exemplar-based completion (multi-scale PatchMatch), no model",
)
def erase(req: EraseRequest, ctx: Context) -> ToolResult:
    """Fill the grown mask with patches of the surroundings; outside it every pixel is kept."""
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
    return ToolResult(out, metadata={"erased_fraction": round(float(hole.mean()), 4)})
