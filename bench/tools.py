"""Seconds per image for the embedded tools, and what the engine adds over the model's own work.

    PYTHONPATH=. .venv/bin/python bench/tools.py [--rounds 5] [--clock cpu|wall]
        [--tools remove-background,fast-upscale] [--sizes 512,1024]   # --sizes: only these sides

Per tool and size the variants run interleaved (``bench.interleave.compare``: ABC ABC ..., each once before
the timed rounds), so machine load hits them alike; each prints min and median, and the ratio of medians.

* ``engine``: ``pixelsmith.core.run`` on an already-decoded image, PNG encode included (what a caller waits);
* ``raw``: the model's own work, the same work the engine asks of it: remove-background's ONNX forward on
  the prepared 1024² tensor; fast-upscale's ``session.upscale`` of the model the recipe picks for the image
  (``realesr-general-x4v3`` for these photos), tiles and worker threads as the engine runs them;
* ``encode``: the PNG encode of the engine's output alone;
* the recipe's other steps, each alone (remove-background: the matte's pre/post-processing, blur-fusion
  foreground colours; fast-upscale: the content check, ``keep_input_tones``).

The summary line per size: overhead = (engine - encode) / raw - 1 and engine / raw, both from medians, and
engine seconds per output megapixel. ``--clock cpu`` (default) is this process's CPU time, all threads: the
figure to compare on a shared machine; ``--clock wall`` is what a user waits, trustworthy only when
``load average`` (printed) is below the core count.

Until issue 13 the "raw" fast-upscale call was ``realesr-animevideov3-x4`` (the illustration model: 16 body
convolutions) while the engine ran the photo model ``realesr-general-x4v3`` (32), so the "104 % overhead"
was a different network doing half the work. Measurements: docs/performance.md.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
from collections.abc import Callable

from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import compare  # noqa: E402
from pixelsmith import core  # noqa: E402
from pixelsmith.engines.embedded import new_session  # noqa: E402
from pixelsmith.imaging.encode import encode  # noqa: E402
from pixelsmith.tools import get_tool  # noqa: E402


def photo(side_w: int, side_h: int) -> Image.Image:
    src = Image.open(ROOT / "samples/remove_background_input.png").convert("RGB")
    return src.resize((side_w, side_h), Image.Resampling.LANCZOS)


Steps = dict[str, Callable[[], object]]


def remove_background_steps(img: Image.Image, out: Image.Image) -> Steps:
    import numpy as np

    from pixelsmith.engines.embedded import matting

    session = new_session("isnet-general")
    batch = session.preprocess(img)  # type: ignore[attr-defined]
    alpha = np.asarray(out.getchannel("A"), dtype=np.float32) / 255.0
    rgb = np.asarray(img)
    return {
        "raw": lambda: session.infer(batch),  # type: ignore[attr-defined]
        "matte (pre + raw + post)": lambda: session.matte(img),  # type: ignore[attr-defined]
        "foreground colours": lambda: matting.estimate_foreground(rgb, alpha),
    }


def fast_upscale_steps(img: Image.Image, out: Image.Image) -> Steps:
    from pixelsmith.engines.embedded.recipes.fast_upscale import PHOTO, choose_model, keep_input_tones

    model = choose_model(img)
    session = new_session(model)
    up = session.upscale(img)  # type: ignore[attr-defined]
    steps: Steps = {
        "raw": lambda: session.upscale(img),  # type: ignore[attr-defined]
        "content check (choose_model)": lambda: choose_model(img),
    }
    if model == PHOTO:
        steps["keep_input_tones"] = lambda: keep_input_tones(up, img)
    return steps


CASES: dict[str, tuple[Callable[[Image.Image, Image.Image], Steps], dict[str, tuple[int, int]]]] = {
    # tool: (steps factory, sizes: label -> (w, h))
    "remove-background": (
        remove_background_steps,
        {"512²": (512, 512), "1024²": (1024, 1024), "3072²": (3072, 3072)},
    ),
    "fast-upscale": (fast_upscale_steps, {"256²": (256, 256), "512²": (512, 512)}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    ap.add_argument("--tools", default=",".join(CASES))
    ap.add_argument("--sizes", default="", help="comma-separated sides to keep (default: all)")
    args = ap.parse_args()
    if args.rounds < 5:
        raise SystemExit("--rounds must be at least 5: fewer interleaved rounds do not give a usable median")
    keep = {int(s) for s in args.sizes.split(",") if s}
    summary = []
    for name in args.tools.split(","):
        factory, sizes = CASES[name]
        tool = get_tool(name)
        for label, (w, h) in sizes.items():
            if keep and w not in keep:
                continue
            img = photo(w, h)
            req = tool.parse({"image": img, "output_format": "png"})
            out = core.run(name, req)
            variants: Steps = {
                "engine (core.run + encode)": lambda: core.run(name, req),
                **factory(img, out.image),
                "encode (PNG)": lambda: encode(out.image, "png"),
            }
            times = compare(variants, rounds=args.rounds, clock=args.clock, label=f"{name} {label}")
            med = {k: statistics.median(v) for k, v in times.items()}
            engine, raw, enc = med["engine (core.run + encode)"], med["raw"], med["encode (PNG)"]
            mp = out.image.width * out.image.height / 1e6
            summary.append(
                f"{name:18s} {label:6s} engine {engine:7.3f} raw {raw:7.3f} encode {enc:6.3f}  "
                f"engine/raw {engine / raw:5.2f}x  overhead excl. encode {(engine - enc) / raw - 1:+6.1%}  "
                f"{engine / mp:6.3f} s per output MP ({mp:.2f} MP)"
            )
            print(summary[-1], flush=True)
    print(f"\nsummary ({args.clock} seconds, medians of {args.rounds} interleaved rounds):")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
