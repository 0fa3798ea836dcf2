"""remove-background on the embedded engine: ISNet's soft matte becomes the alpha channel at the input size (on
pictures over 1.5x the network's 1024 px, its enlarged soft band is sharpened to the photo's own edges where the
colours allow: ``matting.refine_edges``); in the soft band the colours are the estimated foreground's
(blur-fusion), not the old background's."""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.embedded import matting
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import Matting
from pixelsmith.tools.remove_background import TOOL, RemoveBackgroundRequest

MODEL = "isnet-general"


@recipe(TOOL, engine="embedded", models=[MODEL], priority=10)
def remove_background(req: RemoveBackgroundRequest, ctx: Context) -> ToolResult:
    import numpy as np

    rgb = np.asarray(req.image.convert("RGB"))
    matte = matting.refine_edges(rgb, ctx.session(MODEL, Matting).matte(req.image))
    alpha = np.clip(matte * 255.0 + 0.5, 0, 255).astype(np.uint8)
    # Colours are estimated against the alpha exactly as it is stored.
    fg, _band = matting.estimate_foreground(rgb, alpha.astype(np.float32) / 255.0)
    out = Image.fromarray(np.dstack([fg, alpha]), "RGBA")
    return ToolResult(out, metadata={"foreground_fraction": round(float((alpha >= 128).mean()), 4)})
