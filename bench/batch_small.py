"""A batch of small fast-upscales (issue 13, batch row): ``pixelsmith batch`` with 1 and 2 workers against a
plain Python loop, each a fresh process, so start-up counts. Prints its figures; never run by the tests.

    .venv/bin/python bench/batch_small.py                      # 24 items, 5 interleaved rounds
    .venv/bin/python bench/batch_small.py --rounds 7 --variants w1,w2,loop,w1t1,w2t1
    .venv/bin/python bench/batch_small.py --before /work/main     # adds w1@before, w2@before: that checkout's
    .venv/bin/python bench/batch_small.py --profile               # one worker's per-item path, phase by phase
    .venv/bin/python bench/batch_small.py --tiles --rounds 3      # per-item CPU with 1 and 2 model threads

Inputs: 24 crops of 64..135 px a side from the notebook samples (``../shared/samples/notebook``, else the repo's
``samples/``), fast-upscale with its defaults (``model: auto``, PNG). Variants (``--variants``):

* ``w1``: ``pixelsmith batch M --fresh --no-progress --workers 1`` (the batch process works itself);
* ``w2``: the same with ``--workers 2`` (two worker processes forked from the fork server, the cores shared out:
  one thread each);
* ``w1t1`` / ``w2t1``: with ``--threads 1`` (each worker one model thread: the per-added-core figure);
* ``loop``: a plain loop in a fresh interpreter: ``pixelsmith.run("fast-upscale", image=bytes)`` per item,
  ``atomic_write`` of ``out.data`` (the same decode, encode and durable write the batch does).

For each: wall seconds (start-up included), CPU seconds of the whole process tree (``os.wait4``: the
process and every child it reaped, i.e. the workers), and the same run on 1 item, so
``(cpu(24) - cpu(1)) / 23`` is the marginal CPU cost of an item and ``cpu(1)`` the start-up (interpreter,
imports, manifest, store, model load, one item). Variants are interleaved (``bench/interleave.py``: ABAB...,
each run once before the timed rounds). On a shared machine read the CPU figures: wall time there measures
the other jobs too (a second worker only helps when a second core is free).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.interleave import compare, installed_env, load_average  # noqa: E402

SAMPLE_DIRS = [ROOT.parent / "shared" / "samples" / "notebook", ROOT.parents[1] / "shared" / "samples" / "notebook"]
NAMES = (
    "erase_input_desk.png",
    "inpainting_input_image.png",
    "outpaint_input.jpg",
    "remove_background_input.png",
    "search_and_recolor_input.png",
    "search_and_replace_input.png",
    "structure_reference.jpg",
    "sketch_reference.png",
)
VARIANTS = {
    "w1": ["--workers", "1"],
    "w2": ["--workers", "2"],
    "w1t1": ["--workers", "1", "--threads", "1"],
    "w2t1": ["--workers", "2", "--threads", "1"],
}

LOOP = """
import pathlib, sys
import pixelsmith
from pixelsmith.fsutil import atomic_write
out = pathlib.Path(sys.argv[2])
for p in sorted(pathlib.Path(sys.argv[1]).glob("*.png")):
    o = pixelsmith.run("fast-upscale", image=p.read_bytes())
    atomic_write(out / f"{p.stem}-fast-upscale.png", o.data)
"""


def sample_dir() -> pathlib.Path:
    for d in SAMPLE_DIRS:
        if d.is_dir():
            return d
    return ROOT / "samples"


def make_inputs(folder: pathlib.Path, count: int) -> None:
    """``count`` crops, sides 64..135 px (not all square), from the sample photos in turn."""
    from PIL import Image

    src_dir = sample_dir()
    sources = [Image.open(src_dir / n).convert("RGB") for n in NAMES if (src_dir / n).exists()]
    for i in range(count):
        im = sources[i % len(sources)]
        w, h = 64 + (i * 8) % 72, 64 + (i * 13) % 72
        x, y = (i * 97) % (im.width - w), (i * 61) % (im.height - h)
        im.crop((x, y, x + w, y + h)).save(folder / f"img{i:02d}.png")


def become_subreaper() -> None:
    """Orphans of a benchmarked process (a fork server and the workers it forked outlive the batch by a few
    ms) are re-parented to this process instead of init, so :func:`run_tree` reaps them and counts their CPU."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER


