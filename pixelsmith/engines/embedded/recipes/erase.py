"""erase on the embedded engine: exemplar-based completion (multi-scale PatchMatch), no model.

The grown mask is filled with patches of the surroundings, coarse to fine; outside it every pixel is
kept bit-identical (docs/erase-outpaint.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.erase import TOOL, EraseRequest

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

    from pixelsmith.engines.embedded.snap import Snapped


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
    import numpy as np

    from pixelsmith.engines.embedded.patchmatch import complete
    from pixelsmith.imaging.composite import composite
    from pixelsmith.imaging.masks import grow_mask, mask_for

    mask = mask_for(req.image, req.mask)
    snapped = _snap(req.image, mask) if req.snap_mask else None
    grown = grow_mask(snapped.mask if snapped else mask, req.grow_mask)
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
    meta: dict = {"erased_fraction": round(float(hole.mean()), 4)}
    if snapped is not None:
        meta["snapped"] = snapped.snapped
    return ToolResult(out, metadata=meta)


def _snap(image: Image.Image, mask: np.ndarray) -> Snapped:
    from pixelsmith.errors import Missing, ToolUnavailable
    from pixelsmith.models import is_installed

    if not is_installed("mobilesam"):
        raise ToolUnavailable("erase", [Missing("embedded", ["mobilesam"], "pixelsmith models fetch", "for snap_mask")])
    from pixelsmith.engines.embedded import session
    from pixelsmith.engines.embedded.snap import snap_mask
    from pixelsmith.engines.sessions import Segmenter

    return snap_mask(image, mask, session("mobilesam", Segmenter))
