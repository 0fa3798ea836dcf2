"""remove-background on diffusers: OWLv2 finds the main subject, SAM's soft mask becomes the alpha.

Below the embedded ISNet matte in priority: ISNet is trained for exactly this
and gives finer edges. This recipe serves when the diffusers engine is forced
or ISNet is absent.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers import grounding
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.remove_background import TOOL, RemoveBackgroundRequest

PHRASE = "the main subject"


@recipe(TOOL, engine="diffusers", models=[grounding.DETECTOR, grounding.SEGMENTER], priority=5)
def remove_background(req: RemoveBackgroundRequest, ctx: Context) -> ToolResult:
    import numpy as np

    found = grounding.find(req.image, PHRASE, threshold=0.05)
    alpha = Image.fromarray(np.clip(found.mask * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    out = req.image.convert("RGB")
    out.putalpha(alpha)
    return ToolResult(
        out,
        metadata={
            "foreground_fraction": round(float((found.mask >= 0.5).mean()), 4),
            "boxes": [[round(v, 1) for v in b] for b in found.boxes],
        },
    )
