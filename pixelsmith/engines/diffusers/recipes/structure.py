"""structure on diffusers: a Depth Anything map drives the family's depth ControlNet (SD3.5 Large or SDXL)."""

from __future__ import annotations

from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.diffusers.recipes.sketch import controlled
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.tools.structure import TOOL, StructureRequest


@K.family_recipe(TOOL, ["base", "depth"], [preprocess.DEPTH_MODEL])
def structure(req: StructureRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    control = preprocess.depth(req.image)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = controlled(ctx, req.image, control, prompt, negative, req.control_strength, fam.depth, fam.base)
    return ToolResult(out, metadata={**K.P.run_metadata(fam.base), "controlnet": fam.depth})
