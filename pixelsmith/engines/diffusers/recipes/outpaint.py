"""outpaint on diffusers: a bigger canvas, the border pre-filled, then inpainted with a soft seam.

creativity sets the strength: 0 keeps the pre-fill's colours (0.6), 1 invents
freely (1.0). The original pixels are kept bit for bit beyond the seam band.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.lazy import cv2
from pixelsmith.tools.outpaint import TOOL, OutpaintRequest

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np


def canvas(req: OutpaintRequest) -> tuple[Image.Image, np.ndarray]:
    """The extended image (border pre-filled) and the mask of what may change (new area + seam)."""
    import numpy as np

    src = req.image.convert("RGB")
    w, h = src.width + req.left + req.right, src.height + req.up + req.down
    arr = np.asarray(src)
    padded = cv2.copyMakeBorder(arr, req.up, req.down, req.left, req.right, cv2.BORDER_REPLICATE)
    new = np.ones((h, w), np.uint8)
    new[req.up : req.up + src.height, req.left : req.left + src.width] = 0
    # Soften the replicated streaks so the sampler starts from colour, not stripes.
    k = max(3, (int(0.1 * max(w, h)) | 1))
    blurred = cv2.GaussianBlur(padded, (k, k), 0)
    padded = np.where(new[..., None] > 0, blurred, padded)
    # Seam: the mask reaches a little into the original, fading to 0, so the join is repainted softly.
    seam = max(2, int(0.04 * min(src.size)))
    dist = cv2.distanceTransform((1 - new).astype(np.uint8), cv2.DIST_L2, 5)
    mask = np.clip(1.0 - dist / seam, 0.0, 1.0).astype(np.float32)
    mask[new > 0] = 1.0
    return Image.fromarray(padded), mask


@K.family_recipe(TOOL, ["base", "inpaint"])
def outpaint(req: OutpaintRequest, ctx: Context) -> ToolResult:
    import numpy as np

    fam = K.family(TOOL)
    image, mask = canvas(req)
    prompt, negative = K.styled(req.prompt, None, req.style_preset)
    strength = 0.6 + 0.4 * req.creativity
    out = K.inpaint(ctx, image, mask, prompt, negative, strength=strength, base=fam.inpaint)
    # The pre-filled canvas is not the original: restore the input's exact pixels where the mask is 0.
    result = np.asarray(out).copy()
    src = np.asarray(req.image.convert("RGB"))
    region = result[req.up : req.up + src.shape[0], req.left : req.left + src.shape[1]]
    keep = mask[req.up : req.up + src.shape[0], req.left : req.left + src.shape[1]] == 0
    region[keep] = src[keep]
    meta = {**K.P.run_metadata(fam.inpaint), "strength": round(strength, 3)}
    return ToolResult(Image.fromarray(result), metadata=meta)
