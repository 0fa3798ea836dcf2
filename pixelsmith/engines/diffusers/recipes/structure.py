"""structure on diffusers: a Depth Anything map drives the SD3.5 Large depth ControlNet."""

from __future__ import annotations

from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.diffusers.recipes.sketch import controlled
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.structure import TOOL, StructureRequest

CONTROLNET = "sd3.5-large-controlnet-depth"


@recipe(TOOL, engine="diffusers", models=[K.BASE, CONTROLNET, preprocess.DEPTH_MODEL], priority=K.PRIORITY)
def structure(req: StructureRequest, ctx: Context) -> ToolResult:
    control = preprocess.depth(req.image)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = controlled(ctx, req.image, control, prompt, negative, req.control_strength, CONTROLNET)
    return ToolResult(out, metadata={**K.P.run_metadata(K.BASE), "controlnet": CONTROLNET})
