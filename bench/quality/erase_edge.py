"""erase with a stroke that spills 10-20 px onto a neighbouring object, snap off: the fill with the far-side rule
(``complete(..., edges=True)``, what the erase tool does) against without it (``edges=False``, the old fill).

Scenes (tests/test_erase_edge.py): object A pasted 6 px from object B on a real texture (scikit-image's grass,
gravel, brick); the hole covers A and overlaps B by ``overlap`` px; the truth is the background plate.
Figures on the hole: leak (fraction of its pixels that take B's colours), PSNR and coarse PSNR (sigma 4)
against the plate. Every case runs with 2 seeds; writes docs/img/quality/erase_edge_before_after_{1x,2x}.png
(input with the hole outlined, without the rule, with it, the plate) for the first case.

    .venv/bin/python bench/quality/erase_edge.py
"""

from __future__ import annotations

import itertools
import pathlib
import sys

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench" / "quality"))

from erase import coarse_psnr  # noqa: E402

from pixelsmith.engines.embedded.patchmatch import complete  # noqa: E402
from tests.test_erase_edge import hole_psnr, leak, scene  # noqa: E402

BACKGROUNDS = ("grass", "gravel", "brick")
NEIGHBOURS = ("page", "cup")
SHAPES = ("disk", "horse")
OVERLAPS = (10, 20)


def main() -> None:
    rows = []
    print(
        f"{'background':8s} {'B':5s} {'A':6s} {'overlap':>7s} {'seed':>4s}   leak before/after   PSNR before/after"
        "   coarse PSNR before/after"
    )
    shown = None
    for i, (bg, nb, shape, overlap) in enumerate(itertools.product(BACKGROUNDS, NEIGHBOURS, SHAPES, OVERLAPS)):
        img, hole, plate, _, colours = scene(bg, nb, overlap, shape, seed=i)
        for seed in (1, 2):
            before = complete(img, hole, seed=seed, edges=False)
            after = complete(img, hole, seed=seed)
            fig = [
                (leak(r, plate, hole, colours), hole_psnr(r, plate, hole), coarse_psnr(r, plate, hole))
                for r in (before, after)
            ]
            rows.append(fig)
            print(
                f"{bg:10s} {nb:5s} {shape:6s} {overlap:7d} {seed:4d}   {fig[0][0]:.3f} / {fig[1][0]:.3f}"
                f"       {fig[0][1]:5.2f} / {fig[1][1]:5.2f}       {fig[0][2]:5.2f} / {fig[1][2]:5.2f}",
                flush=True,
            )
            if shown is None:
                shown = (img, hole, before, after, plate)
    a = np.array(rows)  # case x (before, after) x (leak, psnr, coarse)
    print(
        f"\nmean over {len(rows)} runs: leak {a[:, 0, 0].mean():.3f} -> {a[:, 1, 0].mean():.3f}"
        f" (worst {a[:, 0, 0].max():.3f} -> {a[:, 1, 0].max():.3f}), PSNR {a[:, 0, 1].mean():.2f} -> "
        f"{a[:, 1, 1].mean():.2f} dB, coarse PSNR {a[:, 0, 2].mean():.2f} -> {a[:, 1, 2].mean():.2f} dB; "
        f"after better on leak in {(a[:, 1, 0] < a[:, 0, 0]).sum()}/{len(rows)}, on PSNR in "
        f"{(a[:, 1, 1] > a[:, 0, 1]).sum()}/{len(rows)}"
    )
    assert shown is not None
    img, hole, before, after, plate = shown
    outlined = img.copy()
    edge = hole ^ cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    outlined[edge] = (255, 0, 0)
    ys, xs = np.nonzero(hole)
    y0, x0 = max(int(ys.min()) - 16, 0), max(int(xs.min()) - 16, 0)
    y1, x1 = min(int(ys.max()) + 17, img.shape[0]), min(int(xs.max()) + 40, img.shape[1])
    tiles = [t[y0:y1, x0:x1] for t in (outlined, before, after, plate)]
    gap = np.full((y1 - y0, 6, 3), 255, np.uint8)
    sheet = np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)
    out = ROOT / "docs" / "img" / "quality"
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(out / "erase_edge_before_after_1x.png")
    cy, cx = (y1 - y0) // 2, (x1 - x0) // 2 + 30
    zoom = [
        cv2.resize(t[cy - 48 : cy + 48, cx - 64 : cx + 64], None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        for t in tiles
    ]
    gap = np.full((zoom[0].shape[0], 6, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([x for t in zoom for x in (t, gap)][:-1], axis=1)).save(
        out / "erase_edge_before_after_2x.png"
    )
    print(f"wrote {out / 'erase_edge_before_after_1x.png'} and _2x.png")


if __name__ == "__main__":
    main()
