"""Which diffusers recolor looks better: colour transform + light inpaint, or a structure ControlNet img2img?

Issue 4 asks to measure the two structure-preserving options for search-and-recolor
on real weights. On the same grounded mask (OWLv2 + SAM, grown by 5 px):

  transform   the CIELAB transform alone (no diffusion)
  recipe      what the diffusers recipe ships: transform, then masked SD3.5 inpaint at 0.35
  controlnet  SD3.5 Large + canny ControlNet, img2img from the input at 0.6 with the prompt,
              composited inside the mask (the SD3 ControlNet pipeline has no mask input)

and prints, per case: hue accuracy inside the object (share of pixels within 20 degrees
of the target hue), lightness correlation with the input (shading and folds kept = 1),
the largest change outside the mask (must be 0) and seconds. A contact sheet goes to
bench/results/recolor_diffusers_sheet.png. Needs the models
(`pixelsmith models pull search-and-recolor sketch`) and, realistically, a GPU.

    .venv/bin/python bench/quality/recolor_diffusers.py
    .venv/bin/python bench/quality/recolor_diffusers.py --smoke   # tiny random models on CPU: checks the script
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.quality.recolor import hue_fraction, lightness_correlation  # noqa: E402

CASES = [  # (image, select_prompt, prompt) — the AWS notebook's example first
    ("search_and_recolor_input.png", "jacket", "pink jacket"),
    ("search_and_replace_input.png", "sweater", "green sweater"),
]


def variants(image: Image.Image, select: str, prompt: str, seed: int) -> tuple[np.ndarray, dict]:
    from pixelsmith.core import Context
    from pixelsmith.engines.diffusers import grounding, preprocess
    from pixelsmith.engines.diffusers import pipelines as P
    from pixelsmith.engines.diffusers.recipes import _common as K
    from pixelsmith.engines.diffusers.recipes.search_and_recolor import recolour, target_colour
    from pixelsmith.imaging.composite import composite
    from pixelsmith.imaging.masks import grow_mask

    ctx = Context(engine="diffusers", seed=seed)
    mask = grow_mask(grounding.find(image, select).mask, 5)
    rgb = target_colour(prompt)
    out, secs = {}, {}
    t = time.perf_counter()
    out["transform"] = recolour(image, mask, rgb)
    secs["transform"] = time.perf_counter() - t
    t = time.perf_counter()
    out["recipe"] = composite(image, K.inpaint(ctx, out["transform"], mask, prompt, "", strength=0.35), mask)
    secs["recipe"] = time.perf_counter() - t
    t = time.perf_counter()
    pipe = P.build("control", K.BASE, "sd3.5-large-controlnet-canny")
    size = P.working_size(pipe, *image.size)
    steps = P.steps_for(K.BASE)
    start = P.img2img_start(pipe, image, 0.6, steps, seed, size)
    edges = preprocess.canny(image.resize(size))
    full = K.run(
        pipe,
        seed,
        control_image=edges,
        controlnet_conditioning_scale=0.8,
        height=size[1],
        width=size[0],
        **start,
        **P.prompt_kwargs(pipe, K.BASE, prompt, "", K.cfg_for(K.BASE)),
    )
    out["controlnet"] = composite(image, full.resize(image.size, Image.Resampling.LANCZOS), mask)
    secs["controlnet"] = time.perf_counter() - t
    return mask, {k: (v, secs[k], rgb) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--size", type=int, default=1024, help="long side the photos are resized to")
    args = ap.parse_args()
    if args.smoke:
        import torch

        from pixelsmith.engines.diffusers import tiny
        from pixelsmith.engines.diffusers.pull import pull

        root = pathlib.Path(tempfile.mkdtemp(prefix="pixelsmith-recolor-smoke-"))
        os.environ.update(
            PIXELSMITH_MODELS=str(root / "models"), PIXELSMITH_DIFFUSION_STEPS="2", PIXELSMITH_DEVICE="cpu"
        )
        torch.set_num_threads(1)
        names = ["sd3.5-large", "sd3.5-large-controlnet-canny", "owlv2-base", "sam-vit-base"]
        tiny.build_all(root / "tiny", names)
        pull(names, source=root / "tiny", log=lambda line: None)
        args.size = 96
    sheet = []
    print("| case | variant | hue within 20° | lightness corr. | max change outside | s |")
    print("|---|---|---|---|---|---|")
    for file, select, prompt in CASES:
        image = Image.open(ROOT / "samples" / file).convert("RGB")
        k = args.size / max(image.size)
        image = image.resize((round(image.width * k), round(image.height * k)), Image.Resampling.LANCZOS)
        mask, outs = variants(image, select, prompt, seed=7)
        where, outside = mask >= 0.5, mask == 0
        row = [image]
        for name, (result, secs, rgb) in outs.items():
            change = np.abs(np.asarray(result, int) - np.asarray(image, int)).max(axis=-1)
            print(
                f"| {file} {select}->{prompt} | {name} | {hue_fraction(result, where, rgb):.3f} | "
                f"{lightness_correlation(image, result, where):.3f} | {int(change[outside].max(initial=0))} | "
                f"{secs:.1f} |"
            )
            row.append(result)
        sheet.append(row)
    w, h = max(r[0].width for r in sheet), max(r[0].height for r in sheet)
    canvas = Image.new("RGB", (w * len(sheet[0]), h * len(sheet)), "white")
    for j, row in enumerate(sheet):
        for i, img in enumerate(row):
            canvas.paste(img, (i * w, j * h))
    out = ROOT / "bench" / "results" / ("recolor_diffusers_smoke.png" if args.smoke else "recolor_diffusers_sheet.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"contact sheet: {out} (columns: input, " + ", ".join(outs) + ")")


if __name__ == "__main__":
    main()
