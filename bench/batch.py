"""Batch and job-store benchmarks (issue 6 §4). Prints its figures; never run by the tests.

    .venv/bin/python bench/batch.py                 # everything, 200 images
    .venv/bin/python bench/batch.py --count 24 --skip-ray
    .venv/bin/python bench/batch.py --only store

* items/s for a remove-background batch of N small images (crops of the samples) with 1 and
  2 local worker processes, and on a 2-node local Ray cluster (head + 1 worker node, 1 CPU
  each); scaling efficiency = (rate with 2 / rate with 1) / 2.
* job-store overhead per item: create + claim + heartbeat + complete, SQLite WAL, one process.
* recovery after a worker kill: kill -9 a worker holding an item; seconds until that item is
  running again elsewhere (the supervisor reclaims a dead worker's lease at once), and with
  no supervisor (lease expiry alone).

Rates count from the first item started to the last finished (the store's timestamps), so
process start-up and model loading are excluded; wall time including them is printed too.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_images(folder: pathlib.Path, count: int, size: int = 128) -> None:
    from PIL import Image

    sources = [
        Image.open(ROOT / "samples" / n).convert("RGB")
        for n in ("remove_background_input.png", "inpainting_input_image.png", "search_and_recolor_input.png")
    ]
    for i in range(count):
        src = sources[i % len(sources)]
        k = 400 + (i * 37) % 500
        x, y = (i * 53) % (src.width - k), (i * 29) % (src.height - k)
        src.crop((x, y, x + k, y + k)).resize((size, size)).save(folder / f"img{i:04d}.png")


def manifest(folder: pathlib.Path, out: str, tool: str = "remove-background") -> pathlib.Path:
    path = folder / f"{out}.yaml"
    path.write_text(f"output: {out}\nsteps: [{tool}]\nitems: [{folder / 'in'}]\n")
    return path


def rate_of(store_path: str, job_id: str) -> tuple[float, int, float]:
    from pixelsmith.jobs.store import SQLiteJobStore

    s = SQLiteJobStore(store_path)
    st = s.job(job_id)
    items = s.items(job_id, state="done")
    span = max(i.finished for i in items) - min(i.started for i in items)
    return st.counts["done"] / span, st.counts["done"], statistics.median(i.seconds for i in items)


def bench_local(folder: pathlib.Path, workers: int, threads: int | None = None) -> float:
    """``threads=1``: each worker process gets one core, so 1 -> 2 workers adds a core (the
    issue's "per added core"); ``None``: the cores are shared out (1 worker uses them all)."""
    from pixelsmith.jobs.runner import run_batch

    t0 = time.time()
    res = run_batch(
        str(manifest(folder, f"out-w{workers}-t{threads or 0}")),
        workers=workers,
        threads=threads,
        show_progress=False,
        echo=lambda _l: None,
    )
    wall = time.time() - t0
    rate, done, med = rate_of(res.store_path, res.job_id)
    per = f"{threads} thread(s) each" if threads else "cores shared out"
    print(
        f"local workers={workers} ({per}): {done} items, {rate:.3f} items/s (median {med:.2f} s/item in a "
        f"worker), wall {wall:.1f} s incl. start-up"
    )
    return rate


def bench_ray(folder: pathlib.Path) -> float:
    from pixelsmith.jobs.ray_local import LocalCluster
    from pixelsmith.jobs.runner import run_batch

    with LocalCluster(worker_nodes=1, cpus_per_node=1) as cluster:
        t0 = time.time()
        res = run_batch(
            str(manifest(folder, "out-ray")),
            workers=2,
            ray_address=cluster.address,
            show_progress=False,
            echo=lambda _l: None,
        )
        wall = time.time() - t0
        import ray

        ray.shutdown()
    rate, done, med = rate_of(res.store_path, res.job_id)
    print(
        f"ray 2 nodes x 1 CPU, 2 actors: {done} items, {rate:.3f} items/s (median {med:.2f} s/item), "
        f"wall {wall:.1f} s incl. driver connect and actor start"
    )
    return rate


def bench_store(n: int = 2000) -> None:
    from pixelsmith.jobs.manifest import Step, WorkItem
    from pixelsmith.jobs.store import SQLiteJobStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteJobStore(pathlib.Path(tmp) / "jobs.db")
        work = [WorkItem(f"/o/{i}.png", f"/i/{i}.png", [Step("remove-background")], f"/o/{i}.png") for i in range(n)]
        t0 = time.perf_counter()
        job, _ = store.create_job(work)
        t_create = time.perf_counter() - t0
        t0 = time.perf_counter()
        while (c := store.claim("w", job_id=job)) is not None:
            store.heartbeat("w", [c.item_id])
            store.complete(c.item_id, "w", checksum="0" * 64, size=1000, seconds=0.1, result={"steps": []})
        t_loop = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(100):
            store.job(job)
        t_status = (time.perf_counter() - t0) / 100
    print(
        f"store: {n} items; create {t_create / n * 1000:.3f} ms/item; claim+heartbeat+complete "
        f"{t_loop / n * 1000:.3f} ms/item (goal < 2 ms); job status query {t_status * 1000:.2f} ms"
    )


def bench_recovery(folder: pathlib.Path, lease_s: float = 10.0) -> None:
    """kill -9 a worker holding an item; how long until the item runs again."""
    import threading

    from pixelsmith.jobs import runner
    from pixelsmith.jobs.manifest import load
    from pixelsmith.jobs.store import SQLiteJobStore

    for supervised in (True, False):
        out = f"out-recovery-{'sup' if supervised else 'lease'}"
        m = load(manifest(folder, out, "fast-upscale"))  # the tool does not matter here: keep it short
        m.items = m.items[:6]
        store, job = runner.prepare(m)
        if supervised:
            t = threading.Thread(target=runner._run_local, args=(store, job, 2, lease_s), daemon=True)
            t.start()
            procs = None
        else:
            from pixelsmith.jobs.worker import start_workers

            procs = start_workers(store.path, job, 2, lease_s=lease_s)
        victim = item = None
        while victim is None:
            rows = store._conn().execute("SELECT id, lease_owner FROM items WHERE state='running'").fetchall()
            if rows:
                item, victim = rows[0]["id"], int(rows[0]["lease_owner"].split(":")[1])
            time.sleep(0.02)
        os.kill(victim, signal.SIGKILL)
        killed = time.time()
        while True:
            row = store._conn().execute("SELECT state, lease_owner FROM items WHERE id=?", (item,)).fetchone()
            if row["state"] != "running" or not row["lease_owner"].split(":")[1] == str(victim):
                if row["state"] in ("running", "done"):
                    break
            time.sleep(0.01)
        took = time.time() - killed
        print(
            f"recovery ({'supervisor' if supervised else f'lease expiry only, lease {lease_s:g} s'}): "
            f"item running again {took:.2f} s after kill -9"
        )
        if supervised:
            t.join()
        else:
            while SQLiteJobStore(store.path).job(job).remaining:
                time.sleep(0.2)
            for p in procs:
                p.join()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--only", choices=["store", "local", "ray", "recovery"])
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="model threads per local worker (1: one core each, the per-added-core figure; "
        "0: cores shared out between the workers)",
    )
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} at start")
    if args.only in (None, "store"):
        bench_store()
    if args.only == "store":
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        (folder / "in").mkdir()
        make_images(folder / "in", args.count)
        rates = {}
        if args.only in (None, "local"):
            threads = args.threads or None
            rates[1] = bench_local(folder, 1, threads)
            rates[2] = bench_local(folder, 2, threads)
            what = "per added core" if threads == 1 else "same cores, split"
            print(f"scaling efficiency 1 -> 2 workers ({what}): {rates[2] / rates[1] / 2:.2f} (goal >= 0.85)")
        if args.only in (None, "ray") and not args.skip_ray:
            r = bench_ray(folder)
            if 1 in rates:
                print(f"ray vs 1 local worker: {r / rates[1]:.2f}x")
        if args.only in (None, "recovery"):
            bench_recovery(folder)
    print(f"load average {os.getloadavg()[0]:.1f} at end (other processes share these cores: figures are noisy)")


if __name__ == "__main__":
    main()
