"""style-transfer on diffusers: IP-Adapter (style image) + depth ControlNet (init image) + img2img (init image).

style_strength -> IP-Adapter scale; composition_fidelity -> ControlNet scale;
change_strength -> how far into the schedule the run starts from the init image.
Output: the model's native area (1 MP on SD3.5 and SDXL) at init_image's aspect ratio.
SD3.5 starts part-way with ``img2img_start`` (its ControlNet pipeline has no strength);
SDXL uses diffusers' ControlNet img2img pipeline, which has one.
"""

from __future__ import annotations

from typing import Any

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.tools.style_transfer import TOOL, StyleTransferRequest


@K.family_recipe(TOOL, ["base", "adapter", "encoder", "depth"], [preprocess.DEPTH_MODEL])
def style_transfer(req: StyleTransferRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    xl = P.is_xl(fam.base)
    pipe = P.build("control-img2img" if xl else "control", fam.base, fam.depth)
    size = P.working_size(pipe, *req.init_image.size)
    init = req.init_image.convert("RGB")
    control = preprocess.depth(init).resize(size)
    steps = P.steps_for(fam.base)
    start: dict[str, Any]
    if xl:
        strength = K.min_strength(req.change_strength, steps)
        start = {
            "image": init.resize(size),
            "strength": strength,
            "num_inference_steps": steps,
            "generator": P.generator(ctx.seed),
        }
        ran = max(1, int(steps * strength))
    else:
        start = P.img2img_start(pipe, init, req.change_strength, steps, ctx.seed, size)
        ran = start["num_inference_steps"]
    prompt = req.prompt or "an image in the style of the reference"
    with K.C.RUN_LOCK, K.ip_adapter(pipe, fam, req.style_strength):
        out = K.run(
            pipe,
            ctx.seed,
            ip_adapter_image=req.style_image.convert("RGB"),
            control_image=control,
            controlnet_conditioning_scale=req.composition_fidelity,
            height=size[1],
            width=size[0],
            callback_on_step_end=P.progress_callback(ctx, ran),
            **start,
            **P.prompt_kwargs(pipe, fam.base, prompt, req.negative_prompt or "", K.cfg_for(fam.base)),
        )
    return ToolResult(
        out,
        metadata={
            **K.P.run_metadata(fam.base),
            "ip_adapter_scale": req.style_strength,
            "controlnet_scale": req.composition_fidelity,
            "strength": req.change_strength,
        },
    )
