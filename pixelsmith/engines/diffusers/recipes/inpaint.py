"""inpaint on diffusers: SD3.5 (or SD-XL inpainting) inside the (grown, feathered) mask, composited at full
resolution."""

from __future__ import annotations

from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.imaging.masks import grow_mask, mask_for
from pixelsmith.tools.inpaint import TOOL, InpaintRequest


@K.family_recipe(TOOL, ["base", "inpaint"])
def inpaint(req: InpaintRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    mask = grow_mask(mask_for(req.image, req.mask), req.grow_mask)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = K.inpaint(ctx, req.image, mask, prompt, negative, strength=1.0, base=fam.inpaint)
    coverage = round(float((mask > 0).mean()), 4)
    return ToolResult(out, metadata={**K.P.run_metadata(fam.inpaint), "mask_coverage": coverage})
