"""Neural style transfer by optimisation (Gatys et al. 2016) over the VGG16 layers of the HED network.

There are no packaged feed-forward style networks, so the image itself is optimised: L-BFGS on the pixels
minimises a content loss (VGG16 conv4_2 activations of ``init_image``) plus a style loss (Gram matrices of
conv1_1..conv4_1 of ``style_image``) plus a little total variation. It is multi-scale: most iterations run
at a small size where a step is cheap, then a few refine at twice the size, and the result is brought to the
output size (1 MP) with the compact Real-ESRGAN model so the strokes stay crisp instead of being blurred by
resampling.

How the request maps onto the optimisation (the losses are normalised so the weights are scale-free: the
content loss by the init image's own feature energy, the style loss by the init image's style loss):

- ``style_strength`` s in 0..1: style weight = s (0: no style loss at all, the result stays the init image).
- ``composition_fidelity`` c in 0..1: content weight = 10 ** (2.5 * c - 2.5) * CONTENT_SCALE, i.e. each +0.4
  multiplies how hard the layout of init_image is held by 10.
- ``change_strength`` d in 0.1..1: how far the start point is from init_image (seeded Gaussian noise of
  standard deviation 0.3 * d, so the seed changes the result) and how much of the stylised image is kept at
  the end: output = init + d' * (stylised - init), d' = min(1, d / 0.9) (the default 0.9 keeps all of it).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pixelsmith.config import threads

STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")
CONTENT_LAYER = "conv4_2"
OUTPUT_PIXELS = 1_048_576
CONTENT_SCALE = 1.0
TV_WEIGHT = 0.5  # total variation, against the high-frequency artefacts of pixel optimisation


@dataclass
class Schedule:
    """Long side and L-BFGS iterations of each scale, coarse to fine."""

    scales: tuple[tuple[int, int], ...] = ((256, 24), (448, 5))

    def scaled(self, effort: float) -> Schedule:
        return Schedule(tuple((side, max(1, round(n * effort))) for side, n in self.scales))


@dataclass
class StyleResult:
    image: Image.Image
    losses: dict[str, float] = field(default_factory=dict)  # at the finest scale: the result's and the init's
    seconds: dict[str, float] = field(default_factory=dict)


def gram(feat: torch.Tensor) -> torch.Tensor:
    b, c, h, w = feat.shape
    flat = feat.reshape(c, h * w)
    return flat @ flat.t() / (c * h * w)


def to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


def to_image(x: torch.Tensor) -> Image.Image:
    arr = x[0].detach().clamp(0, 1).permute(1, 2, 0).numpy()
    return Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8), "RGB")


def fit(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    k = long_side / max(size)
    return max(16, round(size[0] * k)), max(16, round(size[1] * k))


def output_size(width: int, height: int, pixels: int = OUTPUT_PIXELS) -> tuple[int, int]:
    """About ``pixels`` with the init image's aspect ratio, sides multiples of 8."""
    k = math.sqrt(pixels / (width * height))
    return max(8, round(width * k / 8) * 8), max(8, round(height * k / 8) * 8)


