"""search-and-replace on diffusers: OWLv2 + SAM find the object, SD3.5 (or SD-XL inpainting) paints the prompt there."""

from __future__ import annotations

from pixelsmith.engines.diffusers import grounding
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.imaging.masks import grow_mask, mask_for
from pixelsmith.tools.search_and_replace import TOOL, SearchAndReplaceRequest


@K.family_recipe(TOOL, ["base", "inpaint"], [grounding.DETECTOR, grounding.SEGMENTER])
def search_and_replace(req: SearchAndReplaceRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    found = (
        grounding.Found(mask_for(req.image, req.mask), [], [], False)  # the caller's selection: no search
        if req.mask is not None
        else grounding.find(req.image, req.search_prompt)
    )
    mask = grow_mask(found.mask, req.grow_mask)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = K.inpaint(ctx, req.image, mask, prompt, negative, strength=1.0, base=fam.inpaint)
    return ToolResult(
        out,
        metadata={
            **K.P.run_metadata(fam.inpaint),
            "boxes": [[round(v, 1) for v in b] for b in found.boxes],
            "scores": [round(s, 4) for s in found.scores],
            "fallback_box": found.fallback,
        },
    )
