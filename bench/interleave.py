"""Comparisons that can be trusted on a shared machine: variants interleaved (ABAB...), min and median per
variant, the ratio of medians, the load average, and which figures are wall and which CPU time.

    from bench.interleave import compare
    compare({"a": fa, "b": fb}, rounds=5, clock="cpu")

``clock`` is "cpu" (``time.process_time``: this process's CPU seconds, worker threads included; what to
compare when other jobs share the cores) or "wall" (``time.perf_counter``; what a user waits, meaningful
only on a quiet machine). Each variant runs once before the timed rounds (model load, first allocations).
Absolute figures do not carry across machines; ratios of medians measured this way do, roughly.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def installed_env(env: dict[str, str], cache_dir: str) -> dict[str, str]:
    """``env`` for a child Python that starts as an installed pixelsmith does: with compiled bytecode.

    pip compiles every module of a package it installs, so a user's ``pixelsmith`` never compiles its own
    source at start. These machines set ``PYTHONDONTWRITEBYTECODE=1``, so a child run from the source tree
    compiled ~45 of pixelsmith's modules on every start (~20-30 ms CPU of a 64x64 fast-upscale, measured with
    cProfile: ``builtins.compile`` under the import machinery). The child gets a bytecode cache of its own
    (``PYTHONPYCACHEPREFIX``), which the untimed warm-up run of each variant fills."""
    out = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out["PYTHONPYCACHEPREFIX"] = cache_dir
    return out


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def compare(
    variants: dict[str, Callable[[], object]],
    rounds: int = 5,
    clock: str = "cpu",
    warm: bool = True,
    baseline: str | None = None,
    label: str = "",
) -> dict[str, list[float]]:
    """Run the variants ABAB... ``rounds`` times, print min/median per variant and each one's ratio of
    medians to ``baseline`` (default: the first); return the raw times."""
    tick = CLOCKS[clock]
    if warm:
        for fn in variants.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    before = load_average()
    for _ in range(rounds):
        for name, fn in variants.items():
            t = tick()
            fn()
            times[name].append(tick() - t)
    base = baseline or next(iter(variants))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"{label} [{clock} seconds, {rounds} interleaved rounds; {before} before, {load_average()} after]")
    for name, v in times.items():
        ratio = med[name] / med[base] if med[base] else float("nan")
        print(f"  {name:32s} min {min(v):8.3f}  median {med[name]:8.3f}  ratio of medians {ratio:5.2f}x vs {base}")
    return times
