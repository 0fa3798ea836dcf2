"""search-and-recolor: find an object by a short phrase and change its colour.

Embedded: the phrase is grounded against a fixed vocabulary (docs/grounding.md: garments and people from
MediaPipe, COCO objects from an SSD detector refined by ISNet + GrabCut, the main object from ISNet), and the
mask is recoloured in CIELAB keeping its shading.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pixelsmith.engines.embedded.colors import parse_color, recolor
from pixelsmith.engines.embedded.grounding import ground
from pixelsmith.imaging.composite import composite
from pixelsmith.imaging.masks import grow_mask
from pixelsmith.tools.base import (
    Field,
    ImageInput,
    NegativePrompt,
    OutputFormat,
    Prompt,
    Seed,
    StylePreset,
    Tool,
    ToolRequest,
    ToolResult,
    rules,
)


class SearchAndRecolorRequest(ToolRequest):
    image: ImageInput(rules.STANDARD_ASPECT, "The image to recolor.")
    prompt: str = Prompt(description="The new look, e.g. 'pink jacket'")
    select_prompt: str = Field(..., max_length=10_000, description="What to find and recolor, e.g. 'jacket'")
    negative_prompt: str | None = NegativePrompt()
    grow_mask: float = Field(3, ge=0, le=20, description="Grow the found mask by this many pixels, feathered")
    seed: int = Seed()
    output_format: OutputFormat = Field("png", description="Format of the output image")
    style_preset: StylePreset | None = Field(None, description="Guides the image towards a style")


TOOL = Tool(
    name="search-and-recolor",
    group="edit",
    title="Search and Recolor",
    request=SearchAndRecolorRequest,
    rest_path="/v2beta/stable-image/edit/search-and-recolor",
    bedrock_model="stability.stable-image-search-recolor-v1:0",
    summary="Finds the object named by select_prompt and recolors it as the prompt says.",
)


@TOOL.recipe(
    "embedded",
    models=["mediapipe-people", "ssd-mobilenet-v2-coco", "isnet-general"],
    priority=10,
    progress_unit="stage",
    note="embedded engine: fixed vocabulary (people, garments, COCO objects, main object); "
    "the colour comes from prompt; negative_prompt, style_preset and seed have no effect",
)
def search_and_recolor(req: SearchAndRecolorRequest, ctx) -> ToolResult:
    """Ground ``select_prompt`` to a mask, recolour it in CIELAB, and put back everything outside the grown mask."""
    target = parse_color(req.prompt)  # before the models run: a bad colour is the caller's mistake, fail fast
    found = ground(req.image, req.select_prompt)
    if ctx.progress:
        ctx.progress(1, 2)
    weight = grow_mask(found.mask, req.grow_mask)
    rgb = np.asarray(req.image.convert("RGB"))
    new_rgb, stats = recolor(rgb, found.mask, weight, target)
    edited = Image.fromarray(new_rgb)
    if req.image.mode == "RGBA":  # recolouring changes colour, never transparency
        edited.putalpha(req.image.getchannel("A"))
    out = composite(req.image, edited, weight)
    return ToolResult(
        out,
        seed=ctx.seed,
        metadata={
            "found": found.term,
            "kind": found.kind,
            "colour": target.phrase,
            **stats,
            "mask_fraction": round(float((found.mask >= 0.5).mean()), 4),
            **found.metadata,
        },
    )
