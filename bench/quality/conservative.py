"""conservative-upscale: which photo model feeds the back-projection. Same photos, same method
(``upscale_preserving`` at 2x to the truth's size), one row per model, CPU seconds per output MP.

    .venv/bin/python bench/quality/conservative.py [--models realesrgan-x4plus,realesr-general-x4v3]

Figures as in bench/quality/upscale.py: texture (gradient energy / the truth's), coarse PSNR (sigma-2 blur vs
the truth), back PSNR (the result downscaled to the input vs the input), colour shift (8-bit levels).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.interleave import load_average  # noqa: E402
from bench.quality.metrics import coarse_psnr, texture_ratio  # noqa: E402
from bench.quality.upscale import colour_shift, degrade, photos, psnr  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.engines.embedded.recipes.conservative_upscale import upscale_preserving  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--variants",
        default="realesrgan-x4plus:1,realesr-general-x4v3:1,realesr-general-x4v3:2",
        help="model:oversample, comma-separated (oversample 1: the net sees the input at a quarter of the output size)",
    )
    ap.add_argument("--crops", default="", help="folder for centre crops (bicubic | each model | truth)")
    args = ap.parse_args()
    models = args.variants.split(",")
    sessions = {v: (new_session(v.split(":")[0]), float(v.split(":")[1])) for v in models}
    print(load_average(), "(CPU seconds; wall would follow the load)")
    crops: list[list[Image.Image]] = []
    for name, truth in photos().items():
        small = degrade(truth, 2)
        box = (truth.width // 2 - 128, truth.height // 2 - 128, truth.width // 2 + 128, truth.height // 2 + 128)
        row = [small.resize(truth.size, Image.Resampling.BICUBIC).crop(box)]
        for model, (session, oversample) in sessions.items():  # interleaved per photo
            t = time.process_time()
            out, _ = upscale_preserving(small, session, target_pixels=truth.width * truth.height, oversample=oversample)
            cpu = time.process_time() - t
            out = out.resize(truth.size, Image.Resampling.LANCZOS) if out.size != truth.size else out
            back = psnr(out.resize(small.size, Image.Resampling.LANCZOS), small)
            mp = out.width * out.height / 1e6
            print(
                f"{name:10} {model:24} texture {texture_ratio(out, truth):5.2f}  "
                f"coarse {coarse_psnr(out, truth):5.1f} dB"
                f"  back {back:5.1f} dB  shift {colour_shift(out, small):4.2f}  {cpu / mp:6.1f} cpu-s/MP"
            )
            row.append(out.crop(box))
        row.append(truth.crop(box))
        crops.append(row)
    if args.crops:
        folder = pathlib.Path(args.crops)
        folder.mkdir(parents=True, exist_ok=True)
        for (name, _), row in zip(photos().items(), crops):
            sheet = Image.new("RGB", (256 * len(row), 256), "white")
            for i, crop in enumerate(row):
                sheet.paste(crop, (256 * i, 0))
            sheet.save(folder / f"conservative_{name}.png")
        print("crops: bicubic |", " | ".join(models), "| truth ->", folder)
    print(load_average())


if __name__ == "__main__":
    main()
