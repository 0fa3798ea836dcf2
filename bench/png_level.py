"""PNG compress level: encode time (CPU seconds, interleaved) and size per level, on the kinds of image the
service writes: a 4 MP photo upscale (camera noise, little to compress), a smooth render and an RGBA cut-out.

    .venv/bin/python bench/png_level.py [--rounds 5] [--levels 1,2,3,4,6]
"""

from __future__ import annotations

import argparse
import io
import pathlib
import sys

import numpy as np
from PIL import Image
from skimage import data

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import compare  # noqa: E402


def images() -> dict[str, Image.Image]:
    photo = Image.open(ROOT / "samples" / "upscale_input.jpg").convert("RGB")
    upscaled = photo.resize((1672, 2508), Image.Resampling.LANCZOS)  # the conservative-upscale output size
    smooth = Image.fromarray(data.astronaut()).resize((1024, 1024), Image.Resampling.BICUBIC)
    cut = Image.open(ROOT / "samples" / "remove_background_input.png").convert("RGBA")
    a = np.asarray(cut).copy()
    h, w = a.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    a[..., 3] = np.where((yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (min(h, w) / 3) ** 2, 255, 0)
    return {"photo 4.2 MP": upscaled, "render 1 MP": smooth, f"cut-out RGBA {w}x{h}": Image.fromarray(a)}


def png(image: Image.Image, level: int) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--levels", default="1,2,3,4,6")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    for name, image in images().items():
        sizes = {level: len(png(image, level)) for level in levels}
        base = sizes[4] if 4 in sizes else sizes[levels[0]]
        print(
            f"{name}: bytes "
            + ", ".join(f"level {lv} {n / 1e6:.2f} MB ({n / base - 1:+.1%})" for lv, n in sizes.items())
        )
        compare(
            {f"level {lv}": (lambda lv=lv: png(image, lv)) for lv in levels},
            rounds=args.rounds,
            clock="cpu",
            baseline="level 4" if 4 in levels else None,
            label=f"{name}: PNG encode",
        )


if __name__ == "__main__":
    main()
