"""Style-transfer quality and speed: the embedded optimisation against the plain init image and a colour
transfer baseline (Reinhard et al. 2001: per-channel mean/std matching in CIELAB).

All three are scored the same way, at one evaluation scale (long side 256), with the losses the method
optimises, each normalised by the init image's own (so the init image scores style 1, content 0):

* style: sum over conv1_1..conv4_1 of the squared Gram-matrix difference to the style image (lower = more
  of the style's textures and colours)
* content: squared conv4_2 difference to the init image (lower = composition better kept)

    .venv/bin/python bench/quality/style_transfer.py [--pairs notebook,astronaut] [--out bench/results/quality]

Prints seconds (wall and CPU; the machine is shared, so wall is noisy) and writes style_transfer_sheet.png
(rows: pairs; columns: init, style, colour transfer, embedded result).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

import cv2
import numpy as np
from PIL import Image
from skimage import data

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pixelsmith  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.engines.embedded.style import StyleLoss, fit, to_tensor  # noqa: E402

SAMPLES = ROOT / "samples"
EVAL_SIDE = 256


def pairs() -> dict[str, tuple[Image.Image, Image.Image]]:
    style = Image.open(SAMPLES / "style_transfer_style_image.jpg").convert("RGB")
    return {
        "notebook": (Image.open(SAMPLES / "style_transfer_input.jpg").convert("RGB"), style),
        "astronaut": (Image.fromarray(data.astronaut()), Image.fromarray(data.coffee())),
        "chelsea": (Image.fromarray(data.chelsea()), style),
    }


def reinhard(init: Image.Image, style: Image.Image) -> Image.Image:
    """Colour transfer: match each LAB channel's mean and standard deviation to the style image's."""
    src = cv2.cvtColor(np.asarray(init), cv2.COLOR_RGB2LAB).astype(np.float32)
    ref = cv2.cvtColor(np.asarray(style), cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src.reshape(-1, 3).mean(0), src.reshape(-1, 3).std(0) + 1e-6
    r_mean, r_std = ref.reshape(-1, 3).mean(0), ref.reshape(-1, 3).std(0)
    out = (src - s_mean) / s_std * r_std + r_mean
    return Image.fromarray(cv2.cvtColor(np.clip(out, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB))


def scorer(hed, init: Image.Image, style: Image.Image):
    size = fit(init.size, EVAL_SIDE)
    k = (size[0] * size[1] / (style.width * style.height)) ** 0.5
    style_small = style.resize((round(style.width * k), round(style.height * k)), Image.Resampling.LANCZOS)
    loss = StyleLoss(hed, to_tensor(init.resize(size, Image.Resampling.LANCZOS)), to_tensor(style_small), 1.0, 1.0)
    return lambda img: loss.measure(to_tensor(img.convert("RGB").resize(size, Image.Resampling.LANCZOS)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", default="notebook,astronaut")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "quality"))
    args = ap.parse_args()
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    hed = new_session("hed")
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f} (shared machine: wall times are noisy)")
    rows = []
    for name in args.pairs.split(","):
        init, style = pairs()[name]
        c0, t0 = os.times(), time.perf_counter()
        out = pixelsmith.run("style-transfer", init_image=init, style_image=style, seed=1)
        wall, c1 = time.perf_counter() - t0, os.times()
        cpu = (c1.user - c0.user) + (c1.system - c0.system)
        baseline = reinhard(init, style)
        score = scorer(hed, init, style)
        print(
            f"{name}: {init.size} -> {out.image.size}, {wall:.1f} s wall, {cpu:.1f} cpu-s, "
            f"stages {out.metadata['stage_seconds']}"
        )
        for label, img in (("init image", init), ("colour transfer", baseline), ("embedded", out.image)):
            s = score(img)
            print(f"  {label:16} style {s['style']:.3f}  content {s['content']:.3f}")
        rows.append([init, style, baseline, out.image])
        out.save(str(out_dir / f"style_transfer_{name}.png"))
    cell = 256
    sheet = Image.new("RGB", (cell * 4, cell * len(rows)), "white")
    for r, imgs in enumerate(rows):
        for c, img in enumerate(imgs):
            thumb = img.convert("RGB").copy()
            thumb.thumbnail((cell, cell))
            sheet.paste(thumb, (c * cell, r * cell))
    sheet.save(out_dir / "style_transfer_sheet.png")
    print(f"sheet (init, style, colour transfer, embedded): {out_dir / 'style_transfer_sheet.png'}")


if __name__ == "__main__":
    main()
