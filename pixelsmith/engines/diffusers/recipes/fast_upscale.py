"""fast-upscale on diffusers: Swin2SR x4 (transformers), tiled, at most 16 MP out.

Below the embedded Real-ESRGAN compact model in priority: that one is faster on a
CPU and just as good for this tool. This recipe serves when the diffusers
engine is forced (engine=diffusers) or the embedded weights are absent.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.diffusers._lazy import torch
from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.tools.fast_upscale import TOOL, FastUpscaleRequest, output_size

MODEL = "swin2sr-x4"
TILE = 192


def upscale4(image: Image.Image) -> Image.Image:
    # Imported here, not at the top: every `pixelsmith run fast-upscale` imports this module only to learn
    # that the embedded recipe wins, and components + _common cost ~13 ms CPU and 1.1 MiB there.
    import numpy as np

    from pixelsmith.engines.diffusers import components as C
    from pixelsmith.engines.diffusers.recipes import _common as K

    net = C.hf_model(MODEL, "Swin2SRForImageSuperResolution")
    window = net.config.window_size

    def one(tile: Image.Image, i: int) -> Image.Image:
        x = torch.from_numpy(np.asarray(tile, np.float32) / 255.0).permute(2, 0, 1)[None]
        h, w = x.shape[-2:]
        ph, pw = (-h) % window, (-w) % window
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        with C.RUN_LOCK, torch.inference_mode():
            y = net(pixel_values=x.to(C.device(), net.dtype)).reconstruction.float()
        y = y[0, :, : h * 4, : w * 4].clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        return Image.fromarray((y * 255 + 0.5).astype(np.uint8))

    rgb = image.convert("RGB")
    w, h = rgb.size
    acc = np.zeros((h * 4, w * 4, 3), np.float64)
    weight = np.zeros((h * 4, w * 4, 1), np.float64)
    for i, (x0, y0, x1, y1) in enumerate(K.tiles(rgb.size, TILE, 16)):
        out = np.asarray(one(rgb.crop((x0, y0, x1, y1)), i), np.float64)
        ramp = K._ramp(out.shape[1], out.shape[0], 64, (x0 > 0, y0 > 0, x1 < w, y1 < h))
        acc[y0 * 4 : y1 * 4, x0 * 4 : x1 * 4] += out * ramp
        weight[y0 * 4 : y1 * 4, x0 * 4 : x1 * 4] += ramp
    return Image.fromarray(np.clip(acc / np.maximum(weight, 1e-8) + 0.5, 0, 255).astype(np.uint8))


@recipe(TOOL, engine="diffusers", models=[MODEL], priority=5)
def fast_upscale(req: FastUpscaleRequest, ctx: Context) -> ToolResult:
    up = upscale4(req.image)
    target = output_size(*req.image.size)
    if up.size != target:
        up = up.resize(target, Image.Resampling.LANCZOS)
    alpha = req.image.getchannel("A").resize(target, Image.Resampling.LANCZOS) if req.image.mode == "RGBA" else None
    if alpha is not None:
        up.putalpha(alpha)
    return ToolResult(up, metadata={"model": MODEL, "scale": target[0] / req.image.width})
