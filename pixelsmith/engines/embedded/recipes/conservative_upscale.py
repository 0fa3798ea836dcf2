"""conservative-upscale on the embedded engine: Real-ESRGAN realesr-general-x4v3 (the compact photo model)
invents the fine detail, back-projection ties the result to the input.

The network runs on the input resized to 1.5/4 of the output size (never enlarged: a small input runs as it
is), so its x4 result is 1.5x oversampled and Lanczos-reduced to the output; every request costs about the
same, ~8 CPU-seconds per output MP (the RRDB x4plus used before cost ~53 on the same photos, with the net at a
quarter of the output size). Its output is then corrected by iterative back-projection (Irani & Peleg): the
difference between the input and the result downscaled to the input's size is upscaled and added back. Four
rounds make the result, downscaled, match the input better than a bicubic upscale does, and as well as the x4plus
method did (no colour shift, no moved edges), while keeping the network's texture (docs/quality.md,
bench/quality/conservative.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PIL import Image

from pixelsmith.engines.recipe import Context, Progress, ToolResult, recipe
from pixelsmith.engines.sessions import Upscaler
from pixelsmith.lazy import cv2
from pixelsmith.tools import conservative_upscale as spec
from pixelsmith.tools.conservative_upscale import TOOL, ConservativeUpscaleRequest, output_size

if TYPE_CHECKING:  # numpy is imported inside the functions: listing the tools imports no numpy
    import numpy as np

MODEL = "realesr-general-x4v3"
OVERSAMPLE = 1.5  # measured: 1 loses texture (Big Ben 0.68 of the truth), 2 overshoots it (1.15) for -1.5 dB back
# measured (docs/quality.md): back PSNR on the 4 photos 37.0/40.1/42.2/43.6 dB with 2 rounds, 38.1/40.6/42.9/44.3
# with 4, 6 and 8 within 0.1 dB of 4; each round costs ~0.05 CPU-s at the 4 MP output (of ~23 CPU-s)
BACK_PROJECTIONS = 4
NOTE = (
    "embedded engine: Real-ESRGAN general-x4v3 tied to the input by back-projection; "
    "prompt, negative_prompt, creativity and seed have no effect on this engine"
)


def upscale_preserving(
    image: Image.Image,
    session: Upscaler,
    target_pixels: int | None = None,
    progress: Progress | None = None,
    oversample: float | None = None,
) -> tuple[Image.Image, dict[str, Any]]:
    """The whole embedded method; ``target_pixels`` (default: the tool's) is a parameter so tests can run it small,
    ``oversample`` (default :data:`OVERSAMPLE`) so the benchmark can compare."""
    import numpy as np

    oversample = oversample or OVERSAMPLE
    target_pixels = target_pixels or spec.TARGET_PIXELS
    alpha = image.getchannel("A") if image.mode == "RGBA" else None
    rgb = image.convert("RGB")
    size = output_size(*rgb.size, target_pixels)
    if rgb.width * rgb.height >= target_pixels:
        # Already as large as the service's output: nothing to invent. Resample to the output size.
        out = rgb.resize(size, Image.Resampling.LANCZOS)
        meta = {"method": "lanczos (input already at least the output size; no model run)"}
    else:
        net_in = (round(size[0] * oversample / 4), round(size[1] * oversample / 4))
        if rgb.width * rgb.height > net_in[0] * net_in[1]:
            small = rgb.resize(net_in, Image.Resampling.LANCZOS)  # the network always sees a sharp image
        else:
            small = rgb  # small input: run it as it is and resample the x4 result
        detail = session.upscale(small, progress=progress)
        if detail.size != size:
            detail = detail.resize(size, Image.Resampling.LANCZOS)
        out = Image.fromarray(back_project(np.asarray(detail), np.asarray(rgb), BACK_PROJECTIONS))
        model = getattr(session, "model", MODEL)
        meta = {"method": f"{model} x4 on {small.width}x{small.height}, {BACK_PROJECTIONS} back-projections"}
    if alpha is not None:
        out.putalpha(alpha.resize(size, Image.Resampling.LANCZOS))
    return out, {**meta, "scale": round(size[0] / image.width, 4), "note": NOTE}


def back_project(upscaled: np.ndarray, original: np.ndarray, rounds: int) -> np.ndarray:
    """Correct ``upscaled`` until its area-downscale matches ``original`` (both HxWx3 uint8)."""
    import numpy as np

    out = upscaled.astype(np.float32)
    target = original.astype(np.float32)
    small, big = (original.shape[1], original.shape[0]), (upscaled.shape[1], upscaled.shape[0])
    for _ in range(rounds):
        error = target - cv2.resize(out, small, interpolation=cv2.INTER_AREA)
        out += cv2.resize(error, big, interpolation=cv2.INTER_CUBIC)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


@recipe(TOOL, engine="embedded", models=[MODEL], priority=10, progress_unit="tile", note=NOTE)
def conservative_upscale(req: ConservativeUpscaleRequest, ctx: Context) -> ToolResult:
    out, meta = upscale_preserving(req.image, ctx.session(MODEL, Upscaler), progress=ctx.progress)
    return ToolResult(out, metadata=meta)
