"""Seconds per image for the embedded tools at 512², 1024² and the service's max size,
and the engine's overhead over the raw model call.

    .venv/bin/python bench/tools.py [--repeat 3] [--tools remove-background,fast-upscale]

"Raw" is the model alone (ONNX/ncnn forward on a prepared tensor); "engine" is
``pixelsmith.core.run`` on an already-decoded image minus PNG encoding (reported
separately); overhead = engine / raw - 1. Run on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from PIL import Image

from pixelsmith import core
from pixelsmith.engines.embedded import new_session
from pixelsmith.imaging.encode import encode
from pixelsmith.tools import get_tool


def photo(side_w: int, side_h: int) -> Image.Image:
    src = Image.open("samples/remove_background_input.png").convert("RGB")
    return src.resize((side_w, side_h), Image.Resampling.LANCZOS)


def timed(fn, repeat: int) -> float:
    fn()  # warm-up: model load, first-call allocations
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def raw_remove_background(img: Image.Image):
    session = new_session("isnet-general")
    batch = session.preprocess(img)
    return lambda: session.infer(batch)


def raw_fast_upscale(img: Image.Image):
    session = new_session("realesr-animevideov3-x4")
    return lambda: session.upscale(img)


CASES = {
    # tool: (raw model call factory, sizes: label -> (w, h))
    "remove-background": (
        raw_remove_background,
        {"512²": (512, 512), "1024²": (1024, 1024), "max 3072²": (3072, 3072)},
    ),
    "fast-upscale": (raw_fast_upscale, {"256²": (256, 256), "512²": (512, 512), "max 1024²": (1024, 1024)}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tools", default=",".join(CASES))
    args = ap.parse_args()
    print(
        f"{'tool':20s} {'size':10s} {'engine s':>9s} {'raw s':>8s} {'overhead':>9s} {'encode s':>9s} {'s/out MP':>9s}"
    )
    for name in args.tools.split(","):
        raw_factory, sizes = CASES[name]
        tool = get_tool(name)
        for label, (w, h) in sizes.items():
            img = photo(w, h)
            req = tool.parse({"image": img, "output_format": "png"})
            out = core.run(name, req)
            engine = timed(lambda: core.run(name, req), args.repeat)
            enc = timed(lambda: encode(out.image, "png"), args.repeat)
            raw = timed(raw_factory(img), args.repeat)
            mp = out.image.width * out.image.height / 1e6
            print(
                f"{name:20s} {label:10s} {engine:9.3f} {raw:8.3f} {(engine - enc) / raw - 1:9.1%} {enc:9.3f} "
                f"{engine / mp:9.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
