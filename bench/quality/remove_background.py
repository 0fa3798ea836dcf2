"""Remove-background quality: IoU of the ISNet alpha against hand-seeded references.

The references (tests/data/refs/*.mask.png) were made by bench/quality/make_matting_refs.py
(GrabCut seeded by hand-placed boxes, checked by eye), independently of ISNet.
Also reports how soft the matte is at the subject's edge (fraction of edge pixels with
0 < alpha < 1) and how clean the background is (mean alpha far from the subject).

Edge colours (issue 11): the hair photo composited with a known soft alpha (ISNet's own matte of it) over pure
green and over pure magenta, cut out again; over the band 0.1 < alpha < 0.9: mean |green - magenta| and the mean
lean toward each backdrop's hue beyond the photo's own, for the composite's own colours ("none", the old
recipe), blur-fusion (the recipe) and, if pymatting is importable, its estimate_foreground_ml.
Edge width: median 1/|grad alpha| where 0.3 < alpha < 0.7 within 3 px (x scale) of the reference edge (and the
same median weighted by |grad alpha|, i.e. per unit of edge length rather than per pixel of ramp), on 3072-px
versions of the photos made by fast-upscale (Real-ESRGAN x4) then Lanczos to 3072, so that the photo's own edges are
crisp (cached under $PIXELSMITH_HOME/bench): ISNet's matte enlarged bilinearly, the recipe's refined one
(matting.refine_edges), and a contrast curve (slope = the enlargement) as the baseline that narrows without
looking at the photo; IoU at 3072 against the enlarged references. Cost: the recipe without / with refine_edges,
interleaved (bench/interleave.py, CPU seconds) at 1024 and at 3072.

    .venv/bin/python bench/quality/remove_background.py [--rounds 5]
    PYTHONPATH=/tmp/pmenv ...   # a --target install of pymatting==1.1.16 numba==0.60.0 llvmlite==0.43.0
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import cv2
import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pixelsmith  # noqa: E402
from bench.interleave import compare  # noqa: E402
from pixelsmith.config import home  # noqa: E402

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


def edge_width(alpha: np.ndarray, ref: np.ndarray, per_length: bool = False) -> float:
    """Median 1/|grad alpha| over 0.3 < alpha < 0.7 near the reference edge; ``per_length``: each pixel weighted
    by |grad alpha|, so a crisp edge counts as much as a wide ramp of the same length (the plain median counts
    ramp pixels, ~3x as many per unit length on a bilinear ramp as on a crisp edge)."""
    s = alpha.shape[0] / ref.shape[0]
    r = (cv2.resize(ref, alpha.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 128).astype(np.uint8)
    k = np.ones((2 * round(3 * s) + 1,) * 2, np.uint8)
    edge = (cv2.dilate(r, k) - cv2.erode(r, k)).astype(bool)
    g = np.hypot(cv2.Sobel(alpha, cv2.CV_32F, 1, 0, ksize=1), cv2.Sobel(alpha, cv2.CV_32F, 0, 1, ksize=1)) / 2
    on = edge & (alpha > 0.3) & (alpha < 0.7) & (g > 1e-3)
    if not per_length:
        return float(np.median(1 / g[on]))
    w, gs = 1 / g[on], g[on]
    order = np.argsort(w)
    c = np.cumsum(gs[order])
    return float(w[order][np.searchsorted(c, c[-1] / 2)])


def large(name: str, side: int = 3072) -> Image.Image:
    """A ``side``-px version of a notebook photo with crisp edges: fast-upscale x4, then Lanczos (cached)."""
    path = home() / "bench" / name.replace(".png", f"_{side}.png")
    if not path.exists():
        up = pixelsmith.run("fast-upscale", image=ROOT / "samples" / name).image.convert("RGB")
        path.parent.mkdir(parents=True, exist_ok=True)
        up.resize((side, side), Image.Resampling.LANCZOS).save(path)
    return Image.open(path).convert("RGB")


def reference(name: str) -> np.ndarray:
    return np.asarray(Image.open(ROOT / "tests/data/refs" / name.replace(".png", ".mask.png")))


def iou_at(alpha: np.ndarray, ref: np.ndarray) -> float:
    truth = cv2.resize(ref, alpha.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 128
    fg = alpha >= 0.5
    return float((fg & truth).sum() / max((fg | truth).sum(), 1))


def sharpness() -> None:
    """Edge width and IoU at 3072 px: bilinear, refined, contrast curve."""
    from pixelsmith.engines.embedded import matting
    from pixelsmith.engines.embedded.isnet import IsnetSession

    sess = IsnetSession()
    print(f"\n3072 px: {'photo':30s} {'matte':14s} {'width':>6s} {'per length':>10s} {'IoU':>6s} {'s (CPU)':>7s}")
    for name in PHOTOS:
        im = large(name)
        ref = reference(name)
        rgb = np.asarray(im)
        bilinear = sess.matte(im)
        t = time.process_time()
        refined = matting.refine_edges(rgb, bilinear)
        secs = time.process_time() - t
        curve = np.clip((bilinear - 0.5) * (im.width / matting.MODEL_SIZE) + 0.5, 0.0, 1.0)
        for tag, a in (("bilinear", bilinear), ("refined", refined), ("contrast curve", curve)):
            a = np.round(a * 255) / 255  # as stored
            print(
                f"         {name:30s} {tag:14s} {edge_width(a, ref):6.2f} {edge_width(a, ref, True):10.2f} "
                f"{iou_at(a, ref):6.3f} {secs if tag == 'refined' else 0.0:7.2f}"
            )


def backdrops() -> None:
    from pixelsmith.engines.embedded import matting
    from pixelsmith.engines.embedded.isnet import IsnetSession

    sess = IsnetSession()
    src = Image.open(ROOT / "samples" / PHOTOS[0]).convert("RGB")
    fg = np.asarray(src, np.float32)
    truth = np.round(sess.matte(src) * 255) / 255
    band = (truth > 0.1) & (truth < 0.9)
    methods = {"none": lambda img, a: img, "blur-fusion": lambda img, a: matting.estimate_foreground(img, a)[0]}
    try:
        from pymatting import estimate_foreground_ml  # type: ignore[import-not-found]

        def ml(img: np.ndarray, a: np.ndarray) -> np.ndarray:
            f = estimate_foreground_ml(img / 255.0, a.astype(np.float64))
            return np.clip(f * 255 + 0.5, 0, 255).astype(np.uint8)

        ml(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32)))  # numba compiles on first call
        methods["pymatting ml"] = ml
    except ImportError:
        pass
    comps, mattes = {}, {}
    for name, colour in {"green": (0, 255, 0), "magenta": (255, 0, 255)}.items():
        a = truth[..., None]
        comps[name] = np.clip(fg * a + np.array(colour, np.float32) * (1 - a) + 0.5, 0, 255).astype(np.uint8)
        mattes[name] = np.round(sess.matte(Image.fromarray(comps[name])) * 255) / 255

    def lean(x: np.ndarray, name: str) -> np.ndarray:
        g = x[..., 1] - (x[..., 0] + x[..., 2]) / 2
        return g if name == "green" else -g

    print(f"\n{'colours':14s} {'|G-M|':>6s} {'green lean':>10s} {'magenta lean':>12s} {'s (1024 px)':>11s}")
    for meth, fn in methods.items():
        outs, secs = {}, []
        for name in comps:
            t = time.perf_counter()
            outs[name] = fn(comps[name], mattes[name].astype(np.float32)).astype(np.float32)
            secs.append(time.perf_counter() - t)
        d = np.abs(outs["green"] - outs["magenta"]).mean(-1)[band].mean()
        ex = {n: (lean(outs[n], n) - lean(fg, n))[band].mean() for n in outs}
        print(f"{meth:14s} {d:6.1f} {ex['green']:10.1f} {ex['magenta']:12.1f} {min(secs):11.3f}")


def cost(rounds: int) -> None:
    """The recipe without (old) and with (new) refine_edges, interleaved, CPU seconds."""
    from pixelsmith.engines.embedded import matting
    from pixelsmith.engines.embedded.isnet import IsnetSession

    sess = IsnetSession()

    def request(im: Image.Image, refine: bool) -> Image.Image:
        rgb = np.asarray(im.convert("RGB"))
        m = sess.matte(im)
        if refine:
            m = matting.refine_edges(rgb, m)
        alpha = np.clip(m * 255.0 + 0.5, 0, 255).astype(np.uint8)
        fg, _ = matting.estimate_foreground(rgb, alpha.astype(np.float32) / 255.0)
        return Image.fromarray(np.dstack([fg, alpha]), "RGBA")

    src = Image.open(ROOT / "samples" / PHOTOS[0]).convert("RGB")
    for side, im in ((1024, src), (3072, large(PHOTOS[0]))):
        compare(
            {"old (bilinear)": lambda: request(im, False), "new (refine_edges)": lambda: request(im, True)},
            rounds=rounds,
            clock="cpu",
            label=f"remove-background {side} px",
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"{'photo':32s} {'IoU':>6s} {'edge soft':>9s} {'bg alpha':>9s} {'bg clear':>9s} {'s':>6s}")
    for name in PHOTOS:
        s = measure(name)
        print(
            f"{name:32s} {s['iou']:6.3f} {s['edge_soft']:9.3f} {s['bg_alpha']:9.4f} {s['bg_clear']:9.3f} "
            f"{s['seconds']:6.2f}"
        )
    backdrops()
    sharpness()
    cost(args.rounds)


if __name__ == "__main__":
    main()
