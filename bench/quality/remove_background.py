"""Remove-background quality: IoU of the ISNet alpha against hand-seeded references.

The references (tests/data/refs/*.mask.png) were made by bench/quality/make_matting_refs.py
(GrabCut seeded by hand-placed boxes, checked by eye), independently of ISNet.
Also reports how soft the matte is at the subject's edge (fraction of edge pixels with
0 < alpha < 1) and how clean the background is (mean alpha far from the subject).

    .venv/bin/python bench/quality/remove_background.py
"""

from __future__ import annotations

import pathlib
import time

import cv2
import numpy as np
from PIL import Image

import pixelsmith

ROOT = pathlib.Path(__file__).resolve().parents[2]
PHOTOS = ["remove_background_input.png", "inpainting_input_image.png", "search_and_recolor_input.png"]


def scores(alpha: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    fg, truth = alpha >= 0.5, ref >= 0.5
    iou = (fg & truth).sum() / max((fg | truth).sum(), 1)
    band = cv2.dilate(truth.astype(np.uint8), np.ones((15, 15), np.uint8)) - cv2.erode(
        truth.astype(np.uint8), np.ones((15, 15), np.uint8)
    )
    soft = ((alpha > 0.02) & (alpha < 0.98))[band.astype(bool)].mean()
    far = cv2.dilate(truth.astype(np.uint8), np.ones((61, 61), np.uint8)) == 0
    return {
        "iou": float(iou),
        "edge_soft": float(soft),
        "bg_alpha": float(alpha[far].mean()),
        "bg_clear": float((alpha[far] < 0.02).mean()),
    }


def measure(name: str) -> dict[str, float]:
    started = time.perf_counter()
    out = pixelsmith.run("remove-background", image=ROOT / "samples" / name)
    seconds = time.perf_counter() - started
    alpha = np.asarray(out.image.getchannel("A"), dtype=np.float32) / 255.0
    ref = np.asarray(Image.open(ROOT / "tests/data/refs" / name.replace(".png", ".mask.png")), dtype=np.float32) / 255
    return {**scores(alpha, ref), "seconds": seconds}


def main() -> None:
    print(f"{'photo':32s} {'IoU':>6s} {'edge soft':>9s} {'bg alpha':>9s} {'bg clear':>9s} {'s':>6s}")
    for name in PHOTOS:
        s = measure(name)
        print(
            f"{name:32s} {s['iou']:6.3f} {s['edge_soft']:9.3f} {s['bg_alpha']:9.4f} {s['bg_clear']:9.3f} "
            f"{s['seconds']:6.2f}"
        )


if __name__ == "__main__":
    main()