class StyleLoss:
    """Losses of one scale, normalised by the init image's own values there."""

    def __init__(self, hed, init: torch.Tensor, style: torch.Tensor, content_weight: float, style_weight: float):
        self.hed = hed
        layers = (*STYLE_LAYERS, CONTENT_LAYER)
        with torch.no_grad():
            self.style_grams = {k: gram(v) for k, v in hed.features(style, STYLE_LAYERS).items()}
            init_feats = hed.features(init, layers)
            self.content_target = init_feats[CONTENT_LAYER]
            self.content_norm = float(self.content_target.pow(2).mean()) or 1.0
            self.style_norm = float(self._style(init_feats)) or 1.0
        self.cw, self.sw = content_weight, style_weight

    def _style(self, feats) -> torch.Tensor:
        return sum(F.mse_loss(gram(feats[k]), self.style_grams[k], reduction="sum") for k in STYLE_LAYERS)

    def parts(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.hed.features(x, (*STYLE_LAYERS, CONTENT_LAYER))
        content = F.mse_loss(feats[CONTENT_LAYER], self.content_target) / self.content_norm
        style = self._style(feats) / self.style_norm
        tv = (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
        return content, style, tv

    def total(self, x: torch.Tensor) -> torch.Tensor:
        content, style, tv = self.parts(x)
        return self.cw * content + self.sw * style + TV_WEIGHT * tv

    def measure(self, x: torch.Tensor) -> dict[str, float]:
        with torch.no_grad():
            content, style, _ = self.parts(x.clamp(0, 1))
        return {"content": float(content), "style": float(style)}


def weights(style_strength: float, composition_fidelity: float) -> tuple[float, float]:
    """(content weight, style weight) from the request, as the module docstring describes."""
    return CONTENT_SCALE * 10 ** (2.5 * composition_fidelity - 2.5), float(style_strength)


def transfer(
    hed,
    init_image: Image.Image,
    style_image: Image.Image,
    *,
    style_strength: float = 1.0,
    composition_fidelity: float = 0.9,
    change_strength: float = 0.9,
    seed: int = 1,
    schedule: Schedule | None = None,
    output_pixels: int = OUTPUT_PIXELS,
    upscaler=None,
    progress=None,
) -> StyleResult:
    """Restyle ``init_image``; ``upscaler`` (a Real-ESRGAN session) sharpens the last step, else Lanczos."""
    torch.set_num_threads(threads())
    schedule = schedule or Schedule()
    content_w, style_w = weights(style_strength, composition_fidelity)
    init_rgb, style_rgb = init_image.convert("RGB"), style_image.convert("RGB")
    gen = torch.Generator().manual_seed(int(seed))
    total_steps = sum(n for _, n in schedule.scales)
    done = 0
    x = None
    seconds: dict[str, float] = {}
    losses: dict[str, float] = {}
    for side, iterations in schedule.scales:
        started = time.perf_counter()
        size = fit(init_rgb.size, side)
        init = to_tensor(init_rgb.resize(size, Image.Resampling.LANCZOS))
        # The style image at about the same pixel count, so its strokes keep their size relative to the output.
        k = math.sqrt(size[0] * size[1] / (style_rgb.width * style_rgb.height))
        style_size = (max(16, round(style_rgb.width * k)), max(16, round(style_rgb.height * k)))
        style = to_tensor(style_rgb.resize(style_size, Image.Resampling.LANCZOS))
        loss = StyleLoss(hed, init, style, content_w, style_w)
        if x is None:
            # No style to pull towards: nothing should change, so start (and stay) at the init image.
            amount = 0.3 * change_strength if style_w > 0 else 0.0
            # Smooth noise (drawn at 1/8 size): it moves colours and shapes, which the seed then decides, without
            # leaving pixel speckle that a few iterations cannot remove.
            coarse = torch.randn((1, 3, max(2, size[1] // 8), max(2, size[0] // 8)), generator=gen)
            noise = F.interpolate(coarse, size=(size[1], size[0]), mode="bicubic", align_corners=False) * amount
            x = (init + noise).clamp(0, 1)
        else:
            x = F.interpolate(x.detach(), size=(size[1], size[0]), mode="bicubic", align_corners=False).clamp(0, 1)
        x = x.clone(memory_format=torch.contiguous_format).requires_grad_(True)
        opt = torch.optim.LBFGS(
            [x],
            lr=1.0,
            max_iter=iterations,
            max_eval=iterations,
            history_size=20,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
        )

        def closure():
            nonlocal done
            opt.zero_grad()
            value = loss.total(x)
            value.backward()
            done += 1
            if progress:
                progress(min(done, total_steps), total_steps)
            return value

        if style_w > 0:
            opt.step(closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        # At this scale: the result's losses and, for reference, the init image's (style 1, content 0).
        losses = {**loss.measure(x), **{f"init_{k}": v for k, v in loss.measure(init).items()}}
        seconds[f"scale_{side}"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    out_size = output_size(*init_rgb.size, output_pixels)
    # With no style weight the optimum is the init image itself: return it at full resolution, not a resampled
    # copy of its small version.
    stylised = to_image(x) if style_w > 0 else init_rgb
    if upscaler is not None and style_w > 0 and stylised.width * 4 >= out_size[0]:
        stylised = upscaler.upscale(stylised)
    stylised = stylised.resize(out_size, Image.Resampling.LANCZOS)
    keep = min(1.0, change_strength / 0.9)
    if keep < 1.0:
        base = init_rgb.resize(out_size, Image.Resampling.LANCZOS)
        stylised = Image.blend(base, stylised, keep)
    seconds["finish"] = round(time.perf_counter() - started, 2)
    return StyleResult(stylised, losses, seconds)