def run_tree(cmd: list[str], env: dict[str, str], cwd: pathlib.Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` and all its descendants: wait4 gives a process's own CPU plus that of
    the children it reaped; its orphans come to this process (a subreaper) and are reaped here."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = proc.stderr.read().decode() if proc.stderr else ""  # EOF when the last process holding it exits
    cpu, status = 0.0, 0
    while True:
        try:
            pid, st, usage = os.wait4(-1, 0)
        except ChildProcessError:
            break
        cpu += usage.ru_utime + usage.ru_stime
        if pid == proc.pid:
            status, wall = st, time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{err}")
    return wall, cpu


def summary(name: str, values: list[float], base: list[float] | None, unit: str = "s") -> str:
    med = statistics.median(values)
    ratio = f"  ratio of medians {med / statistics.median(base):5.2f}x" if base else ""
    return f"  {name:34s} min {min(values):7.3f} {unit}  median {med:7.3f} {unit}{ratio}"


def profile_worker(folder: pathlib.Path, rounds: int = 2) -> None:
    """One worker's per-item path, phase by phase: the batch's own ``work_loop`` in this process with one
    model thread (as each of ``--workers 2`` has), its store and execute calls wrapped in timers. Wall and
    CPU (``time.thread_time``: this thread, where the model runs with one thread) in ms per item."""
    import hashlib
    import threading

    os.environ["PIXELSMITH_THREADS"] = "1"
    from pixelsmith import core
    from pixelsmith.jobs import execute
    from pixelsmith.jobs import worker as worker_mod
    from pixelsmith.jobs.manifest import load
    from pixelsmith.jobs.runner import prepare
    from pixelsmith.jobs.store import SQLiteJobStore
    from pixelsmith.tools.base import Tool

    spent: dict[str, list[float]] = {}

    def timed(name: str, fn):
        def wrapper(*a, **k):
            if threading.current_thread() is not threading.main_thread():
                return fn(*a, **k)  # the lease's heartbeat thread (every lease/3 s): not on the item's path
            w, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                got = spent.setdefault(name, [0.0, 0.0, 0])
                got[0] += time.perf_counter() - w
                got[1] += time.thread_time() - c
                got[2] += 1

        return wrapper

    for name in ("claim", "progress", "complete"):
        setattr(SQLiteJobStore, name, timed(f"store.{name} (SQLite tx)", getattr(SQLiteJobStore, name)))
    worker_mod._Lease.__init__ = timed("lease thread start", worker_mod._Lease.__init__)  # type: ignore[method-assign]
    worker_mod._Lease.stop = timed("lease thread stop", worker_mod._Lease.stop)  # type: ignore[method-assign]
    execute.read_bytes = timed("read input", execute.read_bytes)
    Tool.parse = timed("decode + validate (tool.parse)", Tool.parse)  # type: ignore[method-assign]
    core.encode = timed("encode PNG", core.encode)
    execute.write_atomic = timed("atomic write (incl. fsyncs)", execute.write_atomic)
    os.fsync = timed("  of which fsync (file + folder)", os.fsync)

    class _Sha:
        sha256 = staticmethod(timed("sha256", hashlib.sha256))

    execute.hashlib = _Sha  # type: ignore[assignment]
    execute.run_item = timed("run_item (all of the item's work)", execute.run_item)
    worker_mod.run_item = execute.run_item
    core.run = timed("core.run (model + encode)", core.run)

    manifest_path = folder.parent / "m-profile.yaml"
    manifest_path.write_text(f"output: {folder.parent / 'out-profile'}\nsteps: [fast-upscale]\nitems: [{folder}]\n")
    items = 0
    for r in range(rounds + 1):
        store, job = prepare(load(str(manifest_path)), fresh=True)
        if r == 0:  # warm: imports, model load
            worker_mod.work_loop(store, job_id=job)
            spent.clear()
            continue
        w, c = time.perf_counter(), time.thread_time()
        stats = worker_mod.work_loop(store, job_id=job)
        got = spent.setdefault("work_loop (everything)", [0.0, 0.0, 0])
        got[0] += time.perf_counter() - w
        got[1] += time.thread_time() - c
        got[2] += 1
        items += stats.done
    print(f"[one worker's path per item, {items} items, one model thread; {load_average()}]")
    for name, (wall, cpu, calls) in spent.items():
        print(
            f"  {name:38s} wall {wall / items * 1000:7.2f} ms  CPU {cpu / items * 1000:7.2f} ms"
            f"  calls/item {calls / items:4.1f}"
        )


TILES = """
import pathlib, sys, time
from pixelsmith import core
from pixelsmith.tools import get_tool
tool = get_tool("fast-upscale")
datas = [p.read_bytes() for p in sorted(pathlib.Path(sys.argv[1]).glob("*.png"))]
core.run(tool.name, tool.parse({"image": datas[0]}))
p0, t0 = time.process_time(), time.thread_time()
for d in datas:
    core.run(tool.name, tool.parse({"image": d}))
print((time.process_time() - p0) / len(datas), (time.thread_time() - t0) / len(datas))
"""


def tile_split(folder: pathlib.Path, rounds: int) -> None:
    """Per-item CPU of fast-upscale in one process with 1 and 2 model threads (``PIXELSMITH_THREADS``),
    interleaved: with 2, realesrgan.py cuts each image into 2 tiles run on 2 threads (the main thread does
    the rest: decode, content check, tones, encode). This is what bounds 2 workers vs 1 on 2 cores."""
    got: dict[str, list[tuple[float, float]]] = {"1": [], "2": []}
    for _ in range(rounds):
        for t in got:
            env = {**os.environ, "PYTHONPATH": str(ROOT), "PIXELSMITH_THREADS": t}
            out = subprocess.run([sys.executable, "-c", TILES, str(folder)], env=env, capture_output=True, text=True)
            total, main = map(float, out.stdout.split())
            got[t].append((total, main))
    print(f"[fast-upscale per item in one process, {rounds} interleaved rounds; {load_average()}]")
    for t, runs in got.items():
        total = statistics.median(r[0] for r in runs) * 1000
        main = statistics.median(r[1] for r in runs) * 1000
        print(
            f"  {t} model thread(s): CPU {total:6.1f} ms per item; main thread {main:6.1f} ms, "
            f"tile threads {total - main:6.1f} ms"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=24)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--variants", default="w1,w2,loop")
    ap.add_argument("--tiles", action="store_true", help="per-item CPU with 1 and 2 model threads instead")
    ap.add_argument("--profile", action="store_true", help="time the phases of one worker's per-item path instead")
    ap.add_argument("--keep", help="keep the inputs and outputs in this folder")
    ap.add_argument(
        "--before",
        help="another checkout (e.g. /work/main): adds its w2 (and w1) as variants w2@before / w1@before, same inputs",
    )
    args = ap.parse_args()
    become_subreaper()
    names = args.variants.split(",")
    if args.before:
        names += [f"{m}@before" for m in ("w1", "w2") if m in names]
    py = sys.executable
    tmp = pathlib.Path(args.keep or tempfile.mkdtemp(prefix="batch-small-"))
    tmp.mkdir(parents=True, exist_ok=True)
    # compiled bytecode, as an installed copy has (the warm-up round writes it: bench/interleave.installed_env)
    env = installed_env({**os.environ, "PYTHONPATH": str(ROOT)}, str(tmp / "pyc"))
    for n in (args.count, 1):
        (tmp / f"in{n}").mkdir(exist_ok=True)
    make_inputs(tmp / f"in{args.count}", args.count)
    if args.profile:
        profile_worker(tmp / f"in{args.count}")
        return
    if args.tiles:
        tile_split(tmp / f"in{args.count}", args.rounds)
        return
    shutil.copy(tmp / f"in{args.count}" / "img00.png", tmp / "in1" / "img00.png")
    cpu: dict[str, list[float]] = {}

    def variant(name: str, n: int):
        key = f"{name} x{n}"
        cpu[key] = []
        out = tmp / f"out-{name}-{n}"
        if name == "loop":
            out.mkdir(exist_ok=True)
            cmd = [py, "-c", LOOP, str(tmp / f"in{n}"), str(out)]
        else:
            manifest = tmp / f"m-{name}-{n}.yaml"
            manifest.write_text(f"output: {out}\nsteps: [fast-upscale]\nitems: [{tmp / f'in{n}'}]\n")
            flags = VARIANTS[name.split("@")[0]]
            cmd = [py, "-m", "pixelsmith", "batch", str(manifest), "--fresh", "--no-progress", *flags]
        tree_env = {**env, "PYTHONPATH": args.before} if name.endswith("@before") else env

        def go() -> None:
            _, c = run_tree(cmd, tree_env, tmp)
            cpu[key].append(c)

        return key, go

    print(f"machine: {os.cpu_count()} CPUs; {load_average()}; inputs {tmp / f'in{args.count}'} (64..135 px)")
    fns = dict(variant(name, n) for n in (args.count, 1) for name in names)
    walls = compare(fns, rounds=args.rounds, clock="wall", label=f"{args.count} and 1 item(s), wall incl. start-up")
    for key in cpu:
        cpu[key] = cpu[key][1:]  # compare's untimed warm-up run
    n = args.count
    print(f"[CPU seconds of the process tree (os.wait4), same runs; {load_average()} after]")
    base = cpu[f"{names[0]} x{n}"]
    for key, values in cpu.items():
        print(summary(key, values, base if key.endswith(f"x{n}") else cpu[f"{names[0]} x1"]))
    print("[per item: marginal CPU (cpu(N) - cpu(1)) / (N - 1) per round, and total CPU / N incl. start-up]")
    marginal = {m: [(a - b) / (n - 1) for a, b in zip(cpu[f"{m} x{n}"], cpu[f"{m} x1"])] for m in names}
    ref = marginal.get("loop")
    for m in names:
        print(
            summary(
                f"{m} marginal per item",
                [v * 1000 for v in marginal[m]],
                [v * 1000 for v in ref] if ref else None,
                "ms",
            )
        )
    for m in names:
        per = [v / n * 1000 for v in cpu[f"{m} x{n}"]]
        loop = [v / n * 1000 for v in cpu[f"loop x{n}"]] if "loop" in names else None
        print(summary(f"{m} total per item incl. start-up", per, loop, "ms"))
    if "w1" in names and "w2" in names:
        w1, w2 = statistics.median(walls[f"w1 x{n}"]), statistics.median(walls[f"w2 x{n}"])
        print(f"wall speed-up 2 workers vs 1 (ratio of medians, start-up included): {w1 / w2:.2f}x")
    if "w1t1" in names and "w2t1" in names:
        w1, w2 = statistics.median(walls[f"w1t1 x{n}"]), statistics.median(walls[f"w2t1 x{n}"])
        print(f"wall speed-up 2 workers vs 1, one thread each (ratio of medians): {w1 / w2:.2f}x")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
