"""Style-transfer quality and speed: the embedded recipe (Magenta's feed-forward network) against the plain
init image, a colour-transfer baseline (Reinhard et al. 2001: per-channel mean/std matching in CIELAB) and,
when its results are given (``--old DIR``), the optimisation recipe it replaced.

Measures (the tests use the first two):

* palette: Hellinger distance between the 8x8x8-bin CIELAB histograms of the image and of the style image
  (0 = the same colours in the same proportions, 1 = no colour in common). Lower = more of the style's palette.
* structure: Pearson correlation of the Sobel gradient magnitude of the luminance with the init image's, both
  at long side 512 after a sigma-1 blur (1 = every edge where the photo has one; ~0 = unrelated layout).
* foreign: the share of pixels in colours that are in neither image (CIELAB bins under 0.1 % in both).
* gram: the style loss of Gatys et al. over HED's VGG16 (conv1_1..conv4_1 Gram matrices against the style
  image's, at long side 256), divided by the init image's own (init = 1; lower = more of the style's texture).

Timing: the fast recipe and the colour transfer interleaved, ``--rounds`` rounds (min and median wall, CPU
seconds, the load average before and after: the machine is shared).

    .venv/bin/python bench/quality/style_transfer.py [--pairs notebook,astronaut] [--rounds 5] [--sweep]
        [--old DIR] [--crops docs/img/quality] [--out bench/results/quality]

``--sweep`` runs each control over its range on the notebook pair and prints the measures (the mapping's
evidence); ``--crops`` writes the before/after PNGs of docs/quality.md.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from PIL import Image
from skimage import data

ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pixelsmith  # noqa: E402

SAMPLES = ROOT / "samples"
STYLE_LAYERS = ("conv1_1", "conv2_1", "conv3_1", "conv4_1")


def pairs() -> dict[str, tuple[Image.Image, Image.Image]]:
    style = Image.open(SAMPLES / "style_transfer_style_image.jpg").convert("RGB")
    return {
        "notebook": (Image.open(SAMPLES / "style_transfer_input.jpg").convert("RGB"), style),
        "astronaut": (Image.fromarray(data.astronaut()), Image.fromarray(data.coffee())),
        "chelsea": (Image.fromarray(data.chelsea()), style),
    }


def reinhard(init: Image.Image, style: Image.Image) -> Image.Image:
    """Colour transfer: match each LAB channel's mean and standard deviation to the style image's."""
    src = cv2.cvtColor(np.asarray(init.convert("RGB")), cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(np.asarray(style.convert("RGB")), cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src.reshape(-1, 3).mean(0), src.reshape(-1, 3).std(0) + 1e-6
    r_mean, r_std = ref.reshape(-1, 3).mean(0), ref.reshape(-1, 3).std(0)
    out = (src - s_mean) / s_std * r_std + r_mean
    return Image.fromarray(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB))


def _small(img: Image.Image, side: int) -> Image.Image:
    img = img.convert("RGB")
    k = side / max(img.size)
    return img.resize((max(1, round(img.width * k)), max(1, round(img.height * k))), Image.Resampling.BILINEAR)


def lab_histogram(img: Image.Image, bins: int = 8) -> np.ndarray:
    lab = cv2.cvtColor(np.asarray(_small(img, 256)), cv2.COLOR_RGB2LAB)
    hist = cv2.calcHist([lab], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).ravel()
    return hist / hist.sum()


def palette_distance(img: Image.Image, style: Image.Image) -> float:
    """Hellinger distance of the CIELAB histograms (0 = same palette, 1 = disjoint)."""
    p, q = lab_histogram(img), lab_histogram(style)
    return float(np.sqrt(max(0.0, 1.0 - np.sqrt(p * q).sum())))


def foreign_share(img: Image.Image, init: Image.Image, style: Image.Image) -> float:
    """Share of the image's pixels whose CIELAB bin (8x8x8) holds under 0.1 % of both the init's and the
    style's pixels: colours that are in neither image."""
    rare = (lab_histogram(init) < 1e-3) & (lab_histogram(style) < 1e-3)
    return float(lab_histogram(img)[rare].sum())


def _edges(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    gray = cv2.cvtColor(np.asarray(img.convert("RGB").resize(size, Image.Resampling.BILINEAR)), cv2.COLOR_RGB2GRAY)
    gray = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.0)
    return np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1)).ravel()


def structure(img: Image.Image, init: Image.Image) -> float:
    """Correlation of the gradient magnitudes with the init image's (1 = the same edges)."""
    size = _small(init, 512).size
    return float(np.corrcoef(_edges(img, size), _edges(init, size))[0, 1])


def gram_scorer(init: Image.Image, style: Image.Image) -> Callable[[Image.Image], float]:
    """Gatys style loss over HED's VGG16 features, normalised by the init image's (init scores 1)."""
    import torch

    from pixelsmith.engines.embedded import new_session

    hed = new_session("hed")

    def tensor(img: Image.Image) -> torch.Tensor:
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()

    def grams(img: Image.Image) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            feats = hed.features(tensor(img), STYLE_LAYERS)  # type: ignore[attr-defined]
        out = {}
        for k, f in feats.items():
            _, c, h, w = f.shape
            flat = f.reshape(c, h * w)
            out[k] = flat @ flat.t() / (c * h * w)
        return out

    size = _small(init, 256).size
    k = (size[0] * size[1] / (style.width * style.height)) ** 0.5
    target = grams(style.convert("RGB").resize((round(style.width * k), round(style.height * k))))

    def loss(img: Image.Image) -> float:
        g = grams(img.convert("RGB").resize(size, Image.Resampling.LANCZOS))
        return float(sum(((g[k] - target[k]) ** 2).sum() for k in STYLE_LAYERS))

    norm = loss(init) or 1.0
    return lambda img: loss(img) / norm


