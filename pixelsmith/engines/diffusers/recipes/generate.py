"""generate on diffusers: SD3.5 (or SDXL) text-to-image, or image-to-image with ``strength``.

model= roles map to checkpoints (ultra/sd3.5-large -> Large, core/flash -> Large
Turbo, then Medium, then Large) on the SD3.5 family; on SDXL every role is SDXL base
and the metadata's ``family``/``checkpoint`` say so. Aspect ratios map to the model's native sizes. Concurrent
text-to-image requests with the same shape are batched into one call.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from pixelsmith.engines.diffusers import pipelines as P
from pixelsmith.engines.diffusers.batching import BATCHER, Item, stack, withdraw
from pixelsmith.engines.diffusers.recipes._common import (
    cfg_for,
    family,
    family_recipe,
    min_strength,
    pick_base,
    run,
    styled,
)
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.models.hub import ROLE_MODELS
from pixelsmith.tools.generate import TOOL, GenerateRequest


@family_recipe(TOOL, ["base"])
def generate(req: GenerateRequest, ctx: Context) -> ToolResult:
    fam = family(TOOL)
    base = pick_base(TOOL.name, ROLE_MODELS[req.model]) if fam.name == "sd3.5" else fam.base
    prompt, negative = styled(req.prompt, req.negative_prompt, req.style_preset)
    cfg = cfg_for(base, req.cfg_scale if req.cfg_scale is not None else (1.0 if "turbo" in base else None))
    steps = P.steps_for(base)
    common = dict(
        generator=P.generator(ctx.seed), num_inference_steps=steps, callback_on_step_end=P.progress_callback(ctx, steps)
    )
    if req.image_to_image and req.image is not None:
        withdraw()  # not batched: a group's batch leader need not wait for this request
        pipe = P.build("img2img", base)
        size = P.working_size(pipe, *req.image.size)
        image = req.image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
        out = run(
            pipe,
            ctx.seed,
            image=image,
            strength=min_strength(req.effective_strength, steps),
            height=size[1],
            width=size[0],
            **common,
            **P.prompt_kwargs(pipe, base, prompt, negative, cfg),
        )
    else:
        pipe = P.build("txt2img", base)
        w, h = P.size_for_aspect(pipe, req.aspect_ratio)
        # Concurrent requests of the same shape share one batched call (batching.py).
        item = Item(P.prompt_kwargs(pipe, base, prompt, negative, cfg), P.generator(ctx.seed), ctx)
        out, batch = BATCHER.submit(
            (base, w, h, steps, cfg), item, lambda items: txt2img_batch(pipe, items, w, h, steps)
        )
        return ToolResult(out, metadata={**P.run_metadata(base), "steps": steps, "cfg_scale": cfg, "batch_size": batch})
    return ToolResult(out, metadata={**P.run_metadata(base), "steps": steps, "cfg_scale": cfg})


def txt2img_batch(pipe: Any, items: list[Item], width: int, height: int, steps: int) -> list[Image.Image]:
    from pixelsmith.engines.diffusers._lazy import torch

    def progress(p: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        for it in items:
            if it.ctx is not None and it.ctx.progress is not None:
                it.ctx.progress(step + 1, steps)
        return kwargs

    with torch.inference_mode():
        return pipe(
            height=height, width=width, num_inference_steps=steps, callback_on_step_end=progress, **stack(items)
        ).images
