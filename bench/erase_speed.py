"""Erase speed: a 1024x1024 photo with a 10% hole, the embedded completion vs OpenCV's shift-map.

    .venv/bin/python bench/erase_speed.py [--runs 3] [--no-shiftmap]

Prints wall and CPU seconds per run (CPU seconds include OpenCV's worker threads).
Wall time on a shared machine is noisy: compare CPU seconds when other jobs run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pixelsmith.engines.embedded.patchmatch import complete  # noqa: E402


def case() -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(Image.open(ROOT / "samples" / "erase_input_desk.png").convert("RGB"))
    hole = np.zeros(img.shape[:2], np.uint8)
    cv2.ellipse(hole, (560, 620), (230, 140), 15, 0, 360, 1, -1)  # ~10% of the frame, over books and wood
    return img, hole.astype(bool)


def timed(fn) -> tuple[float, float]:
    t, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-shiftmap", action="store_true")
    args = ap.parse_args()
    img, hole = case()
    print(
        f"image {img.shape[1]}x{img.shape[0]}, hole {hole.mean():.1%}, cores {os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    runs = [timed(lambda i=i: complete(img, hole, seed=i + 1)) for i in range(args.runs)]
    wall, cpu = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(
        f"ours      median of {args.runs}: {wall:6.2f} s wall, {cpu:6.2f} s CPU "
        f"(runs: {', '.join(f'{w:.2f}/{c:.2f}' for w, c in runs)})"
    )
    if not args.no_shiftmap:
        out = np.zeros_like(img)
        known = np.where(hole, 0, 255).astype(np.uint8)
        w, c = timed(lambda: cv2.xphoto.inpaint(img, known, out, cv2.xphoto.INPAINT_SHIFTMAP))
        print(
            f"shiftmap  one run:      {w:6.2f} s wall, {c:6.2f} s CPU  -> ours is {w / wall:.1f}x faster (wall), "
            f"{c / cpu:.1f}x (CPU)"
        )


if __name__ == "__main__":
    main()
