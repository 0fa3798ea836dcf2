"""erase with snap_mask: a sloppy stroke over one object that spills onto its neighbour, with known truth.

The scene is synthetic, so the clean plate (the floor without the object) and both objects' masks are known:
a disk pasted 6 px from a slab (a page of random dark lines), and a stroke that covers the disk with a loose
margin and overlaps the slab by 15 px. Snapping must give the disk (not the slab),
and the erase must leave the slab intact.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

import pixelsmith
from pixelsmith.models import is_installed

W, H = 384, 256
DISK = (60, 60, 200, 200)
SLAB = (206, 40, 340, 220)  # 6 px to the disk's right edge


def scene():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W]
    floor = np.stack(
        [140 + 25 * np.sin(xx / 11.0), 120 + 20 * np.cos(yy / 9.0), 100 + 10 * np.sin((xx + yy) / 7.0)], -1
    )
    plate = np.clip(floor + rng.normal(0, 5, floor.shape), 0, 255).astype(np.uint8)
    img = Image.fromarray(plate)
    disk, slab = Image.new("L", (W, H)), Image.new("L", (W, H))
    ImageDraw.Draw(disk).ellipse(DISK, fill=255)
    ImageDraw.Draw(slab).rectangle(SLAB, fill=255)
    img.paste(Image.new("RGB", (W, H), (200, 60, 40)), mask=disk)
    # the slab is a printed page (random dark lines): its pixels cannot be rebuilt from the rest of it
    page = np.full((H, W, 3), (225, 225, 215), np.uint8)
    for y in range(SLAB[1], SLAB[3], 7):
        x0 = int(rng.integers(SLAB[0], SLAB[0] + 20))
        page[y : y + 2, x0 : int(rng.integers(SLAB[0] + 40, SLAB[2]))] = (40, 40, 60)
    img.paste(Image.fromarray(page), mask=slab)
    stroke = Image.new("L", (W, H))
    d = ImageDraw.Draw(stroke)
    d.ellipse((DISK[0] - 8, DISK[1] - 6, DISK[2] + 4, DISK[3] + 8), fill=255)  # loose, lopsided margin
    d.ellipse((150, 90, SLAB[0] + 15, 170), fill=255)  # the spill: 15 px into the slab
    return img, plate, np.asarray(disk) > 0, np.asarray(slab) > 0, stroke


def iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


needs_sam = pytest.mark.skipif(not is_installed("mobilesam"), reason="pixelsmith models fetch mobilesam")


@pytest.fixture(scope="module")
def case():
    return scene()


@needs_sam
def test_snap_gives_the_object_the_stroke_mostly_covers(case):
    from pixelsmith.engines.embedded import session
    from pixelsmith.engines.embedded.snap import snap_mask
    from pixelsmith.engines.sessions import Segmenter

    img, _, disk, slab, stroke = case
    brushed = np.asarray(stroke, np.float32) / 255.0
    assert (brushed >= 0.5)[slab].sum() > 500  # the stroke really spills onto the slab
    snapped = snap_mask(img, brushed, session("mobilesam", Segmenter))
    hard = snapped.mask >= 0.5
    assert snapped.snapped
    assert iou(hard, disk) > 0.85 > iou(brushed >= 0.5, disk) + 0.05, (iou(hard, disk), iou(brushed >= 0.5, disk))
    assert (hard & slab).sum() < 0.1 * ((brushed >= 0.5) & slab).sum()
    assert (disk & ~hard).sum() < 0.01 * disk.sum()  # none of the object left behind


@needs_sam
def test_erase_with_snap_leaves_the_neighbour_intact(case):
    img, _, _, slab, stroke = case
    before = np.asarray(img, np.float32)
    plain = np.asarray(pixelsmith.run("erase", image=img, mask=stroke, seed=1).image, np.float32)
    snapped = pixelsmith.run("erase", image=img, mask=stroke, seed=1, snap_mask=True)
    assert snapped.metadata["snapped"] is True
    after = np.asarray(snapped.image, np.float32)
    inner = np.zeros_like(slab)
    inner[SLAB[1] + 2 : SLAB[3] - 1, SLAB[0] + 2 : SLAB[2] - 1] = True  # the slab less its anti-aliased rim
    damage_plain = float(np.abs(plain - before)[inner].mean())
    damage_snap = float(np.abs(after - before)[inner].mean())
    assert damage_snap < 0.2 * damage_plain and damage_snap < 1.0, (damage_snap, damage_plain)
