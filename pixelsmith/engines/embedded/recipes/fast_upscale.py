"""fast-upscale on the embedded engine: Real-ESRGAN's compact model (realesr-animevideov3) through ncnn, tiled."""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import Upscaler
from pixelsmith.tools.fast_upscale import TOOL, FastUpscaleRequest, output_size

MODEL = "realesr-animevideov3-x4"


@recipe(TOOL, engine="embedded", models=[MODEL], priority=10, progress_unit="tile")
def fast_upscale(req: FastUpscaleRequest, ctx: Context) -> ToolResult:
    up = ctx.session(MODEL, Upscaler).upscale(req.image, progress=ctx.progress)
    target = output_size(*req.image.size)
    if up.size != target:
        up = up.resize(target, Image.Resampling.LANCZOS)
    return ToolResult(up, metadata={"scale": target[0] / req.image.width})
