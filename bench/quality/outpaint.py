"""Outpaint quality: crop a real photo, outpaint back to the full frame, compare with the truth.

Methods, in the same run, on the same crop:

* ours      - pixelsmith's embedded outpaint (multi-scale PatchMatch completion + seam correction)
* reflect   - mirror padding (cv2 BORDER_REFLECT_101)
* replicate - edge replication (cv2 BORDER_REPLICATE)

Figures, on the added region only:
* coarse PSNR - PSNR after a Gaussian blur (sigma 4): fidelity of the large-scale content
* texture     - gradient energy in the new region / the truth's (0 = smeared, 1 = as detailed)
* seam        - gradient energy on the 2-pixel band across the seam / the truth's on the same
                band (1 = the seam is invisible, > 1 = a visible step)

Then the notebook's case (outpaint_input.jpg, left 512, right 512, up 200, down 100) in a
child process, reporting its wall and CPU seconds and peak memory.

    .venv/bin/python bench/quality/outpaint.py [--out bench/results/quality]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from erase import _rgb, coarse_psnr, gradient_energy, texture_ratio  # noqa: E402

from pixelsmith.engines.embedded.patchmatch import complete  # noqa: E402

SAMPLES = ROOT / "samples"
MARGINS = {"left": 96, "right": 96, "up": 64, "down": 64}


def scenes() -> dict[str, np.ndarray]:
    tower = np.asarray(Image.open(SAMPLES / "outpaint_input.jpg").convert("RGB"))
    desk = np.asarray(Image.open(SAMPLES / "erase_input_desk.png").convert("RGB"))
    return {
        "tower and sky (sample)": cv2.resize(tower, (400, 600), interpolation=cv2.INTER_AREA),
        "desk (sample)": cv2.resize(desk, (512, 512), interpolation=cv2.INTER_AREA),
        "coffee (skimage)": data.coffee(),
        "grass (skimage)": _rgb(data.grass()),
        "brick wall (skimage)": _rgb(data.brick()),
    }


def ours(crop: np.ndarray, m: dict[str, int]) -> np.ndarray:
    h, w = crop.shape[:2]
    canvas = np.zeros((h + m["up"] + m["down"], w + m["left"] + m["right"], 3), np.uint8)
    canvas[m["up"] : m["up"] + h, m["left"] : m["left"] + w] = crop
    hole = np.ones(canvas.shape[:2], bool)
    hole[m["up"] : m["up"] + h, m["left"] : m["left"] + w] = False
    return complete(canvas, hole, seed=7, creativity=0.5, edges=False)  # as the outpaint recipe calls it


def border(kind: int):
    return lambda crop, m: cv2.copyMakeBorder(crop, m["up"], m["down"], m["left"], m["right"], kind)


METHODS = {"ours": ours, "reflect": border(cv2.BORDER_REFLECT_101), "replicate": border(cv2.BORDER_REPLICATE)}


def seam_score(result: np.ndarray, truth: np.ndarray, known: np.ndarray) -> float:
    band = cv2.dilate(known.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~cv2.erode(
        known.astype(np.uint8), np.ones((3, 3), np.uint8)
    ).astype(bool)
    band[[0, -1], :] = band[:, [0, -1]] = False
    return float(gradient_energy(result)[band].mean() / max(gradient_energy(truth)[band].mean(), 1e-6))


NOTEBOOK = """
import json, resource, sys, time
sys.path.insert(0, {root!r})
import pixelsmith
t, c = time.perf_counter(), time.process_time()
out = pixelsmith.run("outpaint", image={image!r}, left=512, right=512, up=200, down=100, seed=7)
out.save({dest!r})
print(json.dumps({{"size": out.image.size, "wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c,
                   "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    ap.add_argument("--skip-notebook", action="store_true")
    args = ap.parse_args()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    m = MARGINS

    rows, table = [], []
    print(f"margins {m}")
    print(f"{'scene':24s} {'method':10s} {'coarsePSNR':>10s} {'texture':>8s} {'seam':>6s} {'seconds':>8s}")
    for scene, truth in scenes().items():
        h, w = truth.shape[:2]
        crop = np.ascontiguousarray(truth[m["up"] : h - m["down"], m["left"] : w - m["right"]])
        known = np.zeros((h, w), bool)
        known[m["up"] : h - m["down"], m["left"] : w - m["right"]] = True
        tiles = [cv2.resize(truth, (256, int(256 * h / w)), interpolation=cv2.INTER_AREA)]
        for name, method in METHODS.items():
            t0 = time.perf_counter()
            res = method(crop, m)
            secs = time.perf_counter() - t0
            assert res.shape == truth.shape and (res[known] == truth[known]).all(), name
            new = ~known
            cp, tr, ss = coarse_psnr(res, truth, new), texture_ratio(res, truth, new), seam_score(res, truth, known)
            table.append((scene, name, cp, tr, ss, secs))
            print(f"{scene:24s} {name:10s} {cp:10.2f} {tr:8.2f} {ss:6.2f} {secs:8.2f}", flush=True)
            tiles.append(cv2.resize(res, (256, int(256 * h / w)), interpolation=cv2.INTER_AREA))
        row = np.concatenate(tiles, axis=1)
        rows.append(row)
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([cv2.copyMakeBorder(r, 0, 4, 0, width - r.shape[1], cv2.BORDER_CONSTANT) for r in rows])
    Image.fromarray(sheet).save(out_dir / "outpaint_sheet.png")
    print("columns: truth, " + ", ".join(METHODS))
    print("\nmean over scenes")
    for name in METHODS:
        sel = [r for r in table if r[1] == name]
        print(
            f"  {name:10s} coarsePSNR {np.mean([r[2] for r in sel]):6.2f}  texture {np.mean([r[3] for r in sel]):5.2f}"
            f" (min {min(r[3] for r in sel):.2f})  seam {np.mean([r[4] for r in sel]):5.2f}"
            f"  seconds {np.mean([r[5] for r in sel]):6.2f}"
        )

    if not args.skip_notebook:
        dest = out_dir / "outpaint_notebook.png"
        code = NOTEBOOK.format(root=str(ROOT), image=str(SAMPLES / "outpaint_input.jpg"), dest=str(dest))
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        fig = json.loads(res.stdout.strip().splitlines()[-1])
        print(
            f"\nnotebook outpaint (1280x1920 + 512/512/200/100 -> {fig['size'][0]}x{fig['size'][1]}): "
            f"{fig['wall_s']:.1f} s wall, {fig['cpu_s']:.1f} s CPU, peak RSS {fig['peak_rss_mb']:.0f} MB"
        )
    print(f"wrote {out_dir / 'outpaint_sheet.png'}")


if __name__ == "__main__":
    main()
