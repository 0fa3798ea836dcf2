"""Search-and-recolor grounding with and without MobileSAM refinement, on the notebook photo.

Measures, for the notebook's "jacket" (tests/data/recolor_regions.json holds hand-drawn regions; the person
silhouette is tests/data/refs/search_and_recolor_input.mask.png):

- jacket: mean mask inside the jacket polygons (recall; 1 is best);
- straps: mean mask inside the two backpack-strap polygons (leak; 0 is best);
- outside: mask mass (sum of the soft mask) outside the person silhouette grown by 2 px, in pixels
  (the pink rim on the snow; 0 is best), and the same as a share of the mask's mass;
- seconds: ground() wall time (the SAM encode is included once; it is cached per image afterwards).

    .venv/bin/python bench/quality/segment_grounding.py [--crops docs/img/quality]
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality.recolor import regions  # noqa: E402

NOTEBOOK = ROOT / "samples" / "search_and_recolor_input.png"
PERSON = ROOT / "tests" / "data" / "refs" / "search_and_recolor_input.mask.png"


def measure(mask: np.ndarray) -> dict[str, float]:
    zones = regions(mask.shape)
    person = np.asarray(Image.open(PERSON)) > 127
    grown = cv2.dilate(person.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    straps = zones["right_strap"] | zones["left_strap"]
    outside = float(mask[~grown].sum())
    return {
        "jacket": round(float(mask[zones["jacket"]].mean()), 4),
        "straps": round(float(mask[straps].mean()), 4),
        "right_strap": round(float(mask[zones["right_strap"]].mean()), 4),
        "left_strap": round(float(mask[zones["left_strap"]].mean()), 4),
        "face_hair": round(float(mask[zones["face"] | zones["hair"]].mean()), 4),
        "outside_px": round(outside, 1),
        "outside_share": round(outside / max(float(mask.sum()), 1.0), 4),
    }


def main() -> None:
    from pixelsmith.engines.embedded import grounding

    crops = pathlib.Path(sys.argv[sys.argv.index("--crops") + 1]) if "--crops" in sys.argv else None
    image = Image.open(NOTEBOOK).convert("RGB")
    rows = {}
    masks = {}
    real = grounding._segmenter
    for name, seg in (("before (grabcut)", lambda: None), ("after (mobilesam)", real)):
        grounding._segmenter = seg  # type: ignore[assignment]
        for run in ("cold", "warm"):
            t0 = time.perf_counter()
            found = grounding.ground(image, "jacket")
            rows[f"{name} {run}"] = {**measure(found.mask), "seconds": round(time.perf_counter() - t0, 2)}
        masks[name] = found.mask
    grounding._segmenter = real
    print(json.dumps(rows, indent=1))
    if crops:
        crops.mkdir(parents=True, exist_ok=True)
        rgb = np.asarray(image, np.float32)
        tiles = []
        for m in masks.values():
            over = rgb * (1 - 0.6 * m[..., None]) + np.array([255, 40, 160], np.float32) * 0.6 * m[..., None]
            tiles.append(Image.fromarray(np.clip(over, 0, 255).astype(np.uint8)).crop((330, 380, 870, 920)))
        sheet = Image.new("RGB", (tiles[0].width * 2 + 8, tiles[0].height), "white")
        for i, t in enumerate(tiles):
            sheet.paste(t, (i * (t.width + 8), 0))
        sheet.resize((sheet.width * 2 // 3, sheet.height * 2 // 3), Image.Resampling.LANCZOS).save(
            crops / "segment_recolor_jacket.png"
        )


if __name__ == "__main__":
    main()
