"""Local workers: claim an item, keep its lease alive, run it, record the outcome.

``--workers N`` starts N processes; each loads its models once (the embedded
engine caches sessions per process) and takes ``cores / N`` threads so that N
workers do not fight over the CPU.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from pixelsmith.jobs.execute import ItemFailed, Stopped, run_item
from pixelsmith.jobs.fork_server import worker_context
from pixelsmith.jobs.store import DEFAULT_LEASE_S, JobStore, SQLiteJobStore, worker_id

PROGRESS_EVERY_S = 0.5


@dataclass
class WorkerStats:
    done: int = 0
    failed: int = 0
    retried: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)


class _Lease:
    """Heartbeats one held item from a thread; ``held`` turns False if the lease is lost."""

    def __init__(self, store: JobStore, worker: str, item_id: int, lease_s: float):
        self.store, self.worker, self.item_id, self.lease_s = store, worker, item_id, lease_s
        self.held = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if self.item_id not in self.store.heartbeat(self.worker, [self.item_id], lease_s=self.lease_s):
                    self.held = False
                    return
            except Exception:  # noqa: BLE001 - a busy database: try again at the next beat
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _ProgressWriter:
    """Records a running item's (done, total, unit) in the store, at most every ``every_s`` seconds
    (plus each step's first and last report) so a recipe reporting per tile does not hammer SQLite.
    A write the store refuses means the job was cancelled or the lease lost: the work stops there."""

    def __init__(self, store: JobStore, worker: str, item_id: int, every_s: float = PROGRESS_EVERY_S):
        self.store, self.worker, self.item_id, self.every_s = store, worker, item_id, every_s
        self._last = 0.0
        self._seen: tuple[int, tuple[int, int, str]] | None = None  # the last write: done, (step, total, unit)
        self._lock = threading.Lock()  # tiled recipes report from their thread pools

    def __call__(self, done: int, total: int, unit: str, step: int = 0) -> None:
        with self._lock:
            now = time.monotonic()
            seen = self._seen
            same = seen is not None and seen[1] == (step, total, unit)
            if same and seen is not None and done <= seen[0]:
                return  # a tile from another thread that finished out of order
            if same and done < total and now - self._last < self.every_s:
                return
            self._last, self._seen = now, (done, (step, total, unit))
            try:
                held = self.store.progress(self.item_id, self.worker, int(done), int(total), unit)
            except Exception:  # noqa: BLE001 - a busy database: progress is best effort, the work goes on
                return
        if not held:
            raise Stopped()


def work_loop(
    store: JobStore,
    *,
    job_id: str | None = None,
    lease_s: float = DEFAULT_LEASE_S,
    stop: threading.Event | None = None,
    wait_for_more: bool = False,
    worker: str | None = None,
    max_items: int | None = None,
    supervised: bool = False,
) -> WorkerStats:
    """Process items until none is left (or ``stop`` is set). Items in backoff are waited for.

    ``supervised``: a batch's worker process, whose supervisor (``runner._run_local``) gives a worker to any item
    that becomes claimable again (its worker died, its lease ran out). It leaves as soon as no item is queued,
    rather than waiting on the items other workers are running in case their lease runs out: that wait (polled
    every 0.5 s) kept a 2-worker batch alive ~0.5 s after its last item (bench/batch_small.py: 24 items done
    at 1.61 s, the batch over at 2.17 s).
    """
    worker = worker or worker_id()
    stop = stop or threading.Event()
    stats = WorkerStats()
    while not stop.is_set() and (max_items is None or stats.done + stats.failed < max_items):
        claim = store.claim(worker, job_id=job_id, lease_s=lease_s)
        if claim is None:
            wait = store.next_ready_in(job_id)
            if wait is None and not wait_for_more:
                break
            if supervised and job_id is not None and not store.job(job_id).counts["queued"]:
                break  # only other workers' items are left; if one of them dies, the supervisor starts a worker
            stop.wait(min(wait if wait is not None else 0.5, 0.5))
            continue
        lease = _Lease(store, worker, claim.item_id, lease_s)
        try:
            outcome = run_item(
                claim.work,
                keep_going=lambda: lease.held and not stop.is_set(),
                progress=_ProgressWriter(store, worker, claim.item_id),
                first_try=claim.attempt == 1,
            )
        except Stopped:
            lease.stop()
            # asked to stop, or the job was cancelled: hand the item back without counting the attempt
            # (release cancels it when its job is cancelled); a lease another worker took is not ours
            if not store.release(claim.item_id, worker):
                stats.lost += 1
            continue
        except ItemFailed as exc:
            lease.stop()
            state = store.fail(claim.item_id, worker, exc.reason, transient=exc.transient)
            if state == "queued":
                stats.retried += 1
            else:
                stats.failed += 1
                stats.errors.append(f"{claim.work.input or claim.work.output}: {exc.reason}")
            continue
        lease.stop()
        if store.complete(
            claim.item_id,
            worker,
            checksum=outcome.checksum,
            size=outcome.size,
            seconds=outcome.seconds,
            result=outcome.result,
        ):
            stats.done += 1
        else:
            stats.lost += 1  # another worker took over after our lease ran out; its record stands
    return stats


def _die_with_parent() -> None:
    """Linux: SIGKILL this worker when the process that forked it dies (kill -9 included)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _watch_batch(batch: int, stop: threading.Event) -> None:
    """Exit at once when the batch process ``batch`` is gone (kill -9 included). Under the fork server the
    worker's parent is the server, which outlives a killed batch while its workers live, so the parent-death
    signal alone is not enough: a pidfd says when ``batch`` itself exits (a 1 s ``kill(pid, 0)`` poll where
    pidfds are missing)."""
    try:
        fd = os.pidfd_open(batch)
    except ProcessLookupError:
        os._exit(1)  # it died before this worker got going
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        import select

        select.select([fd], [], [])  # readable when the process exits
        os._exit(1)
    while not stop.wait(1.0):
        try:
            os.kill(batch, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


def _process_main(
    db_path: str,
    job_id: str,
    lease_s: float,
    threads: int,
    batch: int,
    env: dict[str, str] | None = None,
    supervised: bool = False,
) -> None:
    _die_with_parent()
    if env is not None:  # a fork server's child has the server's environment, not the batch's of now
        os.environ.clear()
        os.environ.update(env)
    os.environ["PIXELSMITH_THREADS"] = str(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=_watch_batch, args=(batch, stop), daemon=True).start()
    work_loop(SQLiteJobStore(db_path), job_id=job_id, lease_s=lease_s, stop=stop, supervised=supervised)
    modules = os.environ.get("PIXELSMITH_WORKER_MODULES")
    if modules:  # diagnosis (and the tests): which modules a worker process ended up importing
        with open(f"{modules}.{os.getpid()}", "w") as fh:
            fh.write("\n".join(sorted(sys.modules)))


def start_workers(
    db_path: str,
    job_id: str,
    count: int,
    *,
    lease_s: float = DEFAULT_LEASE_S,
    threads: int | None = None,
    supervised: bool = False,
) -> list:
    """Start ``count`` worker processes on the job; they exit when no item is left.
    ``threads``: model threads per worker (default: the cores shared out between the workers).
    ``supervised``: they exit once no item is queued, leaving the items other workers run to the caller, which
    must then start a worker for any item that becomes claimable again (``runner._run_local`` does)."""
    ctx = worker_context()
    threads = threads or max(1, (os.cpu_count() or 1) // count)
    env = dict(os.environ)
    procs = []
    for _ in range(count):
        p = ctx.Process(
            target=_process_main, args=(db_path, job_id, lease_s, threads, os.getpid(), env, supervised), daemon=False
        )
        p.start()
        procs.append(p)
    return procs


def stop_workers(procs: list, timeout: float = 10.0) -> None:
    for p in procs:
        if p.is_alive():
            p.terminate()  # SIGTERM: finish nothing new, hand the current item back
    deadline = time.time() + timeout
    for p in procs:
        p.join(max(0.1, deadline - time.time()))
        if p.is_alive():
            p.kill()
            p.join()
