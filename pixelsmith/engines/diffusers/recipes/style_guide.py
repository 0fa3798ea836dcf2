"""style-guide on diffusers: text-to-image with an IP-Adapter seeing the reference (SD3.5 Large with the InstantX
adapter and SigLIP, or SDXL with h94's ViT-H adapter).

fidelity is the adapter scale (0 = the prompt alone, 1 = the reference dominates).
"""

from __future__ import annotations

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.tools.style_guide import TOOL, StyleGuideRequest


@K.family_recipe(TOOL, ["base", "adapter", "encoder"])
def style_guide(req: StyleGuideRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    pipe = P.build("txt2img", fam.base)
    w, h = P.size_for_aspect(pipe, req.aspect_ratio)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    steps = P.steps_for(fam.base)
    with K.C.RUN_LOCK, K.ip_adapter(pipe, fam, req.fidelity):
        out = K.run(
            pipe,
            ctx.seed,
            ip_adapter_image=req.image.convert("RGB"),
            height=h,
            width=w,
            num_inference_steps=steps,
            generator=P.generator(ctx.seed),
            callback_on_step_end=P.progress_callback(ctx, steps),
            **P.prompt_kwargs(pipe, fam.base, prompt, negative, K.cfg_for(fam.base)),
        )
    return ToolResult(
        out, metadata={**K.P.run_metadata(fam.base), "ip_adapter": fam.adapter, "ip_adapter_scale": req.fidelity}
    )
