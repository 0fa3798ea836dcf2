"""``pixelsmith batch``: a manifest becomes a job in the store next to its outputs, then
workers (local processes, or Ray) drain it while a progress bar follows the store.

Re-running the same manifest finds the same job (by its manifest and output
folder) and skips done items; ``fresh`` runs everything again.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pixelsmith.jobs import execute
from pixelsmith.jobs.manifest import Manifest, load
from pixelsmith.jobs.store import DEFAULT_LEASE_S, JobStatus, SQLiteJobStore

STORE_NAME = ".pixelsmith-batch.db"


@dataclass
class BatchResult:
    job_id: str
    store_path: str
    status: JobStatus
    seconds: float
    processed: int  # items finished (done or failed) by this run
    skipped: int  # items already done before this run
    failures: list[tuple[str, str]] = field(default_factory=list)
    contact_sheet: str | None = None
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.status.counts["failed"]


def store_path_for(manifest: Manifest) -> str:
    """Next to the outputs; for remote outputs, in the current folder (SQLite needs a local disk)."""
    if "://" in manifest.output:
        digest = hashlib.sha256(manifest.output.encode()).hexdigest()[:12]
        return str(pathlib.Path(".pixelsmith") / f"batch-{digest}.db")
    return str(pathlib.Path(manifest.output) / STORE_NAME)


def prepare(
    manifest: Manifest, *, fresh: bool = False, store: SQLiteJobStore | None = None
) -> tuple[SQLiteJobStore, str]:
    """Create the job, or bring the existing one in line with the manifest (resume)."""
    store = store or SQLiteJobStore(store_path_for(manifest))
    key = f"batch:{manifest.source}:{manifest.output}"
    meta = {
        "manifest": manifest.source,
        "output": manifest.output,
        "contact_sheet": manifest.contact_sheet,
        "skipped_steps": manifest.skipped_steps,
    }
    job_id, created = store.create_job(
        manifest.items,
        idempotency_key=key,
        title=manifest.title or os.path.basename(manifest.source) or "batch",
        meta=meta,
    )
    if not created:
        store.sync_items(job_id, manifest.items, retry_failed=True, fresh=fresh)
        store.reclaim_dead_workers()  # items a killed run left 'running' go back to the queue now
        store.requeue_missing_outputs(job_id, execute.exists)
    return store, job_id


def run_batch(
    manifest_path: str,
    *,
    workers: int = 1,
    output: str | None = None,
    fresh: bool = False,
    ray_address: str | None = None,
    use_ray: bool = False,
    lease_s: float = DEFAULT_LEASE_S,
    threads: int | None = None,
    show_progress: bool = True,
    echo: Callable[[str], None] = print,
) -> BatchResult:
    if not (use_ray or ray_address) and (workers > 1 or threads is not None):
        from pixelsmith.jobs.worker import worker_context

        worker_context()  # the fork server imports the workers' modules while this process reads the manifest
    manifest = load(manifest_path, output=output)
    for tool, why in manifest.skipped_steps.items():
        echo(f"note: skipping step {tool}: {why}")
    store, job_id = prepare(manifest, fresh=fresh)
    before = store.job(job_id)
    already = before.counts["done"]
    started = time.time()
    if use_ray or ray_address:
        from pixelsmith.jobs.ray_batch import run_on_ray

        def drive() -> None:
            run_on_ray(store, job_id, address=ray_address, workers=workers, lease_s=lease_s)

    else:

        def drive() -> None:
            _run_local(store, job_id, workers, lease_s, threads=threads)

    _with_progress(store, job_id, drive, show_progress=show_progress, echo=echo)
    status = store.job(job_id)
    failures = [(i.input, i.error or "") for i in store.items(job_id, state="failed")]
    processed = max(0, status.counts["done"] - already) + max(0, status.counts["failed"] - before.counts["failed"])
    result = BatchResult(
        job_id, store.path, status, time.time() - started, processed, already, failures, notes=manifest.skipped_steps
    )
    if manifest.contact_sheet and "://" not in manifest.output:
        from pixelsmith.jobs.contact_sheet import write_contact_sheet

        result.contact_sheet = write_contact_sheet(store, job_id, manifest)
    return result


def _run_local(
    store: SQLiteJobStore,
    job_id: str,
    workers: int,
    lease_s: float,
    *,
    max_restarts: int = 20,
    threads: int | None = None,
) -> None:
    """Supervise the worker processes: a worker that dies (crash, OOM kill, kill -9) has its leases
    expired at once and is replaced, so its item is back in the queue in well under a second
    instead of after the lease. Workers leave as soon as nothing is queued; any item that becomes
    claimable later (a retry come due, a lease run out) gets a new worker here. A poison item that
    kills every worker is quarantined by the store after its attempts, and at most ``max_restarts``
    workers are started after the first ones, so the restarts stay bounded."""
    from multiprocessing.connection import wait as wait_any

    from pixelsmith.jobs.worker import start_workers, stop_workers, work_loop

    if workers <= 1 and threads is None:  # one worker: this process, with the models it has already loaded
        work_loop(store, job_id=job_id, lease_s=lease_s)
        return
    if not store.job(job_id).remaining:
        return  # everything already done (a resumed batch): no worker to start
    procs = start_workers(store.path, job_id, workers, lease_s=lease_s, threads=threads, supervised=True)
    one = threads or max(1, (os.cpu_count() or 1) // workers)  # a replacement's threads: its share of the cores
    restarts = 0
    try:
        while True:
            if procs:
                wait_any([p.sentinel for p in procs], timeout=1.0)  # wakes as soon as one of them exits
            for p in list(procs):
                if p.exitcode is None:
                    continue
                procs.remove(p)
                if p.exitcode != 0:  # died holding (maybe) a lease: give its items back now
                    store.reclaim_dead_workers()
            # A worker leaves once no item is queued (work_loop's ``supervised``) rather than waiting on items
            # that are running. So this process gives a worker to any item that is claimable while fewer than
            # ``workers`` run: one a dead worker held, a retried item come due, a lease that ran out (its
            # holder stuck, or another batch process on the same store).
            ready = store.next_ready_in(job_id)
            if ready is None:  # nothing queued or running
                if not procs:
                    break
            elif ready == 0 and len(procs) < workers and restarts < max_restarts:
                restarts += 1
                procs += start_workers(store.path, job_id, 1, lease_s=lease_s, threads=one, supervised=True)
            elif not procs:
                if restarts >= max_restarts:
                    break  # every restart used: what is left stays queued for the next run
                time.sleep(min(ready, 0.5))  # items others are running, or a retry's backoff
    finally:
        stop_workers(procs)


def _with_progress(
    store: SQLiteJobStore, job_id: str, drive: Callable[[], None], *, show_progress: bool, echo: Callable[[str], None]
) -> None:
    """Run ``drive`` in a thread while a rich progress bar follows the store's counts."""
    import threading

    error: list[BaseException] = []

    def target() -> None:
        try:
            drive()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    if not show_progress:
        thread.start()
        thread.join()
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        status = store.job(job_id)
        seen_failed = {i.id for i in store.items(job_id, state="failed")}
        columns = [
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns) as progress:
            task = progress.add_task(
                "batch",
                total=status.total - status.counts["cancelled"],
                completed=status.counts["done"] + status.counts["failed"],
                rate="",
            )
            first_done, t0 = status.counts["done"], time.time()
            thread.start()
            while thread.is_alive():
                thread.join(0.5)
                status = store.job(job_id)
                for item in store.items(job_id, state="failed"):
                    if item.id not in seen_failed:
                        seen_failed.add(item.id)
                        progress.console.print(f"[red]failed[/red] {item.input}: {item.error}")
                run_done = status.counts["done"] - first_done
                rate = run_done / (time.time() - t0) if run_done else 0.0
                progress.update(
                    task,
                    completed=status.counts["done"] + status.counts["failed"],
                    total=status.total - status.counts["cancelled"],
                    rate=f"{rate:.2f} items/s" if run_done else "",
                )
    if error:
        raise error[0]


def summary_lines(result: BatchResult) -> list[str]:
    c = result.status.counts
    rate = result.processed / result.seconds if result.seconds > 0 and result.processed else 0.0
    lines = [
        f"batch {result.job_id[:12]}: {c['done']} done, {c['failed']} failed, {c['cancelled']} cancelled, "
        f"{c['queued'] + c['running']} left ({result.skipped} already done before this run; "
        f"{result.processed} processed in {result.seconds:.1f} s, {rate:.2f} items/s)"
    ]
    for path, reason in result.failures:
        lines.append(f"  failed {path}: {reason}")
    if result.contact_sheet:
        lines.append(f"contact sheet: {result.contact_sheet}")
    lines.append(f"state: {result.store_path}")
    return lines
