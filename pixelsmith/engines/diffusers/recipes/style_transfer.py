"""style-transfer on diffusers: IP-Adapter (style image) + depth ControlNet (init image) + img2img (init image).

style_strength -> IP-Adapter scale; composition_fidelity -> ControlNet scale;
change_strength -> how far into the schedule the run starts from the init image.
Output: the model's native area (1 MP on SD3.5) at init_image's aspect ratio.
"""

from __future__ import annotations

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.diffusers.recipes.structure import CONTROLNET
from pixelsmith.engines.diffusers.recipes.style_guide import ADAPTER, ENCODER
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.style_transfer import TOOL, StyleTransferRequest


@recipe(
    TOOL, engine="diffusers", models=[K.BASE, ADAPTER, ENCODER, CONTROLNET, preprocess.DEPTH_MODEL], priority=K.PRIORITY
)
def style_transfer(req: StyleTransferRequest, ctx: Context) -> ToolResult:
    pipe = P.build("control", K.BASE, CONTROLNET)
    size = P.working_size(pipe, *req.init_image.size)
    init = req.init_image.convert("RGB")
    control = preprocess.depth(init).resize(size)
    steps = P.steps_for(K.BASE)
    start = P.img2img_start(pipe, init, req.change_strength, steps, ctx.seed, size)
    prompt = req.prompt or "an image in the style of the reference"
    with K.C.RUN_LOCK, P.ip_adapter(pipe, ADAPTER, ENCODER, req.style_strength):
        out = K.run(
            pipe,
            ctx.seed,
            ip_adapter_image=req.style_image.convert("RGB"),
            control_image=control,
            controlnet_conditioning_scale=req.composition_fidelity,
            height=size[1],
            width=size[0],
            callback_on_step_end=P.progress_callback(ctx, start["num_inference_steps"]),
            **start,
            **P.prompt_kwargs(pipe, K.BASE, prompt, req.negative_prompt or "", K.cfg_for(K.BASE)),
        )
    return ToolResult(
        out,
        metadata={
            **K.P.run_metadata(K.BASE),
            "ip_adapter_scale": req.style_strength,
            "controlnet_scale": req.composition_fidelity,
            "strength": req.change_strength,
        },
    )