def run(init: Image.Image, style: Image.Image, **fields: float) -> Any:
    return pixelsmith.run("style-transfer", init_image=init, style_image=style, seed=1, **fields)


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    c0, t0 = os.times(), time.perf_counter()
    out = fn()
    wall, c1 = time.perf_counter() - t0, os.times()
    return wall, (c1.user - c0.user) + (c1.system - c0.system), out


def sweep(init: Image.Image, style: Image.Image) -> None:
    print("controls on the notebook pair (palette: lower = closer to the style; structure: higher = kept)")
    for name, values in (
        ("style_strength", (0.0, 0.25, 0.5, 0.75, 1.0)),
        ("composition_fidelity", (0.0, 0.3, 0.6, 0.9, 1.0)),
        ("change_strength", (0.1, 0.3, 0.45, 0.7, 0.9)),
    ):
        for v in values:
            out = run(init, style, **{name: v})
            print(
                f"  {name:21} {v:4.2f}  palette {palette_distance(out.image, style):.3f}  "
                f"structure {structure(out.image, init):.3f}  network {out.metadata['network_size']}"
            )


def crops(rows: dict[str, list[tuple[str, Image.Image]]], folder: pathlib.Path) -> None:
    """1:1 and 2x crops (hand and hair; stonework) of the notebook statue by each method, as in quality.md."""
    from pixelsmith.engines.embedded.recipes.style_transfer import output_size

    folder.mkdir(parents=True, exist_ok=True)
    init = rows["notebook"][0][1]
    size = output_size(*init.size)
    for region, box in (("hair", (420, 180, 676, 436)), ("stone", (40, 840, 296, 1096))):
        for scale in (1, 2):
            w = (box[2] - box[0]) // scale
            sub = (box[0], box[1], box[0] + w, box[1] + w)
            tiles = [img.convert("RGB").resize(size, Image.Resampling.LANCZOS).crop(sub) for _, img in rows["notebook"]]
            tiles = [t.resize((256, 256), Image.Resampling.NEAREST) for t in tiles]
            sheet = Image.new("RGB", (258 * len(tiles) - 2, 256), "white")
            for i, t in enumerate(tiles):
                sheet.paste(t, (258 * i, 0))
            sheet.save(folder / f"style_{region}_{scale}x.png")
    print(f"crops ({', '.join(label for label, _ in rows['notebook'])}) in {folder}/style_*.png")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="notebook,astronaut")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--old", default="", help="folder with the optimisation recipe's style_transfer_<pair>.png")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--crops", default="")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    args = ap.parse_args()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"cores {os.cpu_count()}, threads {os.environ.get('PIXELSMITH_THREADS', 'all')}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rows: dict[str, list[tuple[str, Image.Image]]] = {}
    for name in args.pairs.split(","):
        init, style = pairs()[name]
        run(init, style)  # load the model outside the timing
        fast_t: list[tuple[float, float]] = []
        colour_t: list[float] = []
        out = None
        for _ in range(args.rounds):
            wall, cpu, out = timed(lambda: run(init, style))
            fast_t.append((wall, cpu))
            colour_t.append(timed(lambda: reinhard(init, style))[0])
        walls = [w for w, _ in fast_t]
        print(
            f"{name}: {init.size} -> {out.image.size}, network {out.metadata['network_size']}; fast recipe "
            f"{args.rounds} rounds: wall min {min(walls):.2f} s, median {statistics.median(walls):.2f} s, "
            f"cpu median {statistics.median(c for _, c in fast_t):.2f} s; colour transfer median "
            f"{statistics.median(colour_t):.2f} s; load average now {os.getloadavg()[0]:.1f}"
        )
        methods = [("init", init), ("colour transfer", reinhard(init, style)), ("fast (magenta)", out.image)]
        old = pathlib.Path(args.old) / f"style_transfer_{name}.png" if args.old else None
        if old is not None and old.is_file():
            methods.append(("optimisation (old)", Image.open(old).convert("RGB")))
        gram = gram_scorer(init, style)
        for label, img in methods:
            print(
                f"  {label:19} palette {palette_distance(img, style):.3f}  structure {structure(img, init):.3f}  "
                f"gram {gram(img):.3f}  foreign {foreign_share(img, init, style):.3f}"
            )
        rows[name] = methods
        out.save(str(out_dir / f"style_transfer_{name}.png"))
    if args.sweep:
        sweep(*pairs()["notebook"])
    if args.crops and "notebook" in rows:
        crops(rows, pathlib.Path(args.crops))
    cell = 256
    sheet = Image.new("RGB", (cell * 5, cell * len(rows)), "white")
    for r, (name, methods) in enumerate(rows.items()):
        for c, img in enumerate([methods[0][1], pairs()[name][1], *(m for _, m in methods[1:])]):
            thumb = img.convert("RGB").copy()
            thumb.thumbnail((cell, cell))
            sheet.paste(thumb, (c * cell, r * cell))
    sheet.save(out_dir / "style_transfer_sheet.png")
    print(f"sheet (init, style, colour transfer, fast, old if given): {out_dir / 'style_transfer_sheet.png'}")


if __name__ == "__main__":
    main()
