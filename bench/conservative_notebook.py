"""conservative-upscale on the notebook's case (683x1024 -> 1672x2508, ~4.2 MP) through pixelsmith.run, each
run in a fresh process: CPU seconds, wall seconds and peak RSS (the child's ``ru_maxrss`` from ``wait4``).

    .venv/bin/python bench/conservative_notebook.py [--rounds 2]

Wall time follows the machine's load; CPU seconds divided by the cores used is what a quiet machine waits.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import load_average  # noqa: E402

CHILD = """
from PIL import Image
import pixelsmith
image = Image.open("samples/upscale_input.jpg")
out = pixelsmith.run("conservative-upscale", image=image, prompt="Big Ben", creativity=0.35, output_format="jpeg")
print(out.image.size, out.metadata["method"])
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    before = load_average()
    cpu, wall, rss = [], [], []
    for _ in range(args.rounds):
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise SystemExit(f"child failed: {status}")
        wall.append(time.perf_counter() - t)
        cpu.append(usage.ru_utime + usage.ru_stime)
        rss.append(usage.ru_maxrss / 1024)
    print(f"[{args.rounds} runs, fresh process each; {before} before, {load_average()} after]")
    for name, v, unit in (("CPU", cpu, "s"), ("wall", wall, "s"), ("peak RSS", rss, "MB")):
        print(f"  {name:9s} min {min(v):8.1f}  median {statistics.median(v):8.1f} {unit}")


if __name__ == "__main__":
    main()
