"""What `pixelsmith tools` and `pixelsmith --help` cost to start, in two source trees, interleaved.

    .venv/bin/python bench/import_time.py --before /tmp/pixelsmith-before --after . --rounds 5

Each round runs ``python -X importtime -m pixelsmith <command>`` in each tree (``-m`` puts the tree first on
the import path), ABAB..., and records the child's CPU seconds (user + sys, from getrusage: meaningful when
other jobs share the cores), its wall seconds, and the model runtimes it imported (from -X importtime).
Prints min and median per variant, the ratio of medians and the load average.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.interleave import installed_env  # noqa: E402

PYC = tempfile.mkdtemp(prefix="pixelsmith-pyc-")  # bytecode, as an installed copy has (written by the warm-up)

HEAVY = ("cv2", "torch", "onnxruntime", "diffusers", "transformers", "ncnn", "mediapipe", "h5py", "fastapi", "ray")


def once(tree: str, command: list[str]) -> tuple[float, float, set[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pixelsmith", *command],
        cwd=tree,
        capture_output=True,
        text=True,
        env=installed_env({**os.environ, "COLUMNS": "200"}, PYC),
    )
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time")}
    return cpu, wall, {m for m in imported if m in HEAVY}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True, help="source tree of the old version")
    ap.add_argument("--after", default=".", help="source tree of the new version")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    for command in (["tools"], ["--help"]):
        runs: dict[str, list[tuple[float, float, set[str]]]] = {"before": [], "after": []}
        load = os.getloadavg()[0]
        for _name, tree in (("before", args.before), ("after", args.after)):
            once(tree, command)  # warm the file cache
        for _ in range(args.rounds):
            for name, tree in (("before", args.before), ("after", args.after)):
                runs[name].append(once(tree, command))
        print(
            f"pixelsmith {' '.join(command)}: {args.rounds} interleaved rounds, load average {load:.1f} -> "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        med = {}
        for name, rs in runs.items():
            cpu = [r[0] for r in rs]
            wall = [r[1] for r in rs]
            med[name] = statistics.median(cpu)
            print(
                f"  {name:6s} CPU s min {min(cpu):.3f} median {med[name]:.3f} | wall s min {min(wall):.3f} "
                f"median {statistics.median(wall):.3f} | runtimes imported: {', '.join(sorted(rs[0][2])) or 'none'}"
            )
        print(f"  ratio of CPU medians after/before: {med['after'] / med['before']:.2f}")


if __name__ == "__main__":
    main()
