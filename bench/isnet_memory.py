"""ISNet (remove-background's model) peak RSS and CPU time per loading choice, each in a fresh process.

    .venv/bin/python bench/isnet_memory.py [--rounds 3]

Variants: the unpruned graph with onnxruntime's CPU arena and memory pattern (what the session did before),
both off (what the session does now), and pruned with both off; ALL has three more.
Each child loads the session and
mattes a 1024² photo twice; the parent reads the child's peak RSS (``ru_maxrss``) and CPU seconds from
``wait4``. Variants run interleaved (ABCD ABCD ...); min and median per variant, ratio of medians.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import load_average  # noqa: E402

CHILD = """
import sys
from PIL import Image
from skimage import data
from pixelsmith.engines.embedded.isnet import IsnetSession, build_session
from pixelsmith.models import model_path
prune, arena, pattern = (a == "1" for a in sys.argv[1:4])
s = IsnetSession.__new__(IsnetSession)
path = model_path("isnet-general", "isnet-general.onnx")
s.session = build_session(path, prune=prune, arena=arena, mem_pattern=pattern)
image = Image.fromarray(data.astronaut()).resize((1024, 1024))
for _ in range(2):
    s.matte(image)
"""

VARIANTS = {  # prune, arena, memory pattern
    "unpruned, arena+pattern on (before)": ("0", "1", "1"),
    "unpruned, arena+pattern off (now)": ("0", "0", "0"),
    "pruned, arena+pattern off": ("1", "0", "0"),
}
ALL = {
    **VARIANTS,
    "pruned, arena+pattern on": ("1", "1", "1"),
    "unpruned, arena off, pattern on": ("0", "0", "1"),
    "pruned, arena off, pattern on": ("1", "0", "1"),
}


def run(prune: str, arena: str, pattern: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, prune, arena, pattern], env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"child failed: {status}")
    return usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    rss: dict[str, list[float]] = {k: [] for k in VARIANTS}
    cpu: dict[str, list[float]] = {k: [] for k in VARIANTS}
    before = load_average()
    for _ in range(args.rounds):
        for name, flags in VARIANTS.items():
            r, c = run(*flags)
            rss[name].append(r)
            cpu[name].append(c)
    print(f"[{args.rounds} interleaved rounds, fresh process each; {before} before, {load_average()} after]")
    base = next(iter(VARIANTS))
    for name in VARIANTS:
        mr, mc = statistics.median(rss[name]), statistics.median(cpu[name])
        print(
            f"  {name:30s} peak RSS min {min(rss[name]):6.0f} median {mr:6.0f} MB "
            f"({mr / statistics.median(rss[base]):.2f}x)"
            f"   CPU min {min(cpu[name]):6.1f} median {mc:6.1f} s ({mc / statistics.median(cpu[base]):.2f}x)"
        )


if __name__ == "__main__":
    main()
