"""Upscale quality: fast (realesr-animevideov3) and conservative (Real-ESRGAN x4plus + back-projection)
against bicubic, on real photos whose full-resolution truth is known.

Each truth is downscaled (Lanczos, then JPEG q90 as real inputs are) and upscaled back by every method:

* fast: 4x to the truth's size, as the fast-upscale tool does
* conservative: 2x to the truth's size (the tool's own output size is ~4 MP; ``upscale_preserving`` is run
  with the truth's pixel count as target, the method is the same)
* bicubic at the same size, in the same run

Figures:
* texture: gradient energy / the truth's (bicubic blur ~0.3-0.5, 1 = as detailed as the truth)
* coarse PSNR: PSNR after a Gaussian blur (sigma 2) against the truth; large-scale fidelity
* back PSNR (conservative): the result downscaled back to the input's size vs the input; "preserving the input"
* colour shift: largest channel-mean difference from the input, in 8-bit levels
* s/MP: wall seconds per output megapixel, and CPU seconds per output MP (less sensitive to a shared machine)

    .venv/bin/python bench/quality/upscale.py [--notebook] [--out bench/results/quality]

``--notebook`` also runs conservative-upscale on the notebook's input (683x1024 -> 1672x2508, ~4.2 MP)
through pixelsmith.run and prints its time. Writes upscale_sheet.png (crops: bicubic, fast/conservative, truth).
"""

from __future__ import annotations

import argparse
import io
import os
import pathlib
import sys
import time

import numpy as np
from PIL import Image
from skimage import data

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality.metrics import coarse_psnr, texture_ratio  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.engines.embedded.recipes.conservative_upscale import upscale_preserving  # noqa: E402

SAMPLES = ROOT / "samples"


def photos() -> dict[str, Image.Image]:
    big_ben = Image.open(SAMPLES / "upscale_input.jpg").convert("RGB")
    return {
        "big-ben": big_ben.crop((80, 160, 592, 672)),
        "astronaut": Image.fromarray(data.astronaut()),
        "coffee": Image.fromarray(data.coffee()).crop((44, 0, 556, 400)),
        "statue": Image.open(SAMPLES / "style_transfer_input.jpg").convert("RGB").crop((128, 128, 640, 640)),
    }


def degrade(truth: Image.Image, factor: int) -> Image.Image:
    small = truth.resize((truth.width // factor, truth.height // factor), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def colour_shift(out: Image.Image, ref: Image.Image) -> float:
    return float(np.abs(np.asarray(out, np.float64).mean((0, 1)) - np.asarray(ref, np.float64).mean((0, 1))).max())


def timed(fn):
    c0, t0 = os.times(), time.perf_counter()
    result = fn()
    c1 = os.times()
    return result, time.perf_counter() - t0, (c1.user - c0.user) + (c1.system - c0.system)


def row(name: str, method: str, out: Image.Image, truth: Image.Image, small: Image.Image, wall: float, cpu: float):
    mp = out.width * out.height / 1e6
    back = psnr(out.resize(small.size, Image.Resampling.LANCZOS), small)
    print(
        f"{name:10} {method:13} texture {texture_ratio(out, truth):5.2f}  coarse {coarse_psnr(out, truth):5.1f} dB  "
        f"back {back:5.1f} dB  shift {colour_shift(out, small):4.2f}  "
        f"{wall / mp:6.2f} s/MP  {cpu / mp:6.2f} cpu-s/MP"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    ap.add_argument("--notebook", action="store_true", help="also time the notebook's 4 MP conservative upscale")
    args = ap.parse_args()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast, photo = new_session("realesr-animevideov3-x4"), new_session("realesrgan-x4plus")
    print(f"threads {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (shared machine: wall times are noisy)")
    tiles = []
    for name, truth in photos().items():
        small4 = degrade(truth, 4)
        bic, wall, cpu = timed(lambda: small4.resize(truth.size, Image.Resampling.BICUBIC))
        row(name, "bicubic x4", bic, truth, small4, wall, cpu)
        up, wall, cpu = timed(lambda: fast.upscale(small4))
        row(name, "fast x4", up, truth, small4, wall, cpu)
        small2 = degrade(truth, 2)
        bic2, wall, cpu = timed(lambda: small2.resize(truth.size, Image.Resampling.BICUBIC))
        row(name, "bicubic x2", bic2, truth, small2, wall, cpu)
        (cons, _meta), wall, cpu = timed(
            lambda: upscale_preserving(small2, photo, target_pixels=truth.width * truth.height)
        )
        cons = cons.resize(truth.size, Image.Resampling.LANCZOS) if cons.size != truth.size else cons
        row(name, "conservative", cons, truth, small2, wall, cpu)
        box = (truth.width // 2 - 96, truth.height // 2 - 96, truth.width // 2 + 96, truth.height // 2 + 96)
        tiles.append([im.crop(box) for im in (bic, up, bic2, cons, truth)])
    sheet = Image.new("RGB", (192 * 5, 192 * len(tiles)), "white")
    for r, crops in enumerate(tiles):
        for c, crop in enumerate(crops):
            sheet.paste(crop, (c * 192, r * 192))
    sheet.save(out_dir / "upscale_sheet.png")
    print(f"sheet (bicubic x4, fast x4, bicubic x2, conservative x2, truth): {out_dir / 'upscale_sheet.png'}")
    if args.notebook:
        import pixelsmith

        image = Image.open(SAMPLES / "upscale_input.jpg")
        out, wall, cpu = timed(
            lambda: pixelsmith.run(
                "conservative-upscale", image=image, prompt="Big Ben", creativity=0.35, output_format="jpeg"
            )
        )
        mp = out.image.width * out.image.height / 1e6
        back = psnr(out.image.convert("RGB").resize(image.size, Image.Resampling.LANCZOS), image.convert("RGB"))
        print(
            f"notebook conservative {image.size} -> {out.image.size}: {wall:.1f} s wall, {cpu:.1f} cpu-s, "
            f"{wall / mp:.1f} s/MP, back PSNR {back:.1f} dB"
        )
        out.save(str(out_dir / "conservative_notebook.jpg"))


if __name__ == "__main__":
    main()
