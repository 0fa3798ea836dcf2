"""fast-upscale on the embedded engine: a compact x4 network through ncnn, tiled, chosen by content.

Photos go to Real-ESRGAN ``realesr-general-x4v3`` with the input's own coarse tones put back
(``keep_input_tones``: the network alone darkens and adds contrast, -5..-8 levels on stone); illustrations
(mostly flat colour: ``looks_like_illustration``) go to the anime model ``realesr-animevideov3``, which
cel-shades photos (+16 points of flat skin on a face) but keeps line art and flat fills clean. The
request's ``model`` field (a pixelsmith extension) overrides the choice. Measurements: docs/quality.md.
"""

from __future__ import annotations

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import Upscaler
from pixelsmith.errors import Missing, ToolUnavailable
from pixelsmith.imaging import filters
from pixelsmith.models import is_installed
from pixelsmith.tools.fast_upscale import TOOL, FastUpscaleRequest, output_size

PHOTO = "realesr-general-x4v3"
ILLUSTRATION = "realesr-animevideov3-x4"
SPAN = "span-x4-ch52"
CLEARREALITY_NC = "clearreality-x4"  # CC-BY-NC-SA-4.0 weights: only when the request names it
MODELS = {"photo": PHOTO, "illustration": ILLUSTRATION, "span": SPAN, "clearreality-nc": CLEARREALITY_NC}
TONE_SIGMA = 0.75  # input pixels; measured best coarse fidelity of 0.75 / 1.5 / 3 (docs/quality.md)
EDGE_SPREAD = 24  # 3x3 luminance spread from which a pixel is on an edge
# Measured: notebook and skimage photos 0.01-0.57 (the highest: Big Ben and the outpaint street, much sky),
# flat-colour drawings (JPEG q85, 128-1536 px) 0.65-1.00, line art 1.00. A thin margin: hence the override.
FLAT_ILLUSTRATION = 0.62


def flat_share(image: Image.Image) -> float:
    """Share of the (opaque, non-backdrop, non-edge) pixels whose 3x3 neighbourhood spans <= 2 luminance levels.

    Measured at <= ~512 px on the long side (box-reduced). Transparent pixels (a cut-out's surroundings) and
    the single most common colour (a backdrop: a product on white) are left out, so only the subject counts.
    """
    import numpy as np

    k = max(1, round(max(image.size) / 512))
    small = image.reduce(k) if k > 1 else image
    rgb = np.asarray(small.convert("RGB"))
    keep = np.asarray(small.getchannel("A")) > 128 if small.mode == "RGBA" else np.ones(rgb.shape[:2], bool)
    q = (rgb >> 4).astype(np.int32)
    codes = (q[..., 0] << 8) | (q[..., 1] << 4) | q[..., 2]
    if keep.any():
        backdrop = np.bincount(codes[keep].ravel(), minlength=4096).argmax()
        rest = keep & (codes != backdrop)
        keep = rest if rest.sum() > 0.1 * keep.sum() else keep
    spread = filters.spread3(filters.grey601(rgb))
    keep &= spread < EDGE_SPREAD  # edges (anti-aliased outlines) are neither flat nor texture: left out
    return float((spread[keep] <= 2).mean()) if keep.any() else 0.0


def looks_like_illustration(image: Image.Image) -> bool:
    return flat_share(image) >= FLAT_ILLUSTRATION


def choose_model(image: Image.Image, choice: str = "auto") -> str:
    if choice != "auto":
        return MODELS[choice]
    return ILLUSTRATION if looks_like_illustration(image) else PHOTO


def keep_input_tones(up: Image.Image, small: Image.Image, sigma: float = TONE_SIGMA) -> Image.Image:
    """Replace the upscale's coarse tones with the input's: ``up + ↑(blur(small) - blur(↓up))``.

    Done at the input's resolution: the upscale is area-downscaled to the input size, both are blurred
    (``sigma`` input pixels), and the difference is upsampled bicubically and added to the upscale. Detail
    finer than ``sigma`` is the network's; everything coarser is the input's own colour and contrast.
    ``up`` is the network's output, an integer multiple of ``small``. The filters are numpy versions of
    OpenCV's (``imaging.filters``): importing OpenCV cost more than this whole step on a small image.
    """
    import numpy as np

    factor = up.width // small.width
    rgb = np.array(up.convert("RGB"), dtype=np.float32)
    down = filters.area_reduce(rgb, factor)
    ref = np.asarray(small.convert("RGB"), dtype=np.float32)
    delta = filters.gaussian_blur(ref, sigma) - filters.gaussian_blur(down, sigma)
    filters.cubic_add(rgb, delta, factor)
    out = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8), "RGB")
    if up.mode == "RGBA":
        out.putalpha(up.getchannel("A"))
    return out


@recipe(TOOL, engine="embedded", models=[PHOTO, ILLUSTRATION], priority=10, progress_unit="tile")
def fast_upscale(req: FastUpscaleRequest, ctx: Context) -> ToolResult:
    model = choose_model(req.image, req.model)
    if not is_installed(model):  # the opt-in models are not among the recipe's required ones
        raise ToolUnavailable(TOOL.name, [Missing("embedded", [model], f"pixelsmith models fetch {model}")])
    up = ctx.session(model, Upscaler).upscale(req.image, progress=ctx.progress)
    if model == PHOTO:
        up = keep_input_tones(up, req.image)
    target = output_size(*req.image.size)
    if up.size != target:
        up = up.resize(target, Image.Resampling.LANCZOS)
    meta: dict[str, object] = {"scale": target[0] / req.image.width, "model": model}
    if model == CLEARREALITY_NC:
        meta["licence"] = "CC-BY-NC-SA-4.0 (non-commercial use only)"
    return ToolResult(up, metadata=meta)
