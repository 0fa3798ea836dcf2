"""search-and-recolor on diffusers: ground the object, shift its colour precisely, then harmonise.

Two steps keep the object's shape, folds and texture:
1. a colour transform inside the grounded mask (CIELAB: the target colour's
   chroma, the object's own lightness detail and chroma variation kept), using
   the first colour word of the prompt ("pink jacket" -> pink);
2. low-strength masked SD3.5 (or SD-XL inpainting) img2img (0.35, or 0.6 when the prompt names no
   colour we know) so lighting and reflections follow the new colour.
The transform alone already answers the request; the diffusion pass only refines it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from PIL import Image, ImageColor

from pixelsmith.engines.diffusers import grounding
from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.imaging.composite import composite
from pixelsmith.imaging.masks import grow_mask, mask_for
from pixelsmith.lazy import cv2
from pixelsmith.tools.search_and_recolor import TOOL, SearchAndRecolorRequest

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np


def target_colour(prompt: str) -> tuple[int, int, int] | None:
    """The first CSS colour name in the prompt (two-word names such as 'light blue' included)."""
    words = re.findall(r"[a-z]+", prompt.lower())
    for i, word in enumerate(words):
        for cand in ((word + words[i + 1]) if i + 1 < len(words) else None, word):
            if cand and cand in ImageColor.colormap:
                return ImageColor.getrgb(cand)[:3]
    return None


def recolour(image: Image.Image, mask: np.ndarray, rgb: tuple[int, int, int]) -> Image.Image:
    import numpy as np

    src = np.asarray(image.convert("RGB"))
    lab = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    want = cv2.cvtColor(np.array([[rgb]], np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)[0, 0]
    inside = mask >= 0.5
    if not inside.any():
        return image.convert("RGB")
    mean = lab[inside].mean(axis=0)
    out = lab.copy()
    out[..., 0] = lab[..., 0] + 0.7 * (want[0] - mean[0])  # move lightness, keep its detail
    out[..., 1:] = want[1:] + 0.5 * (lab[..., 1:] - mean[1:])  # target chroma, half the original variation
    new = cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)
    return composite(image.convert("RGB"), Image.fromarray(new), mask)


@K.family_recipe(TOOL, ["base", "inpaint"], [grounding.DETECTOR, grounding.SEGMENTER])
def search_and_recolor(req: SearchAndRecolorRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    found = (
        grounding.Found(mask_for(req.image, req.mask), [], [], False)  # the caller's selection: no search
        if req.mask is not None
        else grounding.find(req.image, req.select_prompt)
    )
    mask = grow_mask(found.mask, req.grow_mask)
    colour = target_colour(req.prompt)
    start = recolour(req.image, mask, colour) if colour else req.image.convert("RGB")
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    out = K.inpaint(ctx, start, mask, prompt, negative, strength=0.35 if colour else 0.6, base=fam.inpaint)
    out = composite(req.image, out, mask)
    return ToolResult(
        out,
        metadata={
            **K.P.run_metadata(fam.inpaint),
            "target_rgb": list(colour) if colour else None,
            "boxes": [[round(v, 1) for v in b] for b in found.boxes],
            "fallback_box": found.fallback,
        },
    )
