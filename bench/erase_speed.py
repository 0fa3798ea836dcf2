"""Erase speed: (1) cost follows the hole: the same 128x96 hole in a 2048² photo and in the 512² crop around
it; (2) a 1024² photo with a 10 % hole, the embedded completion vs OpenCV's shift-map.

    .venv/bin/python bench/erase_speed.py [--rounds 5] [--clock cpu|wall] [--no-shiftmap] [--edges]

Variants are interleaved (bench/interleave.py); CPU seconds include OpenCV's worker threads. On a shared
machine compare CPU seconds and ratios of medians, not wall seconds.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import compare  # noqa: E402
from pixelsmith.engines.embedded.patchmatch import complete  # noqa: E402


def desk() -> np.ndarray:
    return np.asarray(Image.open(ROOT / "samples" / "erase_input_desk.png").convert("RGB"))


def hole_cases() -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """The same 128x96 hole over books and wood, in a 2048² photo and in the 512² crop around it."""
    big = np.asarray(Image.fromarray(desk()).resize((2048, 2048), Image.Resampling.BICUBIC))
    hole = np.zeros(big.shape[:2], bool)
    hole[1100:1196, 1000:1128] = True
    crop = (slice(800, 1312), slice(800, 1312))
    return (np.ascontiguousarray(big[crop]), np.ascontiguousarray(hole[crop])), (big, hole)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    ap.add_argument("--no-shiftmap", action="store_true")
    ap.add_argument("--edges", action="store_true", help="also time complete(edges=False) on the 1024²")
    ap.add_argument("--whole-canvas", action="store_true", help="also time complete(local=False) on the 2048²")
    args = ap.parse_args()
    (small, small_hole), (big, big_hole) = hole_cases()
    variants = {
        "128x96 hole in 512²": lambda: complete(small, small_hole, seed=1),
        "128x96 hole in 2048²": lambda: complete(big, big_hole, seed=1),
    }
    if args.whole_canvas:
        variants["... 2048², whole canvas"] = lambda: complete(big, big_hole, seed=1, local=False)
    compare(variants, args.rounds, args.clock, warm=False, label="erase: cost follows the hole")

    img = desk()
    hole = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(hole, (560, 620), (230, 140), 15, 0, 360, 1, -1)  # ~10% of the frame, over books and wood
    hole = hole.astype(bool)
    variants = {"ours (1024², 10 % hole)": lambda: complete(img, hole, seed=1)}
    if args.edges:  # what the far-side rule (patchmatch.far_side) costs
        variants["ours, edges=False"] = lambda: complete(img, hole, seed=1, edges=False)
    if not args.no_shiftmap:
        known = np.where(hole, 0, 255).astype(np.uint8)
        out = np.zeros_like(img)
        variants["opencv shift-map"] = lambda: cv2.xphoto.inpaint(img, known, out, cv2.xphoto.INPAINT_SHIFTMAP)
    compare(variants, max(2, args.rounds // 2), args.clock, warm=False, label="erase vs shift-map")


if __name__ == "__main__":
    main()
