"""Erase quality: real photos with synthetic holes where the truth is known.

Each scene pastes an object (the horse silhouette filled with the cat photo) onto
a real background, then erases it with the object's mask. Every method fills the same
hole, in the same run:

* ours      - pixelsmith's embedded completion (multi-scale PatchMatch), on the binary hole
* shiftmap  - cv2.xphoto INPAINT_SHIFTMAP (OpenCV's best exemplar method)
* fsr       - cv2.xphoto INPAINT_FSR_FAST (frequency-selective reconstruction;
              FSR_BEST takes minutes per image on 2 cores, so the fast variant is used)
* telea, ns - cv2.inpaint diffusion methods
* mean      - the mean colour of the ring around the hole

Figures, all on the hole only:
* coarse PSNR: PSNR after a Gaussian blur (sigma 4) of result and truth; fidelity of the
  large-scale content, which plain PSNR confuses with blur
* texture: gradient energy in the hole / the truth's (0 = flat, 1 = as detailed as the truth)
* seconds per method (noisy: the machine is shared)

    .venv/bin/python bench/quality/erase.py [--out bench/results/quality]

writes erase_sheet.png (rows: scenes; columns: input, truth, then each method) and
erase_desk.png (the notebook's erase case).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pixelsmith.engines.embedded.patchmatch import complete  # noqa: E402

SAMPLES = ROOT / "samples"
SIZE = 512


# --- metrics (shared with outpaint.py) --------------------------------------------------------


def coarse_psnr(result: np.ndarray, truth: np.ndarray, region: np.ndarray, sigma: float = 4.0) -> float:
    a = cv2.GaussianBlur(result.astype(np.float32), (0, 0), sigma)
    b = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), sigma)
    mse = float(((a - b) ** 2)[region].mean())
    return 10 * np.log10(255.0**2 / max(mse, 1e-6))


def gradient_energy(img: np.ndarray) -> np.ndarray:
    lum = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def texture_ratio(result: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    inner = cv2.erode(region.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # skip the seam itself
    return float(gradient_energy(result)[inner].mean() / max(gradient_energy(truth)[inner].mean(), 1e-6))


# --- scenes ----------------------------------------------------------------------------------


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a[..., :3]


def _crop(a: np.ndarray, y: int, x: int, size: int = SIZE) -> np.ndarray:
    return np.ascontiguousarray(a[y : y + size, x : x + size])


def scenes() -> dict[str, np.ndarray]:
    desk = np.asarray(Image.open(SAMPLES / "erase_input_desk.png").convert("RGB"))
    tower = np.asarray(Image.open(SAMPLES / "outpaint_input.jpg").convert("RGB"))
    return {
        "wood (desk sample)": cv2.resize(_crop(desk, 560, 0, 640), (SIZE, SIZE), interpolation=cv2.INTER_AREA),
        "grass (skimage)": _rgb(data.grass()),
        "brick wall (skimage)": _rgb(data.brick()),
        "facade (tower sample)": cv2.resize(_crop(tower, 1000, 380, 560), (SIZE, SIZE), interpolation=cv2.INTER_AREA),
        "sky (tower sample)": cv2.resize(_crop(tower, 0, 0, 700), (SIZE, SIZE), interpolation=cv2.INTER_AREA),
    }


def paste_object(background: np.ndarray, scale: float = 0.55) -> tuple[np.ndarray, np.ndarray]:
    """The horse silhouette, filled with the cat photo, pasted at the centre; returns (image, hole)."""
    shape = ~data.horse()
    h, w = background.shape[:2]
    oh, ow = int(h * scale), int(h * scale * shape.shape[1] / shape.shape[0])
    sil = cv2.resize(shape.astype(np.uint8), (ow, oh), interpolation=cv2.INTER_NEAREST).astype(bool)
    fill = cv2.resize(data.chelsea(), (ow, oh), interpolation=cv2.INTER_AREA)
    y, x = (h - oh) // 2, (w - ow) // 2
    out = background.copy()
    region = out[y : y + oh, x : x + ow]
    region[sil] = fill[sil]
    hole = np.zeros((h, w), bool)
    hole[y : y + oh, x : x + ow] = sil
    hole = cv2.dilate(hole.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)  # a user's loose mask
    return out, hole


# --- methods ---------------------------------------------------------------------------------


def mean_fill(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
    ring = cv2.dilate(hole.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool) & ~hole
    out = img.copy()
    out[hole] = img[ring].mean(axis=0).astype(np.uint8)
    return out


def xphoto(kind: int):
    def run(img: np.ndarray, hole: np.ndarray) -> np.ndarray:
        out = np.zeros_like(img)
        cv2.xphoto.inpaint(img, np.where(hole, 0, 255).astype(np.uint8), out, kind)  # xphoto: 255 = known
        return out

    return run


def cv_inpaint(flag: int):
    return lambda img, hole: cv2.inpaint(img, hole.astype(np.uint8), 5, flag)


METHODS = {
    "ours": lambda img, hole: complete(img, hole, seed=7),
    "shiftmap": xphoto(cv2.xphoto.INPAINT_SHIFTMAP),
    "fsr": xphoto(cv2.xphoto.INPAINT_FSR_FAST),
    "telea": cv_inpaint(cv2.INPAINT_TELEA),
    "ns": cv_inpaint(cv2.INPAINT_NS),
    "mean": mean_fill,
}


def _tile(img: np.ndarray, hole: np.ndarray | None = None, size: int = 256) -> np.ndarray:
    t = img.copy()
    if hole is not None:  # outline the hole in red
        edge = hole ^ cv2.erode(hole.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        t[cv2.dilate(edge.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)] = (255, 0, 0)
    return cv2.resize(t, (size, size), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    ap.add_argument("--methods", default=",".join(METHODS))
    args = ap.parse_args()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = args.methods.split(",")

    rows, table = [], []
    print(f"{'scene':24s} {'method':9s} {'coarsePSNR':>10s} {'texture':>8s} {'seconds':>8s}")
    for scene, truth in scenes().items():
        img, hole = paste_object(truth)
        tiles = [_tile(img, hole), _tile(truth)]
        for name in names:
            t0 = time.perf_counter()
            res = METHODS[name](img, hole)
            secs = time.perf_counter() - t0
            assert (res[~hole] == img[~hole]).all() or name in ("shiftmap", "fsr"), name
            res = np.where(hole[..., None], res, img)  # judge the hole only
            cp, tr = coarse_psnr(res, truth, hole), texture_ratio(res, truth, hole)
            table.append((scene, name, cp, tr, secs))
            print(f"{scene:24s} {name:9s} {cp:10.2f} {tr:8.2f} {secs:8.2f}", flush=True)
            tiles.append(_tile(res))
        rows.append(np.concatenate(tiles, axis=1))
    sheet = np.concatenate(rows, axis=0)
    Image.fromarray(sheet).save(out_dir / "erase_sheet.png")
    print("columns: input (hole outlined), truth, " + ", ".join(names))

    print("\nmean over scenes")
    for name in names:
        sel = [r for r in table if r[1] == name]
        print(
            f"  {name:9s} coarsePSNR {np.mean([r[2] for r in sel]):6.2f}  texture "
            f"{np.mean([r[3] for r in sel]):5.2f} (min {min(r[3] for r in sel):.2f}, "
            f"max {max(r[3] for r in sel):.2f})  seconds {np.mean([r[4] for r in sel]):6.2f}"
        )

    import pixelsmith

    t0 = time.perf_counter()
    desk = pixelsmith.run(
        "erase", image=SAMPLES / "erase_input_desk.png", mask=SAMPLES / "erase_desk_pencil_mask.png", seed=7
    )
    print(
        f"\nnotebook erase (desk, pencil mask, grow_mask 5): {time.perf_counter() - t0:.2f} s, "
        f"erased fraction {desk.metadata['erased_fraction']}"
    )
    desk.image.save(out_dir / "erase_desk.png")
    print(f"wrote {out_dir / 'erase_sheet.png'} and {out_dir / 'erase_desk.png'}")


if __name__ == "__main__":
    main()
