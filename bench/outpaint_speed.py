"""Outpaint speed and memory on the notebook's case: outpaint_input.jpg (1280x1920), left/right 512, up 200,
down 100 (2304x2220 out), seed 7, the tool's default creativity (0.5), through ``pixelsmith.run`` as a user
calls it (decode, completion, PNG encode).

Every run is a fresh child process, so its peak RSS (``os.wait4`` ru_maxrss) is that run's alone; CPU seconds
are the child's user + system time (OpenCV's threads included). Variants are source trees (``NAME=PATH``,
e.g. a ``git worktree`` of the commit before a change) and/or ``complete()`` keyword settings
(``NAME=PATH:max_pixels=60000``), run interleaved ABAB... ``--runs`` times; min and median per variant, the
ratio of medians to the first, and the load average before and after are printed.

    .venv/bin/python bench/outpaint_speed.py [--runs 3] [--variant before=/tmp/main] [--variant after=.]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import load_average  # noqa: E402

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
import pixelsmith
from pixelsmith.engines.embedded import patchmatch
settings = {settings!r}
if settings:
    plain = patchmatch.complete
    patchmatch.complete = lambda *a, **kw: plain(*a, **{{**kw, **settings}})
out = pixelsmith.run("outpaint", image={image!r}, left=512, right=512, up=200, down=100, seed=7)
print(json.dumps({{"size": out.image.size, "bytes": len(out.data)}}))
"""


def _spawn(root: str, settings: dict[str, int | float]) -> dict[str, float]:
    """One child, reaped with os.wait4 so its own rusage (CPU seconds, peak RSS) comes back."""
    code = CHILD.format(root=root, settings=settings, image=str(ROOT / "samples" / "outpaint_input.jpg"))
    env = {**os.environ, "PYTHONPATH": root}
    with open(os.devnull, "wb") as null:
        r, w = os.pipe()
        actions = [(os.POSIX_SPAWN_DUP2, w, 1), (os.POSIX_SPAWN_DUP2, null.fileno(), 2), (os.POSIX_SPAWN_CLOSE, r)]
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], env, file_actions=actions)
        os.close(w)
        with os.fdopen(r, "rb") as pipe:
            text = pipe.read().decode()
        _, status, usage = os.wait4(pid, 0)
    if status != 0:
        raise RuntimeError(f"child failed (status {status}); run it by hand to see why")
    fig = json.loads(text.strip().splitlines()[-1])
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024, "size": fig["size"]}


def parse_variant(text: str) -> tuple[str, str, dict[str, int | float]]:
    name, _, rest = text.partition("=")
    path, _, opts = rest.partition(":")
    settings: dict[str, int | float] = {}
    for item in filter(None, opts.split(",")):
        key, _, value = item.partition("=")
        settings[key] = float(value) if "." in value else int(value)
    return name, str(pathlib.Path(path or ROOT).resolve()), settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--variant", action="append", default=[], help="NAME=PATH[:key=value,...] (default: this tree)")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in (args.variant or [f"this tree={ROOT}"])]
    figures: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    before = load_average()
    for i in range(args.runs):
        for name, root, settings in variants:
            fig = _spawn(root, settings)
            figures[name].append(fig)
            print(
                f"run {i + 1} {name:24s} {fig['cpu_s']:6.2f} CPU-s  peak RSS {fig['peak_rss_mb']:6.0f} MB", flush=True
            )
    print(
        f"\nnotebook outpaint -> {variants and figures[variants[0][0]][0]['size']} [fresh process per run, "
        f"{args.runs} interleaved rounds; {before} before, {load_average()} after]"
    )
    base = statistics.median(f["cpu_s"] for f in figures[variants[0][0]])
    for name, root, settings in variants:
        cpu = [f["cpu_s"] for f in figures[name]]
        rss = [f["peak_rss_mb"] for f in figures[name]]
        print(
            f"  {name:24s} CPU-s min {min(cpu):6.2f} median {statistics.median(cpu):6.2f} "
            f"({statistics.median(cpu) / base:4.2f}x)  peak RSS MB min {min(rss):5.0f}"
            f" median {statistics.median(rss):5.0f}"
            f"  [{root}{' ' + str(settings) if settings else ''}]"
        )


if __name__ == "__main__":
    main()
