"""style-transfer on the embedded engine: Gatys-style optimisation over HED's VGG16 features, 1 MP out.

``pixelsmith/engines/embedded/style.py`` holds the method and documents how style_strength,
composition_fidelity and change_strength map onto it.
"""

from __future__ import annotations

from typing import Any

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import EdgeNet, Upscaler
from pixelsmith.tools.style_transfer import TOOL, StyleTransferRequest

SCHEDULE: Any = None  # None: style.Schedule()'s scales and iterations; tests set a shorter one
NOTE = "embedded engine: optimisation-based neural style transfer; prompt and negative_prompt have no effect"
HED, UPSCALER = "hed", "realesr-animevideov3-x4"


@recipe(TOOL, engine="embedded", models=[HED, UPSCALER], priority=10, progress_unit="iteration")
def style_transfer(req: StyleTransferRequest, ctx: Context) -> ToolResult:
    from pixelsmith.engines.embedded.style import transfer, weights  # torch: imported only when used

    result = transfer(
        ctx.session(HED, EdgeNet),
        req.init_image,
        req.style_image,
        style_strength=req.style_strength,
        composition_fidelity=req.composition_fidelity,
        change_strength=req.change_strength,
        seed=ctx.seed,
        schedule=SCHEDULE,
        upscaler=ctx.session(UPSCALER, Upscaler),
        progress=ctx.progress,
    )
    content_w, style_w = weights(req.style_strength, req.composition_fidelity)
    return ToolResult(
        result.image,
        metadata={
            "note": NOTE,
            "content_weight": round(content_w, 5),
            "style_weight": round(style_w, 5),
            "losses": {k: round(v, 5) for k, v in result.losses.items()},
            "stage_seconds": result.seconds,
        },
    )
