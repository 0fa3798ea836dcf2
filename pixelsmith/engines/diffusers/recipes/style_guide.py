"""style-guide on diffusers: SD3.5 Large text-to-image with the InstantX IP-Adapter seeing the reference.

fidelity is the adapter scale (0 = the prompt alone, 1 = the reference dominates).
"""

from __future__ import annotations

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.style_guide import TOOL, StyleGuideRequest

ADAPTER, ENCODER = "sd3.5-large-ip-adapter", "siglip-so400m"


@recipe(TOOL, engine="diffusers", models=[K.BASE, ADAPTER, ENCODER], priority=K.PRIORITY)
def style_guide(req: StyleGuideRequest, ctx: Context) -> ToolResult:
    pipe = P.build("txt2img", K.BASE)
    w, h = P.size_for_aspect(pipe, req.aspect_ratio)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    steps = P.steps_for(K.BASE)
    with K.C.RUN_LOCK, P.ip_adapter(pipe, ADAPTER, ENCODER, req.fidelity):
        out = K.run(
            pipe,
            ctx.seed,
            ip_adapter_image=req.image.convert("RGB"),
            height=h,
            width=w,
            num_inference_steps=steps,
            generator=P.generator(ctx.seed),
            callback_on_step_end=P.progress_callback(ctx, steps),
            **P.prompt_kwargs(pipe, K.BASE, prompt, negative, K.cfg_for(K.BASE)),
        )
    return ToolResult(
        out, metadata={**K.P.run_metadata(K.BASE), "ip_adapter": ADAPTER, "ip_adapter_scale": req.fidelity}
    )
