"""search-and-recolor on the embedded engine: a fixed vocabulary grounded to a mask, recoloured in CIELAB.

The phrase is grounded against garments and people (MediaPipe), COCO's 80 objects (an SSD detector refined by
ISNet + GrabCut) and "the main object" (ISNet) — docs/grounding.md — and the mask is recoloured keeping its
shading.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.search_and_recolor import TOOL, SearchAndRecolorRequest


@recipe(
    TOOL,
    engine="embedded",
    models=["mediapipe-people", "ssd-mobilenet-v2-coco", "isnet-general"],
    priority=10,
    progress_unit="stage",
    packages=("mediapipe",),  # the people models (pip: the `people` extra plus mediapipe --no-deps)
    note="embedded engine: fixed vocabulary (people, garments, COCO objects, main object); "
    "the colour comes from prompt; negative_prompt, style_preset and seed have no effect",
)
def search_and_recolor(req: SearchAndRecolorRequest, ctx: Context) -> ToolResult:
    """Ground ``select_prompt`` to a mask, recolour it in CIELAB, and put back everything outside the grown mask."""
    import numpy as np

    from pixelsmith.engines.embedded.colors import parse_color, recolor
    from pixelsmith.engines.embedded.grounding import Grounded, ground
    from pixelsmith.imaging.composite import composite
    from pixelsmith.imaging.masks import grow_mask, mask_for

    target = parse_color(req.prompt)  # before the models run: a bad colour is the caller's mistake, fail fast
    if req.mask is not None:  # the caller's own selection (the studio's click-to-select): nothing to search
        found = Grounded(mask_for(req.image, req.mask), "mask", req.select_prompt, {"mask": "from the request"})
    else:
        found = ground(req.image, req.select_prompt)
    ctx.report(1, 2)
    weight = grow_mask(found.mask, req.grow_mask)
    rgb = np.asarray(req.image.convert("RGB"))
    new_rgb, stats = recolor(rgb, found.mask, weight, target)
    edited = Image.fromarray(new_rgb)
    if req.image.mode == "RGBA":  # recolouring changes colour, never transparency
        edited.putalpha(req.image.getchannel("A"))
    out = composite(req.image, edited, weight)
    return ToolResult(
        out,
        metadata={
            "found": found.term,
            "kind": found.kind,
            "colour": target.phrase,
            **stats,
            "mask_fraction": round(float((found.mask >= 0.5).mean()), 4),
            **found.metadata,
        },
    )
