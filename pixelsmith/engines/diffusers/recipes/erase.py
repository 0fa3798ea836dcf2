"""erase on diffusers: pre-fill the hole from its surroundings, then let SD3.5 (or SD-XL inpainting) repaint it
as plain background.

The classical fill (OpenCV Telea) gives the sampler a background-coloured start,
and an empty prompt with an object-shaped negative prompt steers it towards
"nothing here" instead of inventing a new object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.imaging.masks import grow_mask, mask_for
from pixelsmith.lazy import cv2
from pixelsmith.tools.erase import TOOL, EraseRequest

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

PROMPT = "clean empty background, seamless continuation of the surroundings"
NEGATIVE = "object, person, animal, text, watermark, logo, frame, new item, clutter"


def prefill(image: Image.Image, mask: np.ndarray) -> Image.Image:
    import numpy as np

    rgb = np.asarray(image.convert("RGB"))
    hole = (mask > 0).astype(np.uint8) * 255
    radius = max(3, int(0.02 * max(image.size)))
    return Image.fromarray(cv2.inpaint(rgb, hole, radius, cv2.INPAINT_TELEA))


@K.family_recipe(TOOL, ["base", "inpaint"])
def erase(req: EraseRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    mask = grow_mask(mask_for(req.image, req.mask), req.grow_mask)
    filled = prefill(req.image, mask)
    out = K.inpaint(ctx, filled, mask, PROMPT, NEGATIVE, strength=0.85, base=fam.inpaint)
    # inpaint() composited over the pre-filled copy; put the untouched original back outside the mask.
    from pixelsmith.imaging.composite import composite

    out = composite(req.image, out, mask)
    coverage = round(float((mask > 0).mean()), 4)
    return ToolResult(out, metadata={**K.P.run_metadata(fam.inpaint), "mask_coverage": coverage})
