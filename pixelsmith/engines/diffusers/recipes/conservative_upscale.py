"""conservative-upscale on diffusers: Real-ESRGAN to ~4 MP, then a light tiled SD3.5 or SDXL refinement.

Real-ESRGAN (the embedded x4plus model) does the enlargement faithfully; SD3.5
with the blur ControlNet (or SDXL with the tile ControlNet) then re-diffuses each tile at low strength
(creativity 0.1..0.5 -> 0.05..0.25) to restore texture without changing content.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers.recipes import _common as K
from pixelsmith.engines.recipe import Context, ToolResult
from pixelsmith.engines.sessions import Upscaler
from pixelsmith.tools.conservative_upscale import TOOL, ConservativeUpscaleRequest, output_size

ESRGAN = "realesrgan-x4plus"


@K.family_recipe(TOOL, ["base", "tile"], [ESRGAN])
def conservative_upscale(req: ConservativeUpscaleRequest, ctx: Context) -> ToolResult:
    fam = K.family(TOOL)
    size = output_size(*req.image.size)
    image = req.image.convert("RGB")
    if size[0] > image.width:  # enlarge with Real-ESRGAN first (x4, then to size)
        image = ctx.session(ESRGAN, Upscaler).upscale(image)
    image = image.resize(size, Image.Resampling.LANCZOS)
    strength = req.creativity / 2
    out = K.refine_tiles(
        ctx, image, req.prompt, req.negative_prompt or "", strength, controlnet=fam.tile, base=fam.base, blur_radius=1.0
    )
    return ToolResult(
        out, metadata={**K.P.run_metadata(fam.base), "controlnet": fam.tile, "strength": round(strength, 3)}
    )
