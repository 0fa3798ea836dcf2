"""outpaint on the embedded engine: the new margins synthesised from the image's own patches, coarse to fine."""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.outpaint import TOOL, OutpaintRequest


@recipe(
    TOOL,
    engine="embedded",
    models=[],
    priority=5,
    progress_unit="level",
    note="embedded: exemplar-based completion (multi-scale PatchMatch); prompt and style_preset "
    "have no effect on this engine",
)
def outpaint(req: OutpaintRequest, ctx: Context) -> ToolResult:
    """Grow the canvas, then synthesise the new margins from the image's own patches, coarse to fine.

    ``creativity`` loosens the preference for copying from content near the seam (0: the
    closest matching surroundings, 1: any matching patch of the image). The original
    pixels are placed back unchanged.
    """
    import numpy as np

    from pixelsmith.engines.embedded.patchmatch import complete

    src = req.image.convert("RGB")
    w, h = src.size
    canvas = np.zeros((h + req.up + req.down, w + req.left + req.right, 3), np.uint8)
    inside = (slice(req.up, req.up + h), slice(req.left, req.left + w))
    canvas[inside] = np.asarray(src)
    hole = np.ones(canvas.shape[:2], bool)
    hole[inside] = False
    # edges=False: continuing whatever touches the border is the point of outpainting (the far-side rule is
    # for an erase stroke that spills onto a neighbouring object).
    out = complete(canvas, hole, seed=ctx.seed, creativity=req.creativity, progress=ctx.progress, edges=False)
    out[inside] = np.asarray(src)  # complete() never writes outside the hole; this makes it explicit
    meta = {"added": {"left": req.left, "right": req.right, "up": req.up, "down": req.down}}
    return ToolResult(Image.fromarray(out, "RGB"), metadata=meta)
