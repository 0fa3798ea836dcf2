"""sketch on diffusers: the drawing's lines drive the family's canny ControlNet (SD3.5 Large or SDXL); output at the
input size."""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers import preprocess
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.tools.sketch import TOOL, SketchRequest


def controlled(
    ctx: Context,
    image: Image.Image,
    control: Image.Image,
    prompt: str,
    negative: str,
    strength: float,
    controlnet: str,
    base: str = K.BASE,
) -> Image.Image:
    """Text-to-image under a ControlNet at the working size, resized back to the input's size."""
    pipe = P.build("control", base, controlnet)
    size = P.working_size(pipe, *image.size)
    steps = P.steps_for(base)
    out = K.run(
        pipe,
        ctx.seed,
        # The SDXL text-to-image ControlNet pipeline takes the control as ``image``; SD3's as ``control_image``.
        **{"image" if P.is_xl(base) else "control_image": control.resize(size, Image.Resampling.BILINEAR)},
        controlnet_conditioning_scale=strength,
        height=size[1],
        width=size[0],
        num_inference_steps=steps,
        generator=P.generator(ctx.seed),
        callback_on_step_end=P.progress_callback(ctx, steps),
        **P.prompt_kwargs(pipe, base, prompt, negative, K.cfg_for(base)),
    )
    return out.resize(image.size, Image.Resampling.LANCZOS)


@K.family_recipe(TOOL, ["base", "canny"])
def sketch(req: SketchRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    control = preprocess.sketch_lines(req.image)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = controlled(ctx, req.image, control, prompt, negative, req.control_strength, fam.canny, fam.base)
    return ToolResult(out, metadata={**K.P.run_metadata(fam.base), "controlnet": fam.canny})
