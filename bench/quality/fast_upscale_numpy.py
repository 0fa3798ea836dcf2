"""fast-upscale's photo tones in numpy (``imaging.filters``) against the OpenCV version they replaced (issue 13).

On the seven quality crops of ``fast_upscale.py`` (256² truths, ×4 down + JPEG q85, then the photo net), the
OpenCV ``keep_input_tones`` (area reduce, Gaussian blur, bicubic enlargement: the code before the change) and the
numpy one give the same pixels up to float rounding. Prints, per crop, the largest difference, how many of the
values differ, and the quality figures of both (coarse PSNR, texture ratio); ``--crops DIR`` writes a sheet of
the woman's face: OpenCV / numpy / |difference| x 64, at 1:1 and 2x.

    .venv/bin/python bench/quality/fast_upscale_numpy.py [--crops DIR]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality.fast_upscale import CROPS, NOTEBOOK, degrade  # noqa: E402
from bench.quality.metrics import coarse_psnr, gradient_energy  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.engines.embedded.recipes.fast_upscale import PHOTO, TONE_SIGMA, keep_input_tones  # noqa: E402


def tones_opencv(up: Image.Image, small: Image.Image, sigma: float = TONE_SIGMA) -> Image.Image:
    """keep_input_tones as it was written with OpenCV (f1db850)."""
    rgb = np.asarray(up.convert("RGB"), dtype=np.float32)
    down = cv2.resize(rgb, small.size, interpolation=cv2.INTER_AREA)
    ref = np.asarray(small.convert("RGB"), dtype=np.float32)
    delta = cv2.GaussianBlur(ref, (0, 0), sigma) - cv2.GaussianBlur(down, (0, 0), sigma)
    fixed = rgb + cv2.resize(delta, up.size, interpolation=cv2.INTER_CUBIC)
    return Image.fromarray(np.clip(fixed + 0.5, 0, 255).astype(np.uint8), "RGB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=pathlib.Path)
    args = ap.parse_args()
    net = new_session(PHOTO)
    print(f"{'crop':12s} {'max diff':>8s} {'values differing':>17s} {'coarse dB cv2/np':>17s} {'tex cv2/np':>12s}")
    for name, (file, box) in CROPS.items():
        truth = Image.open(NOTEBOOK / file).convert("RGB").crop(box)
        small = degrade(truth)
        up = net.upscale(small)  # type: ignore[attr-defined]
        a, b = tones_opencv(up, small), keep_input_tones(up, small)
        d = np.abs(np.asarray(a).astype(int) - np.asarray(b))
        ta, tb = (gradient_energy(x) / gradient_energy(truth) for x in (a, b))
        print(
            f"{name:12s} {d.max():8d} {int((d > 0).sum()):>8d} of {d.size:<7d} "
            f"{coarse_psnr(a, truth):8.2f} / {coarse_psnr(b, truth):5.2f} {ta:6.3f} / {tb:5.3f}"
        )
        if args.crops and name == "face-woman":
            diff = Image.fromarray(np.clip(d * 64, 0, 255).astype(np.uint8), "RGB")
            sheet = Image.new("RGB", (3 * 256 + 16, 256), (40, 40, 40))
            for i, im in enumerate((a, b, diff)):
                sheet.paste(im, (i * 264, 0))
            args.crops.mkdir(parents=True, exist_ok=True)
            sheet.save(args.crops / "fast_upscale_numpy_1x.png")
            centre = (64, 64, 192, 192)
            big = Image.new("RGB", (3 * 256 + 16, 256), (40, 40, 40))
            for i, im in enumerate((a, b, diff)):
                big.paste(im.crop(centre).resize((256, 256), Image.Resampling.NEAREST), (i * 264, 0))
            big.save(args.crops / "fast_upscale_numpy_2x.png")


if __name__ == "__main__":
    main()
