"""One tile on one net vs the image split for 2 tile workers, over small input sizes (issue 13, row 1).

    .venv/bin/python bench/tile_split.py [--model realesr-general-x4v3] [--sizes 64,128,192,256,384]
                                         [--rounds 5] [--clock cpu|wall|both]

For each size, two sessions of the same model with 2 workers (one net per worker, ``threads() // 2`` threads
each): ``1 tile`` never splits an image that fits one tile, ``2 tiles`` splits it in two along the longer side
(what every image got before ``split_below``). Both sessions keep their nets between calls, and
``bench/interleave.compare`` runs them ABAB... after one untimed warm call each. ``cpu`` is this process's CPU
seconds (both worker threads); ``wall`` is what a user waits and only means something when a core is free.
The input is the middle of ``samples/upscale_input.jpg`` (a photo) reduced to each size.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from PIL import Image  # noqa: E402

from bench.interleave import compare  # noqa: E402
from pixelsmith.engines.embedded.realesrgan import RealEsrganSession  # noqa: E402


def session(model: str, tile: int, split_below: float) -> RealEsrganSession:
    os.environ["PIXELSMITH_TILE_WORKERS"] = "2"  # read when the session loads its first net
    attrs = {"model": model, "tile": tile, "split_below": split_below}
    return type("Session", (RealEsrganSession,), attrs)()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="realesr-general-x4v3")
    ap.add_argument("--tile", type=int, default=384)
    ap.add_argument("--sizes", default="64,128,192,256,384")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", default="both", choices=["cpu", "wall", "both"])
    args = ap.parse_args()
    src = Image.open(os.path.join(ROOT, "samples", "upscale_input.jpg")).convert("RGB")
    side = min(src.size) // 2
    left, top = (src.width - side) // 2, (src.height - side) // 2
    middle = src.crop((left, top, left + side, top + side))
    one, two = session(args.model, args.tile, float("inf")), session(args.model, args.tile, 0)
    clocks = ["cpu", "wall"] if args.clock == "both" else [args.clock]
    for size in (int(s) for s in args.sizes.split(",")):
        img = middle.resize((size, size), Image.Resampling.LANCZOS)
        tiles = (len(one.boxes(size, size)), len(two.boxes(size, size)))
        for clock in clocks:
            compare(
                {f"1 tile ({tiles[0]})": lambda: one.upscale(img), f"2 tiles ({tiles[1]})": lambda: two.upscale(img)},
                rounds=args.rounds,
                clock=clock,
                label=f"{args.model} {size}x{size}",
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
