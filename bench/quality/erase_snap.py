"""erase with and without snap_mask on the synthetic case of tests/test_erase_snap.py (known truth).

Prints the mask's IoU with the true object, how much of the neighbour the mask covers, the erase's mean
change inside the neighbour (damage; 0 is best), its error against the clean plate where the object was,
and the time snapping adds; writes docs/img/quality/segment_erase_snap.png (input+stroke, plain, snapped).

    .venv/bin/python bench/quality/erase_snap.py
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.test_erase_snap import SLAB, iou, scene  # noqa: E402


def main() -> None:
    import pixelsmith
    from pixelsmith.engines.embedded import session
    from pixelsmith.engines.embedded.snap import snap_mask
    from pixelsmith.engines.sessions import Segmenter

    img, plate, disk, slab, stroke = scene()
    brushed = np.asarray(stroke, np.float32) / 255.0
    sam = session("mobilesam", Segmenter)
    t0 = time.perf_counter()
    snapped = snap_mask(img, brushed, sam)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    snap_mask(img, brushed, sam)
    warm = time.perf_counter() - t0
    inner = np.zeros_like(slab)
    inner[SLAB[1] + 2 : SLAB[3] - 1, SLAB[0] + 2 : SLAB[2] - 1] = True
    before = np.asarray(img, np.float32)
    rows = {}
    outs = {}
    for name, kw in (("plain stroke", {}), ("snap_mask", {"snap_mask": True})):
        t0 = time.perf_counter()
        out = pixelsmith.run("erase", image=img, mask=stroke, seed=1, **kw)
        seconds = time.perf_counter() - t0
        a = np.asarray(out.image, np.float32)
        m = (snapped.mask if kw else brushed) >= 0.5
        rows[name] = {
            "mask_iou_with_object": round(iou(m, disk), 4),
            "mask_on_neighbour_px": int((m & slab).sum()),
            "neighbour_damage": round(float(np.abs(a - before)[inner].mean()), 2),
            "plate_error_on_object": round(float(np.abs(a - plate.astype(np.float32))[disk].mean()), 2),
            "seconds": round(seconds, 2),
        }
        outs[name] = out.image
    rows["snap seconds"] = {"cold (encode + decode)": round(cold, 2), "warm (decode)": round(warm, 2)}
    print(json.dumps(rows, indent=1))
    shown = np.asarray(img, np.float32).copy()
    s = brushed >= 0.5
    shown[s] = shown[s] * 0.5 + np.array([255, 255, 0], np.float32) * 0.5
    tiles = [Image.fromarray(shown.astype(np.uint8)), outs["plain stroke"], outs["snap_mask"]]
    sheet = Image.new("RGB", (3 * W + 16, H), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t.convert("RGB"), (i * (W + 8), 0))
    out_dir = ROOT / "docs" / "img" / "quality"
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet.save(out_dir / "segment_erase_snap.png")


W, H = 384, 256

if __name__ == "__main__":
    main()
