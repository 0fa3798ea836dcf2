"""style-transfer on the embedded engine: Magenta's arbitrary image stylization network, ~1 MP out, seconds.

The network (Ghiasi et al. 2017, ``magenta-arbitrary-style``) is feed-forward: a style prediction network
turns the style image (its central square at 256x256) into a 100-number bottleneck, and a transformer network
repaints the content image with it in one pass. Its strokes have a fixed size in pixels, so the resolution at
which the content is fed to it decides how coarse the painting is relative to the picture.

How the request maps onto it (measured in ``docs/quality.md``, "Style transfer"):

- ``style_strength`` s in 0..1: the bottleneck is ``s * style + (1 - s) * own``, where ``own`` is the init
  image's own bottleneck (Magenta's documented style interpolation). s = 1: the style image's palette and
  texture; s = 0: the network's repainting of the photo in its own style (close to the photo's colours, with
  the network's brush texture).
- ``composition_fidelity`` c in 0..1: the long side the transformer sees, ``256 + 768 * c`` pixels (the
  default 0.9: 947 px, ~0.67 MP for a 3:4 photo). Higher keeps more of the init image's detail and makes the
  strokes finer relative to the picture; lower gives broader strokes and a looser composition.
- ``change_strength`` d in 0.1..1: the final blend with the init image, ``init + k * (stylised - init)`` with
  ``k = min(1, d / 0.9)`` (the default 0.9 keeps all of the stylised image; 0.45 is a half-way mix).

The output has the init image's aspect ratio at about 1 MP (sides multiples of 8). The network's result is
brought to that size by a guided upsample: Lanczos, plus the init image's luminance detail that the smaller
network input lacked, scaled by how strongly the stylised image follows the init's luminance locally (the
local linear coefficient of a guided filter, computed at the network's size). Edges that the painting keeps
stay crisp; flat paint, which does not follow the photo, gets none of the photo's texture back.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from PIL import Image

from pixelsmith.engines.recipe import Context, ToolResult, recipe
from pixelsmith.engines.sessions import ProgressFn, Stylizer
from pixelsmith.lazy import cv2
from pixelsmith.tools.style_transfer import TOOL, StyleTransferRequest

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

MAGENTA = "magenta-arbitrary-style"
NOTE = "embedded engine: Magenta arbitrary image stylization (feed-forward); prompt and negative_prompt have no effect"
OUTPUT_PIXELS = 1_048_576
MIN_SIDE, MAX_SIDE = 256, 1024  # the transformer's long side at composition_fidelity 0 and 1
GUIDE_RADIUS, GUIDE_EPS = 2, 1e-3  # the guided upsample's window (at the network's size) and regulariser


def output_size(width: int, height: int, pixels: int = OUTPUT_PIXELS) -> tuple[int, int]:
    """About ``pixels`` with the init image's aspect ratio, sides multiples of 8."""
    k = math.sqrt(pixels / (width * height))
    return max(8, round(width * k / 8) * 8), max(8, round(height * k / 8) * 8)


def network_size(width: int, height: int, composition_fidelity: float) -> tuple[int, int]:
    """The size the transformer runs at: long side 256 + 768 * c, sides multiples of 4, never above 1 MP."""
    side = MIN_SIDE + (MAX_SIDE - MIN_SIDE) * composition_fidelity
    k = min(side / max(width, height), math.sqrt(OUTPUT_PIXELS / (width * height)))
    return max(4, round(width * k / 4) * 4), max(4, round(height * k / 4) * 4)


def style_bottleneck(stylizer: Stylizer, style: Image.Image, init: Image.Image, strength: float) -> np.ndarray:
    vector = stylizer.style_vector(style)
    if strength < 1.0:
        vector = strength * vector + (1.0 - strength) * stylizer.style_vector(init)
    return vector


def luminance(img: Image.Image) -> np.ndarray:
    import numpy as np

    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def guided_upsample(stylised: Image.Image, guide_small: Image.Image, guide: Image.Image) -> Image.Image:
    """``stylised`` (at ``guide_small``'s size) brought to ``guide``'s size, see the module docstring."""
    import numpy as np

    size = guide.size
    up = np.asarray(stylised.resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    if size == stylised.size:
        return stylised
    g = luminance(guide_small)
    p = np.asarray(stylised, dtype=np.float32) / 255.0
    box = (2 * GUIDE_RADIUS + 1,) * 2

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.blur(x, box, borderType=cv2.BORDER_REFLECT)

    mg = mean(g)
    var = mean(g * g) - mg * mg
    gains = [(mean(g * p[..., c]) - mg * mean(p[..., c])) / (var + GUIDE_EPS) for c in range(3)]
    gain = np.clip(mean(np.stack(gains, axis=-1)), -2.0, 2.0)  # averaged over the window, as the filter does
    gain_up = cv2.resize(gain, size, interpolation=cv2.INTER_LINEAR)
    g_up = np.asarray(Image.fromarray(g).resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
    detail = (luminance(guide) - g_up)[..., None]
    out = np.clip(up + gain_up * detail, 0.0, 1.0)
    return Image.fromarray((out * 255.0 + 0.5).astype(np.uint8), "RGB")


def restyle(
    stylizer: Stylizer,
    init_image: Image.Image,
    style_image: Image.Image,
    *,
    style_strength: float = 1.0,
    composition_fidelity: float = 0.9,
    change_strength: float = 0.9,
    progress: ProgressFn | None = None,
) -> tuple[Image.Image, dict[str, object]]:
    """The recipe's pipeline without the request: (image, metadata); ``progress`` counts its 3 stages."""
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    init = init_image.convert("RGB")
    out_size = output_size(*init.size)
    net_size = network_size(*init.size, composition_fidelity)
    guide = init.resize(out_size, Image.Resampling.LANCZOS)
    small = init.resize(net_size, Image.Resampling.LANCZOS)
    vector = style_bottleneck(stylizer, style_image, small, style_strength)
    seconds["style_vector"] = round(time.perf_counter() - started, 3)
    if progress:
        progress(1, 3)
    started = time.perf_counter()
    stylised = stylizer.stylize(small, vector)
    seconds["transform"] = round(time.perf_counter() - started, 3)
    if progress:
        progress(2, 3)
    started = time.perf_counter()
    image = guided_upsample(stylised, small, guide)
    keep = min(1.0, change_strength / 0.9)
    if keep < 1.0:
        image = Image.blend(guide, image, keep)
    seconds["finish"] = round(time.perf_counter() - started, 3)
    if progress:
        progress(3, 3)
    meta: dict[str, object] = {
        "network_size": list(net_size),
        "style_mix": round(style_strength, 4),
        "stylised_share": round(keep, 4),
        "stage_seconds": seconds,
    }
    return image, meta


@recipe(TOOL, engine="embedded", models=[MAGENTA], priority=10, progress_unit="stage")
def style_transfer(req: StyleTransferRequest, ctx: Context) -> ToolResult:
    image, meta = restyle(
        ctx.session(MAGENTA, Stylizer),
        req.init_image,
        req.style_image,
        style_strength=req.style_strength,
        composition_fidelity=req.composition_fidelity,
        change_strength=req.change_strength,
        progress=ctx.progress,
    )
    return ToolResult(image, metadata={"note": NOTE, **meta})
