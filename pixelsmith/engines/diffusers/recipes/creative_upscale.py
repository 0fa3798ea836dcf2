"""creative-upscale on diffusers: up to 4K, tiled img2img guided by a tile ControlNet
(SD3.5 Large with its blur ControlNet, or SDXL with xinsir's tile ControlNet).

The input (at most 1 MP) is enlarged with Lanczos to a long side of 4096 px, then
every native-size tile is re-diffused: creativity 0.1..0.5 -> strength 0.3..0.7,
so detail is invented while the ControlNet holds each tile to its content.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.tools.creative_upscale import TOOL, CreativeUpscaleRequest

LONG_SIDE = 4096  # "all the way to 4K"


def output_size(width: int, height: int, long_side: int | None = None) -> tuple[int, int]:
    long_side = long_side or LONG_SIDE
    k = long_side / max(width, height)
    return max(1, round(width * k)), max(1, round(height * k))


@K.family_recipe(TOOL, ["base", "tile"])
def creative_upscale(req: CreativeUpscaleRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    size = output_size(*req.image.size)
    big = req.image.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    prompt, negative = K.styled(req.prompt, req.negative_prompt, req.style_preset)
    strength = 0.2 + req.creativity
    radius = max(1.0, size[0] / req.image.width / 2)  # blur about as much as the enlargement smeared
    out = K.refine_tiles(ctx, big, prompt, negative, strength, controlnet=fam.tile, base=fam.base, blur_radius=radius)
    return ToolResult(
        out, metadata={**K.P.run_metadata(fam.base), "controlnet": fam.tile, "strength": round(strength, 3)}
    )
