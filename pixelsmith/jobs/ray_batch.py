"""``pixelsmith batch MANIFEST --ray ADDRESS``: the same job, run by Ray Data actor pools.

The driver keeps the bookkeeping: it claims items in the job store (leases held
in its name and kept alive by a heartbeat thread), Ray Data streams them through
``map_batches`` over an actor pool whose actors load their models once, and the
driver records each outcome (checksum and done in one transaction). A Ray
worker killed mid-item makes Ray retry that task (outputs are written atomically
and seeds are fixed per item, so the retry writes the same bytes); a driver that
dies leaves leases that expire, and re-running the command resumes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

from pixelsmith.jobs.store import DEFAULT_LEASE_S, Claim, JobStore, worker_id


class ItemRunner:
    """A Ray Data actor: runs work items; the embedded engine caches models per actor process."""

    def __init__(self, threads: int = 1):
        os.environ["PIXELSMITH_THREADS"] = str(threads)
        from pixelsmith.tools import all_tools

        all_tools()  # import the tool registry once per actor, not per item

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        from pixelsmith.jobs.execute import ItemFailed, run_item
        from pixelsmith.jobs.manifest import WorkItem

        out: dict[str, list[Any]] = {
            k: [] for k in ("item_id", "checksum", "size", "seconds", "result", "error", "transient", "pid")
        }
        for item_id, key, spec in zip(batch["item_id"], batch["key"], batch["spec"]):
            work = WorkItem.from_spec(str(key), json.loads(str(spec)))
            try:
                o = run_item(work)
                row = (o.checksum, o.size, o.seconds, json.dumps(o.result), "", False)
            except ItemFailed as exc:
                row = ("", 0, 0.0, "{}", exc.reason, exc.transient)
            out["item_id"].append(int(item_id))
            for name, value in zip(("checksum", "size", "seconds", "result", "error", "transient"), row):
                out[name].append(value)
            out["pid"].append(os.getpid())
        return out


def connect(address: str | None) -> Any:
    """Ray, connected to ``address`` (None or "local": a Ray started in this process, on loopback)."""
    from pixelsmith.jobs.ray_local import pin_loopback

    pin_loopback(address)  # before Ray is imported: a loopback or in-process cluster stays on 127.0.0.1
    import ray

    if not ray.is_initialized():
        import logging

        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False, "logging_level": logging.WARNING}
        if address in (None, "local"):
            kwargs["include_dashboard"] = False
        ray.init(address=None if address in (None, "local") else address, **kwargs)
    return ray


class _Heartbeat:
    def __init__(self, store: JobStore, worker: str, lease_s: float):
        self.store, self.worker, self.lease_s = store, worker, lease_s
        self.held: set[int] = set()
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            with self.lock:
                ids = list(self.held)
            try:
                self.store.heartbeat(self.worker, ids, lease_s=self.lease_s)
            except Exception:  # noqa: BLE001 - try again at the next beat
                pass

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(timeout=5)


def run_on_ray(
    store: JobStore,
    job_id: str,
    *,
    address: str | None = None,
    workers: int = 1,
    lease_s: float = DEFAULT_LEASE_S,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    chunk: int = 10_000,
) -> dict[str, int]:
    """Drain the job through Ray Data; returns counts of what this driver recorded."""
    connect(address)
    import ray.data as ray_data  # after connect: see pixelsmith.jobs.ray_local.pin_loopback

    ctx = ray_data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the batch command draws its own bar from the store
    ctx.print_on_execution_start = False
    driver = worker_id()
    beat = _Heartbeat(store, driver, lease_s)
    counts = {"done": 0, "failed": 0, "retried": 0, "lost": 0}
    try:
        while True:
            claims: list[Claim] = []
            while len(claims) < chunk and (c := store.claim(driver, job_id=job_id, lease_s=lease_s)) is not None:
                claims.append(c)
                with beat.lock:
                    beat.held.add(c.item_id)
            if not claims:
                wait = store.next_ready_in(job_id)
                if wait is None:
                    break
                time.sleep(min(max(wait, 0.05), 1.0))  # items in backoff, or leased by another driver
                continue
            rows = [{"item_id": c.item_id, "key": c.key, "spec": json.dumps(c.work.spec())} for c in claims]
            ds = ray_data.from_items(rows, override_num_blocks=len(rows)).map_batches(
                ItemRunner,
                batch_size=1,
                compute=ray_data.ActorPoolStrategy(size=max(1, workers)),
                num_cpus=cpus_per_actor,
                num_gpus=gpus_per_actor or None,
                fn_constructor_kwargs={"threads": max(1, int(cpus_per_actor))},
            )
            # No restart arguments: Ray Data's actor pools default to max_restarts=-1 and
            # max_task_retries=-1, so a killed actor is replaced and its item retried.
            for row in ds.iter_rows():
                item_id = int(row["item_id"])
                if row["error"]:
                    state = store.fail(item_id, driver, str(row["error"]), transient=bool(row["transient"]))
                    counts["retried" if state == "queued" else "failed"] += 1
                elif store.complete(
                    item_id,
                    driver,
                    checksum=str(row["checksum"]),
                    size=int(row["size"]),
                    seconds=float(row["seconds"]),
                    result={**json.loads(str(row["result"])), "ray_pid": int(row["pid"])},
                ):
                    counts["done"] += 1
                else:
                    counts["lost"] += 1
                with beat.lock:
                    beat.held.discard(item_id)
    finally:
        beat.stop()
    return counts
