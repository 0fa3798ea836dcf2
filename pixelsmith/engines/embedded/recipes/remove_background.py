"""remove-background on the embedded engine: ISNet's soft matte becomes the alpha channel at the input size."""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import Matting
from pixelsmith.tools.remove_background import TOOL, RemoveBackgroundRequest

MODEL = "isnet-general"


@recipe(TOOL, engine="embedded", models=[MODEL], priority=10)
def remove_background(req: RemoveBackgroundRequest, ctx: Context) -> ToolResult:
    matte = ctx.session(MODEL, Matting).matte(req.image)
    alpha = Image.fromarray(np.clip(matte * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    out = req.image.convert("RGB")
    out.putalpha(alpha)
    return ToolResult(out, metadata={"foreground_fraction": round(float((matte >= 0.5).mean()), 4)})
