"""sketch on diffusers: the drawing's lines drive the SD3.5 Large canny ControlNet; output at the input size."""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.sketch import TOOL, SketchRequest

CONTROLNET = "sd3.5-large-controlnet-canny"


def controlled(
    ctx: Context, image: Image.Image, control: Image.Image, prompt: str, negative: str, strength: float, controlnet: str
) -> Image.Image:
    """Text-to-image under a ControlNet at the working size, resized back to the input's size."""
    pipe = P.build("control", K.BASE, controlnet)
    size = P.working_size(pipe, *image.size)
    steps = P.steps_for(K.BASE)
    out = K.run(
        pipe,
        ctx.seed,
        control_image=control.resize(size, Image.Resampling.BILINEAR),
        controlnet_conditioning_scale=strength,
        height=size[1],
        width=size[0],
        num_inference_steps=steps,
        generator=P.generator(ctx.seed),
        callback_on_step_end=P.progress_callback(ctx, steps),
        **P.prompt_kwargs(pipe, K.BASE, prompt, negative, K.cfg_for(K.BASE)),
    )
    return out.resize(image.size, Image.Resampling.LANCZOS)


@recipe(TOOL, engine="diffusers", models=[K.BASE, CONTROLNET], priority=K.PRIORITY)
def sketch(req: SketchRequest, ctx: Context) -> ToolResult:
    control = preprocess.sketch_lines(req.image)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = controlled(ctx, req.image, control, prompt, negative, req.control_strength, CONTROLNET)
    return ToolResult(out, metadata={**K.P.run_metadata(K.BASE), "controlnet": CONTROLNET})
