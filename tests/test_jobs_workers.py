"""Real worker processes: kill -9 one mid-batch, its items come back after the lease, exactly once."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import threading
import time

import pytest
from PIL import Image

from pixelsmith.jobs import execute
from pixelsmith.jobs.manifest import Step, WorkItem
from pixelsmith.jobs.store import SQLiteJobStore
from pixelsmith.jobs.worker import start_workers, stop_workers, work_loop


def make_items(tmp_path: pathlib.Path, samples: pathlib.Path, n: int) -> list[WorkItem]:
    src = Image.open(samples / "search_and_recolor_input.png").convert("RGB")
    work = []
    for i in range(n):
        path = tmp_path / f"in{i}.png"
        src.crop((i * 40, i * 30, i * 40 + 500, i * 30 + 500)).resize((80, 80)).save(path)
        out = str(tmp_path / "out" / f"o{i}.png")
        work.append(WorkItem(out, str(path), [Step("fast-upscale")], out))
    return work


def test_killed_worker_items_are_requeued_and_done_exactly_once(tmp_path, samples, embedded_models):
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(make_items(tmp_path, samples, 10))
    procs = start_workers(store.path, job, 2, lease_s=1.5)
    try:
        deadline = time.time() + 90
        victim = None
        while time.time() < deadline and victim is None:
            # the owner (host:pid:tag) of an item claimed in the last 40 ms: an item takes ~100 ms, so the victim
            # is surely mid-item when killed (an owner read a moment before it finished could die between items,
            # and then no item would run twice)
            owners = [
                row[0]
                for row in store._conn().execute(
                    "SELECT lease_owner FROM items WHERE state='running' AND started > ?", (time.time() - 0.04,)
                )
            ]
            if store.job(job).counts["done"] >= 1 and owners:
                victim = int(owners[0].split(":")[1])
            else:
                time.sleep(0.005)
        assert victim is not None
        os.kill(victim, signal.SIGKILL)  # dies holding a lease
        killed_at = time.time()
        while time.time() < deadline and store.job(job).remaining:
            time.sleep(0.2)
        recovered_in = time.time() - killed_at
    finally:
        stop_workers(procs)
    status = store.job(job)
    assert status.counts["done"] == 10, status.counts
    records = store.items(job)
    assert max(r.attempts for r in records) == 2  # the killed worker's item ran a second time
    for r in records:
        assert hashlib.sha256(pathlib.Path(r.output).read_bytes()).hexdigest() == r.checksum
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"o{i}.png" for i in range(10))
    assert recovered_in < 60


def test_transient_failure_is_retried_with_backoff(tmp_path, samples, embedded_models, monkeypatch):
    store = SQLiteJobStore(tmp_path / "jobs.db", backoff_base_s=0.2)
    job, _ = store.create_job(make_items(tmp_path, samples, 1))
    calls = []
    real = execute.read_bytes

    def flaky(path: str) -> bytes:  # shared storage that times out twice, then answers
        calls.append(time.time())
        if len(calls) <= 2:
            raise TimeoutError("storage did not answer")
        return real(path)

    monkeypatch.setattr(execute, "read_bytes", flaky)
    stats = work_loop(store, job_id=job, stop=threading.Event())
    assert stats.done == 1 and stats.retried == 2
    rec = store.items(job)[0]
    assert rec.state == "done" and rec.attempts == 3
    assert calls[1] - calls[0] >= 0.2 and calls[2] - calls[1] >= 0.4  # 0.2 s then 0.4 s backoff


def test_server_killed_mid_job_resumes_on_restart_exactly_once(tmp_path, samples, embedded_models):
    """The job service of a server process is killed -9 mid-job; a restarted one finishes it."""
    import subprocess
    import sys

    from pixelsmith.jobs.service import JobService

    root = tmp_path / "jobs"
    client = JobService(root)  # submits only; the "server" subprocesses run the workers
    job, _ = client.submit(make_items(tmp_path, samples, 8))
    code = (
        "import time; from pixelsmith.jobs.service import JobService; "
        f"JobService({str(root)!r}, threads=1, lease_s=60).start(); time.sleep(600)"
    )
    env = {**os.environ, "PIXELSMITH_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-c", code], env=env)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and client.store.job(job).counts["done"] < 2:
            time.sleep(0.1)
        os.kill(server.pid, signal.SIGKILL)
        server.wait()
        before = client.store.job(job).counts
        assert 2 <= before["done"] < 8
        server = subprocess.Popen([sys.executable, "-c", code], env=env)  # lease is 60 s: the restart must
        while time.time() < deadline and client.store.job(job).remaining:  # reclaim the dead pid's item
            time.sleep(0.2)
    finally:
        server.kill()
        server.wait()
    records = client.store.items(job)
    assert [r.state for r in records] == ["done"] * 8
    for r in records:
        assert hashlib.sha256(pathlib.Path(r.output).read_bytes()).hexdigest() == r.checksum
    assert not list((tmp_path / "out").glob("*.part"))


def test_progress_is_recorded_and_a_cancel_stops_the_running_item(tmp_path, samples, embedded_models):
    """The worker writes the recipe's (done, total, unit) on the item; once the job is cancelled the
    next write is refused and the work stops mid-recipe: no output, the item cancelled, not retried."""
    src = Image.open(samples / "upscale_input.jpg").convert("RGB").resize((1000, 700))  # 3 x 2 tiles or more
    src.save(tmp_path / "big.png")
    out = str(tmp_path / "out" / "big.png")
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job([WorkItem(out, str(tmp_path / "big.png"), [Step("fast-upscale")], out)])
    item = store.items(job)[0].id
    worker = threading.Thread(target=work_loop, args=(store,), kwargs={"job_id": job}, daemon=True)
    worker.start()
    deadline = time.time() + 120
    while time.time() < deadline and store.item(item).progress is None:
        time.sleep(0.02)
    seen = store.item(item).progress
    assert seen is not None and seen["unit"] == "tile" and seen["total"] >= 6
    store.cancel(job)
    worker.join(timeout=120)
    assert not worker.is_alive()
    final = store.item(item)
    assert final.state == "cancelled" and final.attempts == 1
    assert final.progress["done"] < final.progress["total"], "stopped before the last tile"
    assert not os.path.exists(out)


def test_progress_writes_are_throttled_ordered_and_stop_when_refused():
    from pixelsmith.jobs.execute import Stopped
    from pixelsmith.jobs.worker import _ProgressWriter

    class Store:
        def __init__(self):
            self.writes, self.refuse = [], False

        def progress(self, item_id, worker, done, total, unit):
            self.writes.append((done, total, unit))
            return not self.refuse

    store = Store()
    write = _ProgressWriter(store, "w", 1, every_s=3600)  # no time-based write within this test
    for done in range(1, 101):
        write(done, 100, "tile")
    write(40, 100, "tile")  # a late report from another tile thread: never goes backwards
    assert store.writes == [(1, 100, "tile"), (100, 100, "tile")]  # the first and the last
    write(1, 100, "tile", step=1)  # the chain's next step starts again from 1
    assert store.writes[-1] == (1, 100, "tile")
    store.refuse = True  # the job was cancelled: the store refuses, the work stops
    with pytest.raises(Stopped):
        write(100, 100, "tile", step=1)


def test_a_supervised_worker_leaves_others_running_items_to_its_supervisor(tmp_path, samples):
    """A batch's worker exits once nothing is queued instead of polling on another worker's running item (which
    kept 2-worker batches alive ~0.5 s after their last item); an unsupervised one waits to take it over."""
    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(make_items(tmp_path, samples, 1))
    other = f"host:{os.getpid()}:other"
    assert store.claim(other, job_id=job, lease_s=60) is not None  # another worker is running the only item
    stats = work_loop(store, job_id=job, supervised=True)
    assert stats.done == 0 and store.job(job).counts["running"] == 1
    stop = threading.Event()
    waiting = threading.Thread(target=work_loop, args=(store,), kwargs={"job_id": job, "stop": stop})
    waiting.start()
    try:
        waiting.join(1.0)
        assert waiting.is_alive()  # the unsupervised loop still waits on the other's lease
    finally:
        stop.set()
        waiting.join(10)


def test_the_batch_supervisor_takes_over_an_item_whose_lease_ran_out(tmp_path, samples, embedded_models):
    """The workers leave while an item is still running elsewhere (another batch process on the same store, or a
    stuck worker); when that lease runs out, the supervisor gives the item a worker, so it is still done."""
    from pixelsmith.jobs.runner import _run_local

    store = SQLiteJobStore(tmp_path / "jobs.db")
    job, _ = store.create_job(make_items(tmp_path, samples, 3))
    held = store.claim(f"host:{os.getpid()}:stuck", job_id=job, lease_s=3)  # alive (this process), never finishes
    assert held is not None
    _run_local(store, job, 2, lease_s=30)
    status = store.job(job)
    assert status.counts["done"] == 3, status.counts
    assert store.item(held.item_id).attempts == 2  # taken over after the lease, once
