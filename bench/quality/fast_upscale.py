"""fast-upscale model choice on real photos: the anime model against the photo models, ×4 from degraded crops.

Each truth crop (256², from the notebook samples) is downscaled ×4 (Lanczos) and saved as JPEG q85, as real
inputs are, then upscaled back ×4 by every model and by bicubic. Figures:

* coarse: PSNR after a Gaussian blur (sigma 2) against the truth, dB; large-scale fidelity
* sharp: gradient energy / bicubic's (how much sharper than bicubic; the truth's own value is printed too)
* tex: gradient energy / the truth's (1 = as detailed as the truth)
* flat+: posterisation on skin, percentage points of the skin region whose 5x5 luminance std is under
  1 level, minus the truth's own flat share (0 = as flat as the truth; cel-shaded skin is +20..+60)
* s/MP: median wall seconds per output MP of a 320² -> 1280² upscale, the models interleaved (ABC.. x rounds)

    .venv/bin/python bench/quality/fast_upscale.py [--rounds 5] [--out bench/results/quality] [--crops DIR]

``--crops DIR`` writes the 1:1 crops (bicubic / each model / truth) and a 2x sheet as PNGs.
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import statistics
import sys
import time

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality.metrics import coarse_psnr, gradient_energy  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.engines.embedded.recipes.fast_upscale import keep_input_tones  # noqa: E402

SIGMAS = [float(x) for x in os.environ.get("LF_SIGMAS", "0.75").split(",") if x]

NOTEBOOK = pathlib.Path(os.environ.get("PIXELSMITH_NOTEBOOK", "/work/shared/samples/notebook"))
MODELS = ["realesr-animevideov3-x4", "span-x4-ch52", "realesr-general-x4v3", "clearreality-x4"]
SHORT = {
    "realesr-animevideov3-x4": "anime",
    "span-x4-ch52": "span",
    "realesr-general-x4v3": "general",
    "clearreality-x4": "clearreal(NC)",
}

# name -> (file, box); "skin" crops carry the posterisation measure
CROPS = {
    "face-woman": ("remove_background_input.png", (387, 372, 643, 628)),
    "face-man": ("search_and_recolor_input.png", (380, 110, 636, 366)),
    "sweater": ("remove_background_input.png", (240, 620, 496, 876)),
    "jacket": ("search_and_recolor_input.png", (330, 420, 586, 676)),
    "foliage": ("remove_background_input.png", (0, 0, 256, 256)),
    "stone": ("upscale_input.jpg", (200, 480, 456, 736)),
    "statue": ("style_transfer_input.jpg", (300, 80, 556, 336)),
}
SKIN = {"face-woman", "face-man"}


def degrade(truth: Image.Image, factor: int = 4, quality: int = 85) -> Image.Image:
    small = truth.resize((truth.width // factor, truth.height // factor), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def skin_mask(truth: Image.Image) -> np.ndarray:
    ycc = cv2.cvtColor(np.asarray(truth), cv2.COLOR_RGB2YCrCb)
    m = ((ycc[..., 1] > 135) & (ycc[..., 1] < 175) & (ycc[..., 2] > 80) & (ycc[..., 2] < 130)).astype(np.uint8)
    return cv2.erode(m, np.ones((9, 9), np.uint8)).astype(bool)


def flat_share(img: Image.Image, mask: np.ndarray, thresh: float = 1.0) -> float:
    y = cv2.cvtColor(np.asarray(img.convert("RGB")), cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(y, (5, 5))
    std = np.sqrt(np.maximum(cv2.blur(y * y, (5, 5)) - mean * mean, 0))
    return float((std[mask] < thresh).mean())


def upscale(model: str, img: Image.Image) -> Image.Image:
    return new_session(model).upscale(img)  # type: ignore[attr-defined,no-any-return]


def speed(rounds: int) -> dict[str, list[float]]:
    src = Image.open(NOTEBOOK / "remove_background_input.png").convert("RGB").crop((300, 250, 620, 570))
    times: dict[str, list[float]] = {m: [] for m in MODELS}
    for m in MODELS:
        upscale(m, src.crop((0, 0, 64, 64)))  # load once, outside the timing
    for _ in range(rounds):
        for m in MODELS:
            t0 = time.perf_counter()
            out = upscale(m, src)
            times[m].append((time.perf_counter() - t0) / (out.width * out.height / 1e6))
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--crops", default="")
    args = ap.parse_args()
    print(f"threads {os.environ.get('PIXELSMITH_THREADS', 'default')}, load average {os.getloadavg()[0]:.1f}")
    sums: dict[str, list[list[float]]] = {}
    sheet_rows = []
    for name, (file, box) in CROPS.items():
        truth = Image.open(NOTEBOOK / file).convert("RGB").crop(box)
        small = degrade(truth)
        bic = small.resize(truth.size, Image.Resampling.BICUBIC)
        e_bic = gradient_energy(bic)
        mask = skin_mask(truth) if name in SKIN else None
        outs = {"bicubic": bic} | {SHORT[m]: upscale(m, small) for m in MODELS}
        for sig in SIGMAS:
            outs[f"general+lf{sig:g}"] = keep_input_tones(outs["general"], small, sig)
        line = [f"{name:11}"]
        truth_flat = flat_share(truth, mask) if mask is not None and mask.sum() > 200 else None
        for label, out in outs.items():
            c = coarse_psnr(out, truth)
            s = gradient_energy(out) / e_bic
            t = gradient_energy(out) / gradient_energy(truth)
            f = 100 * (flat_share(out, mask) - truth_flat) if truth_flat is not None and mask is not None else np.nan
            sums.setdefault(label, []).append([c, s, t, f])
            line.append(f"{label} {c:4.1f}dB s{s:4.2f} t{t:4.2f}" + (f" f{f:+5.1f}" if not np.isnan(f) else ""))
        print(" | ".join(line) + f" | truth s{gradient_energy(truth) / e_bic:4.2f}")
        sheet_rows.append([outs[k] for k in outs] + [truth])
        if args.crops:
            d = pathlib.Path(args.crops)
            d.mkdir(parents=True, exist_ok=True)
            for label, out in list(outs.items()) + [("truth", truth)]:
                out.save(d / f"fast_upscale_{name}_{label.split('(')[0]}.png")
    print("mean over crops (coarse dB, sharp vs bicubic, texture vs truth, skin flat+ pp):")
    for label, rows in sums.items():
        a = np.array(rows)
        print(
            f"  {label:14} coarse {a[:, 0].mean():5.2f}  sharp {a[:, 1].mean():4.2f}  tex {a[:, 2].mean():4.2f}  "
            f"flat+ {np.nanmean(a[:, 3]):+5.1f}"
        )
    if args.crops:
        k = 2  # 2x sheet of the central 96² of each crop
        cells = [
            [im.crop((80, 80, 176, 176)).resize((192, 192), Image.Resampling.NEAREST) for im in r] for r in sheet_rows
        ]
        sheet = Image.new("RGB", (192 * len(cells[0]), 192 * len(cells)), "white")
        for r, row in enumerate(cells):
            for c, cell in enumerate(row):
                sheet.paste(cell, (c * 192 * k // 2, r * 192))
        sheet.save(pathlib.Path(args.crops) / "fast_upscale_sheet_2x.png")
    if args.rounds:
        times = speed(args.rounds)
        print(f"speed, 320² -> 1280², {args.rounds} rounds interleaved, load average {os.getloadavg()[0]:.1f}:")
        for m, ts in times.items():
            print(f"  {SHORT[m]:14} min {min(ts):4.2f}  median {statistics.median(ts):4.2f} s/MP")


if __name__ == "__main__":
    main()
