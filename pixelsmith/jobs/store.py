"""The job store: jobs, their items, leases and results, in SQLite (WAL) by default.

A job is a list of items; an item moves queued -> running -> done | failed |
cancelled. Workers *claim* an item with a lease (owner + expiry) and keep it
alive with heartbeats; an item whose lease expires (its worker was killed) is
queued again, and one that has used up its attempts is quarantined (failed,
with the reason). ``complete`` marks an item done and records its checksum in
one transaction, and only for the worker that still holds the lease, so an item
is done exactly once however many workers die or linger.

:class:`JobStore` is the interface (an ABC: every method abstract);
:class:`SQLiteJobStore` is the one-machine implementation (no server needed). A
shared store (Postgres, Redis) replaces it by subclassing :class:`JobStore` and
passing the conformance suite in ``tests/test_jobs_store_conformance.py``.
"""

from __future__ import annotations

import abc
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pixelsmith.jobs.manifest import WorkItem

STATES = ("queued", "running", "done", "failed", "cancelled")
DEFAULT_LEASE_S = 30.0
DEFAULT_MAX_ATTEMPTS = 3
PRIORITY_BATCH = 0
PRIORITY_INTERACTIVE = 10  # a person waiting at the studio: claimed before any batch item
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 60.0


@dataclass
class Claim:
    """An item a worker holds: do the work, then ``complete`` or ``fail`` it."""

    item_id: int
    job_id: str
    key: str
    attempt: int
    work: WorkItem


@dataclass
class ItemRecord:
    id: int
    job_id: str
    key: str
    state: str
    attempts: int
    input: str
    output: str
    steps: list[dict[str, Any]]
    error: str | None = None
    quarantined: bool = False
    checksum: str | None = None
    size: int | None = None
    seconds: float | None = None
    started: float | None = None
    finished: float | None = None
    label: str = ""
    notes: list[str] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] | None = None  # {done, total, unit} of the step running (or last run)
    priority: int = PRIORITY_BATCH

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class JobStatus:
    id: str
    owner: str | None
    title: str
    state: str  # active | cancelled | finished
    created: float
    counts: dict[str, int]
    total: int
    started: float | None
    finished: float | None
    rate: float | None  # items per second since the first item started
    eta_s: float | None
    meta: dict[str, Any] = field(default_factory=dict)
    priority: int = PRIORITY_BATCH

    @property
    def remaining(self) -> int:
        return self.counts.get("queued", 0) + self.counts.get("running", 0)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "remaining": self.remaining}


class JobStore(abc.ABC):
    """What workers, the batch runner, the jobs API, the job service and its webhook notifier need
    from a store. Every method is abstract: a store (SQLite here; Postgres or Redis for a shared
    queue) implements all of them, and ``tests/test_jobs_store_conformance.py`` checks that it
    behaves as described here."""

    # -- jobs ------------------------------------------------------------------------------------
    @abc.abstractmethod
    def create_job(
        self,
        items: list[WorkItem],
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
        title: str = "",
        meta: dict[str, Any] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        job_id: str | None = None,
        priority: int = PRIORITY_BATCH,
    ) -> tuple[str, bool]:
        """A new job with its items (``(id, True)``), or the existing one of the same owner and
        idempotency key (``(id, False)``). Items of a higher ``priority`` are claimed first."""

    @abc.abstractmethod
    def find_job(self, idempotency_key: str, owner: str | None = None) -> str | None:
        """The owner's job made with this idempotency key, if any."""

    @abc.abstractmethod
    def sync_items(
        self, job_id: str, items: list[WorkItem], *, retry_failed: bool = True, fresh: bool = False
    ) -> dict[str, int]:
        """Make a job's items match a re-read manifest, keeping unchanged done work; counts of
        ``added``, ``kept``, ``requeued`` and ``removed`` items."""

    @abc.abstractmethod
    def requeue_missing_outputs(self, job_id: str, exists: Callable[[str], bool]) -> int:
        """Queue again the done items whose output ``exists`` says has vanished; how many."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> int:
        """Cancel the job: its queued items now (how many), running ones after their current item."""

    @abc.abstractmethod
    def update_meta(self, job_id: str, **values: Any) -> None:
        """Merge ``values`` into the job's meta (raises NotFound for an unknown job)."""

    @abc.abstractmethod
    def pending_webhooks(self) -> list[str]:
        """Ids of jobs whose meta has a ``webhook`` but no ``webhook_sent`` yet."""

    # -- workers ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def claim(self, worker: str, *, job_id: str | None = None, lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
        """Lease the next queued item (highest priority, then readiness, then age) of an active job."""

    @abc.abstractmethod
    def heartbeat(self, worker: str, item_ids: Iterable[int], *, lease_s: float = DEFAULT_LEASE_S) -> set[int]:
        """Extend the leases this worker still holds; returns the ids still held."""

    @abc.abstractmethod
    def complete(
        self,
        item_id: int,
        worker: str,
        *,
        checksum: str,
        size: int,
        seconds: float,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Mark the item done with its checksum, only if this worker holds its lease."""

    @abc.abstractmethod
    def fail(self, item_id: int, worker: str, reason: str, *, transient: bool) -> str:
        """Record a failure: ``"queued"`` (retried after a backoff), ``"failed"`` or ``"lost"``."""

    @abc.abstractmethod
    def release(self, item_id: int, worker: str, *, state: str = "queued", reason: str | None = None) -> bool:
        """Give a held item back without counting the attempt (or cancel it)."""

    @abc.abstractmethod
    def progress(self, item_id: int, worker: str, done: int, total: int, unit: str) -> bool:
        """Record a running item's progress; False when the worker no longer holds it."""

    @abc.abstractmethod
    def queue_ahead(self, item_ids: Iterable[int]) -> dict[int, int]:
        """For each queued item, how many queued items will be claimed before it."""

    @abc.abstractmethod
    def running_count(self) -> int:
        """Items being worked on now, in any job."""

    @abc.abstractmethod
    def reclaim_dead_workers(self) -> int:
        """Expire at once the leases of workers known to be dead; how many."""

    @abc.abstractmethod
    def next_ready_in(self, job_id: str | None = None) -> float | None:
        """Seconds until some item may be claimed (0 = now), or None when nothing is left to do."""

    # -- reading ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def job(self, job_id: str) -> JobStatus:
        """The job's status (raises NotFound)."""

    @abc.abstractmethod
    def jobs(self, owner: str | None = None, limit: int = 100) -> list[JobStatus]:
        """The newest jobs first, of one owner (or of all when ``owner`` is None)."""

    @abc.abstractmethod
    def items(
        self, job_id: str, *, state: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[ItemRecord]:
        """The job's items in order, optionally of one state."""

    @abc.abstractmethod
    def item(self, item_id: int) -> ItemRecord:
        """One item (raises NotFound)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release this process's connections (the store may be used again afterwards)."""


def worker_id() -> str:
    """host:pid:random, so a dead local worker can be recognised by its pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); /proc says whether it is really gone.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT,
    idem_key TEXT,
    title TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'active',
    created REAL NOT NULL,
    max_attempts INTEGER NOT NULL DEFAULT 3,
    meta TEXT NOT NULL DEFAULT '{}',
    priority INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(ifnull(owner, ''), idem_key) WHERE idem_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id),
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    quarantined INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires REAL,
    not_before REAL NOT NULL DEFAULT 0,
    started REAL,
    finished REAL,
    seconds REAL,
    checksum TEXT,
    size INTEGER,
    result TEXT,
    priority INTEGER NOT NULL DEFAULT 0,
    progress_done INTEGER,
    progress_total INTEGER,
    progress_unit TEXT,
    UNIQUE(job_id, key)
);
"""
# Columns added after the first release: (table, column, declaration). A jobs.db written by an older
# version lacks them; they are added on open (existing jobs get priority 0, no progress).
ADDED_COLUMNS = (
    ("jobs", "priority", "INTEGER NOT NULL DEFAULT 0"),
    ("items", "priority", "INTEGER NOT NULL DEFAULT 0"),
    ("items", "progress_done", "INTEGER"),
    ("items", "progress_total", "INTEGER"),
    ("items", "progress_unit", "TEXT"),
)
# The claim walks this index in order (priority first), so claiming stays one short index scan.
INDEXES = """
DROP INDEX IF EXISTS items_claim;
CREATE INDEX IF NOT EXISTS items_claim_priority ON items(state, priority DESC, not_before, id);
CREATE INDEX IF NOT EXISTS items_job ON items(job_id, state);
"""


class SQLiteJobStore(JobStore):
    """One SQLite file in WAL mode; safe for many processes on one machine."""

    def __init__(self, path: str | os.PathLike, *, backoff_base_s: float = BACKOFF_BASE_S):
        self.path = str(path)
        self.backoff_base_s = backoff_base_s
        self._local = threading.local()
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        conn = self._conn()
        conn.executescript(SCHEMA)  # idempotent; busy_timeout serialises concurrent openers
        self._migrate(conn)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring a jobs.db from an older version up to this schema (columns, then indexes)."""
        with self._tx(conn):  # one writer at a time: two processes opening an old file do not both ALTER
            for table, column, decl in ADDED_COLUMNS:
                have = {r["name"] for r in conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {decl}")
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name='items_claim_priority'").fetchone():
                for statement in filter(str.strip, INDEXES.split(";")):
                    conn.execute(statement)

    # -- connection and transactions ---------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            from pixelsmith.fsutil import private_file

            private_file(self.path)  # 0600 (and its -wal/-shm): job state is its owner's alone
            # NORMAL: a commit survives a killed process (it is in the WAL); only a power cut can
            # lose the last commits, and then the item simply runs again (outputs are fsynced).
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    class _tx:
        def __init__(self, conn: sqlite3.Connection):
            self.conn = conn

        def __enter__(self) -> sqlite3.Connection:
            self.conn.execute("BEGIN IMMEDIATE")
            return self.conn

        def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: object) -> Literal[False]:
            self.conn.execute("COMMIT" if kind is None else "ROLLBACK")
            return False

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- jobs ------------------------------------------------------------------------------------
    def create_job(
        self,
        items: list[WorkItem],
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
        title: str = "",
        meta: dict[str, Any] | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        job_id: str | None = None,
        priority: int = PRIORITY_BATCH,
    ) -> tuple[str, bool]:
        """A new job with its items, or the existing one for the same (owner, idempotency key).
        Items of a higher ``priority`` are claimed before any queued item of a lower one."""
        conn = self._conn()
        with self._tx(conn):
            if idempotency_key is not None:
                row = conn.execute(
                    "SELECT id FROM jobs WHERE ifnull(owner,'')=? AND idem_key=?", (owner or "", idempotency_key)
                ).fetchone()
                if row:
                    return row["id"], False
            new_id = job_id or uuid.uuid4().hex
            conn.execute(
                "INSERT INTO jobs(id, owner, idem_key, title, created, max_attempts, meta, priority) "
                "VALUES (?,?,?,?,?,?,?,?)",
                (new_id, owner, idempotency_key, title, time.time(), max_attempts, json.dumps(meta or {}), priority),
            )
            conn.executemany(
                "INSERT INTO items(job_id, key, fingerprint, spec, priority) VALUES (?,?,?,?,?)",
                [(new_id, w.key, w.fingerprint, json.dumps(w.spec()), priority) for w in items],
            )
        return new_id, True

    def find_job(self, idempotency_key: str, owner: str | None = None) -> str | None:
        row = (
            self._conn()
            .execute("SELECT id FROM jobs WHERE ifnull(owner,'')=? AND idem_key=?", (owner or "", idempotency_key))
            .fetchone()
        )
        return row["id"] if row else None

    def sync_items(
        self, job_id: str, items: list[WorkItem], *, retry_failed: bool = True, fresh: bool = False
    ) -> dict[str, int]:
        """Make a job's items match a (re-read) manifest, keeping finished work.

        Done items whose work is unchanged stay done (a resume skips them); new items are
        added; changed ones, and with ``retry_failed`` failed or cancelled ones, are queued
        again with fresh attempts. ``fresh`` queues everything again.
        """
        conn = self._conn()
        counts = {"added": 0, "kept": 0, "requeued": 0, "removed": 0}
        with self._tx(conn):
            conn.execute("UPDATE jobs SET state='active' WHERE id=?", (job_id,))
            have = {
                r["key"]: r
                for r in conn.execute("SELECT id, key, fingerprint, state FROM items WHERE job_id=?", (job_id,))
            }
            wanted = {w.key for w in items}
            for w in items:
                row = have.get(w.key)
                if row is None:
                    conn.execute(
                        "INSERT INTO items(job_id, key, fingerprint, spec, priority) "
                        "VALUES (?,?,?,?,(SELECT priority FROM jobs WHERE id=?))",
                        (job_id, w.key, w.fingerprint, json.dumps(w.spec()), job_id),
                    )
                    counts["added"] += 1
                    continue
                again = (
                    fresh
                    or row["fingerprint"] != w.fingerprint
                    or (retry_failed and row["state"] in ("failed", "cancelled"))
                )
                if again and row["state"] != "running":
                    conn.execute(
                        "UPDATE items SET state='queued', attempts=0, error=NULL, quarantined=0, "
                        "not_before=0, fingerprint=?, spec=?, checksum=NULL, size=NULL, result=NULL, "
                        "started=NULL, finished=NULL, seconds=NULL WHERE id=?",
                        (w.fingerprint, json.dumps(w.spec()), row["id"]),
                    )
                    counts["requeued"] += 1
                else:
                    counts["kept"] += 1
            gone = [
                r["id"]
                for k, r in have.items()
                if k not in wanted and r["state"] != "running" and r["state"] != "cancelled"
            ]
            for item_id in gone:  # items the manifest no longer names: not run, not counted
                conn.execute(
                    "UPDATE items SET state='cancelled', error='no longer in the manifest' WHERE id=?", (item_id,)
                )
            counts["removed"] = len(gone)
        return counts

    def requeue_missing_outputs(self, job_id: str, exists: Callable[[str], bool]) -> int:
        """Done items whose output file has vanished are queued again (``exists(path) -> bool``)."""
        conn = self._conn()
        lost = [
            r["id"]
            for r in conn.execute("SELECT id, spec FROM items WHERE job_id=? AND state='done'", (job_id,))
            if not exists(json.loads(r["spec"])["output"])
        ]
        if lost:
            with self._tx(conn):
                conn.executemany(
                    "UPDATE items SET state='queued', attempts=0, checksum=NULL, error=NULL "
                    "WHERE id=? AND state='done'",
                    [(i,) for i in lost],
                )
        return len(lost)

    def cancel(self, job_id: str) -> int:
        """Queued items are cancelled now; running ones finish their current item."""
        conn = self._conn()
        with self._tx(conn):
            self._require_job(conn, job_id)
            conn.execute("UPDATE jobs SET state='cancelled' WHERE id=?", (job_id,))
            cur = conn.execute(
                "UPDATE items SET state='cancelled', error='cancelled', finished=? WHERE job_id=? AND state='queued'",
                (time.time(), job_id),
            )
            return cur.rowcount

    def update_meta(self, job_id: str, **values: Any) -> None:
        conn = self._conn()
        with self._tx(conn):
            row = self._require_job(conn, job_id)
            conn.execute(
                "UPDATE jobs SET meta=? WHERE id=?", (json.dumps({**json.loads(row["meta"]), **values}), job_id)
            )

    def pending_webhooks(self) -> list[str]:
        rows = (
            self._conn()
            .execute(
                "SELECT id FROM jobs WHERE json_extract(meta, '$.webhook') IS NOT NULL "
                "AND json_extract(meta, '$.webhook_sent') IS NULL ORDER BY created, id"
            )
            .fetchall()
        )
        return [r["id"] for r in rows]

    # -- workers ---------------------------------------------------------------------------------
    def _expire_leases(self, conn: sqlite3.Connection, now: float, job_id: str | None) -> None:
        """Items of lost workers go back to the queue, or to quarantine when out of attempts."""
        scope, args = ("AND i.job_id=?", (job_id,)) if job_id else ("", ())
        conn.execute(
            "UPDATE items AS i SET state='failed', quarantined=1, lease_owner=NULL, finished=?, "
            "error='quarantined: its worker was lost on each of ' || i.attempts || ' attempts "
            "(it may crash or hang the worker)' "
            f"FROM jobs j WHERE j.id=i.job_id AND i.state='running' AND i.lease_expires<? "
            f"AND i.attempts>=j.max_attempts {scope}",
            (now, now, *args),
        )
        conn.execute(
            "UPDATE items SET state='queued', lease_owner=NULL, error='lease expired: worker lost' "
            f"WHERE state='running' AND lease_expires<? {scope.replace('i.', '')}",
            (now, *args),
        )

    def claim(self, worker: str, *, job_id: str | None = None, lease_s: float = DEFAULT_LEASE_S) -> Claim | None:
        now = time.time()
        conn = self._conn()
        with self._tx(conn):
            self._expire_leases(conn, now, job_id)
            scope, args = ("AND i.job_id=?", (job_id,)) if job_id else ("", ())
            row = conn.execute(
                "SELECT i.id FROM items i JOIN jobs j ON j.id=i.job_id WHERE i.state='queued' AND i.not_before<=? "
                f"AND j.state='active' {scope} ORDER BY i.priority DESC, i.not_before, i.id LIMIT 1",
                (now, *args),
            ).fetchone()
            if row is None:
                return None
            got = conn.execute(
                "UPDATE items SET state='running', lease_owner=?, lease_expires=?, attempts=attempts+1, "
                "started=coalesce(started, ?), progress_done=NULL, progress_total=NULL, progress_unit=NULL "
                "WHERE id=? RETURNING id, job_id, key, attempts, spec",
                (worker, now + lease_s, now, row["id"]),
            ).fetchone()
        return Claim(
            got["id"],
            got["job_id"],
            got["key"],
            got["attempts"],
            WorkItem.from_spec(got["key"], json.loads(got["spec"])),
        )

    def heartbeat(self, worker: str, item_ids: Iterable[int], *, lease_s: float = DEFAULT_LEASE_S) -> set[int]:
        """Extend the leases this worker still holds; returns those ids (a missing id: lease lost
        or job cancelled, so stop working on it)."""
        ids = list(item_ids)
        if not ids:
            return set()
        conn = self._conn()
        marks = ",".join("?" * len(ids))
        with self._tx(conn):
            rows = conn.execute(
                f"UPDATE items SET lease_expires=? WHERE lease_owner=? AND state='running' AND id IN ({marks}) "
                "AND job_id IN (SELECT id FROM jobs WHERE state='active') RETURNING id",
                (time.time() + lease_s, worker, *ids),
            ).fetchall()
        return {r["id"] for r in rows}

    def complete(
        self,
        item_id: int,
        worker: str,
        *,
        checksum: str,
        size: int,
        seconds: float,
        result: dict[str, Any] | None = None,
    ) -> bool:
        """Done, with its checksum, in one transaction; False (and no change) unless this worker holds
        the item's lease, so a lingering worker cannot mark an item done twice."""
        conn = self._conn()
        with self._tx(conn):
            cur = conn.execute(
                "UPDATE items SET state='done', lease_owner=NULL, lease_expires=NULL, finished=?, seconds=?, "
                "checksum=?, size=?, result=?, error=NULL WHERE id=? AND state='running' AND lease_owner=?",
                (time.time(), seconds, checksum, size, json.dumps(result or {}), item_id, worker),
            )
            return cur.rowcount == 1

    def fail(self, item_id: int, worker: str, reason: str, *, transient: bool) -> str:
        """A permanent failure fails the item now; a transient one is retried after a backoff
        (1 s, 2 s, 4 s ...) until the job's attempts are used up, then quarantined."""
        now = time.time()
        conn = self._conn()
        with self._tx(conn):
            row = conn.execute(
                "SELECT i.attempts, j.max_attempts FROM items i JOIN jobs j ON j.id=i.job_id "
                "WHERE i.id=? AND i.state='running' AND i.lease_owner=?",
                (item_id, worker),
            ).fetchone()
            if row is None:
                return "lost"
            if transient and row["attempts"] < row["max_attempts"]:
                delay = min(BACKOFF_MAX_S, self.backoff_base_s * 2 ** (row["attempts"] - 1))
                conn.execute(
                    "UPDATE items SET state='queued', lease_owner=NULL, not_before=?, error=? WHERE id=?",
                    (now + delay, f"retrying: {reason}", item_id),
                )
                return "queued"
            quarantine = transient  # a transient error on every attempt: a poison item
            text = f"quarantined after {row['attempts']} attempts: {reason}" if quarantine else reason
            conn.execute(
                "UPDATE items SET state='failed', quarantined=?, lease_owner=NULL, finished=?, error=? WHERE id=?",
                (int(quarantine), now, text, item_id),
            )
            return "failed"

    def release(self, item_id: int, worker: str, *, state: str = "queued", reason: str | None = None) -> bool:
        """Give an item back without counting the attempt (clean shutdown), or cancel it. An item
        of a cancelled job is cancelled rather than queued again."""
        conn = self._conn()
        with self._tx(conn):
            job = conn.execute(
                "SELECT j.state FROM items i JOIN jobs j ON j.id=i.job_id WHERE i.id=?", (item_id,)
            ).fetchone()
            if state == "queued" and job is not None and job["state"] == "cancelled":
                state, reason = "cancelled", "cancelled"
            cur = conn.execute(
                "UPDATE items SET state=?, lease_owner=NULL, error=?, finished=CASE WHEN ?='cancelled' THEN ? "
                "ELSE finished END, attempts=CASE WHEN ?='queued' THEN max(attempts-1, 0) ELSE attempts END "
                "WHERE id=? AND state='running' AND lease_owner=?",
                (state, reason, state, time.time(), state, item_id, worker),
            )
            return cur.rowcount == 1

    def progress(self, item_id: int, worker: str, done: int, total: int, unit: str) -> bool:
        """Record how far the running item is; False when this worker no longer holds it or its job
        was cancelled (the caller then stops the work)."""
        conn = self._conn()
        with self._tx(conn):
            cur = conn.execute(
                "UPDATE items SET progress_done=?, progress_total=?, progress_unit=? WHERE id=? AND state='running' "
                "AND lease_owner=? AND job_id IN (SELECT id FROM jobs WHERE state='active')",
                (done, total, unit, item_id, worker),
            )
            return cur.rowcount == 1

    def queue_ahead(self, item_ids: Iterable[int]) -> dict[int, int]:
        """For each queued item, how many queued items will be claimed before it (the claim's order:
        priority, then readiness, then age). Items that are not queued are left out."""
        ids = list(item_ids)
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = (
            self._conn()
            .execute(
                "SELECT i.id, (SELECT count(*) FROM items q JOIN jobs j ON j.id=q.job_id WHERE q.state='queued' "
                "AND j.state='active' AND (q.priority > i.priority OR (q.priority = i.priority "
                "AND (q.not_before, q.id) < (i.not_before, i.id)))) AS ahead "
                f"FROM items i WHERE i.state='queued' AND i.id IN ({marks})",
                ids,
            )
            .fetchall()
        )
        return {r["id"]: r["ahead"] for r in rows}

    def running_count(self) -> int:
        """Items being worked on now, in any job (the workers' load, shown next to a queue position)."""
        return self._conn().execute("SELECT count(*) FROM items WHERE state='running'").fetchone()[0]

    def reclaim_dead_workers(self) -> int:
        """Expire at once the leases of this host's workers whose process is gone (kill -9), so a
        restarted batch does not wait for their leases to run out."""
        host = socket.gethostname()
        conn = self._conn()
        dead = []
        for r in conn.execute("SELECT id, lease_owner FROM items WHERE state='running'"):
            owner = (r["lease_owner"] or "").split(":")
            if len(owner) >= 3 and owner[0] == host and owner[1].isdigit() and not _pid_alive(int(owner[1])):
                dead.append(r["id"])
        if dead:
            with self._tx(conn):
                conn.executemany(
                    "UPDATE items SET lease_expires=0 WHERE id=? AND state='running'", [(i,) for i in dead]
                )
        return len(dead)

    def next_ready_in(self, job_id: str | None = None) -> float | None:
        """Seconds until some item may be claimed (0 = now), or None when nothing is left to do."""
        scope, args = ("AND job_id=?", (job_id,)) if job_id else ("", ())
        row = (
            self._conn()
            .execute(
                "SELECT min(CASE state WHEN 'queued' THEN not_before ELSE lease_expires END) AS t FROM items "
                f"WHERE state IN ('queued','running') AND job_id IN (SELECT id FROM jobs WHERE state='active') {scope}",
                args,
            )
            .fetchone()
        )
        if row["t"] is None:
            return None
        return max(0.0, row["t"] - time.time())

    # -- reading ---------------------------------------------------------------------------------
    def _require_job(self, conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            from pixelsmith.errors import NotFound

            raise NotFound(f"no job {job_id!r}")
        return row

    def job(self, job_id: str) -> JobStatus:
        conn = self._conn()
        row = self._require_job(conn, job_id)
        counts = {s: 0 for s in STATES}
        for r in conn.execute("SELECT state, count(*) AS n FROM items WHERE job_id=? GROUP BY state", (job_id,)):
            counts[r["state"]] = r["n"]
        span = conn.execute(
            "SELECT min(started) AS a, max(finished) AS b FROM items WHERE job_id=?", (job_id,)
        ).fetchone()
        total = sum(counts.values())
        remaining = counts["queued"] + counts["running"]
        rate = eta = None
        if span["a"] and counts["done"]:
            elapsed = (time.time() if remaining else span["b"]) - span["a"]
            rate = counts["done"] / elapsed if elapsed > 0 else None
            eta = remaining / rate if rate and remaining else (0.0 if not remaining else None)
        state = row["state"] if row["state"] == "cancelled" or remaining else "finished"
        return JobStatus(
            row["id"],
            row["owner"],
            row["title"],
            state,
            row["created"],
            counts,
            total,
            span["a"],
            span["b"] if not remaining else None,
            rate,
            eta,
            json.loads(row["meta"]),
            row["priority"],
        )

    def jobs(self, owner: str | None = None, limit: int = 100) -> list[JobStatus]:
        rows = (
            self._conn()
            .execute(
                "SELECT id FROM jobs WHERE (? IS NULL OR owner=?) ORDER BY created DESC LIMIT ?", (owner, owner, limit)
            )
            .fetchall()
        )
        return [self.job(r["id"]) for r in rows]

    def _record(self, r: sqlite3.Row) -> ItemRecord:
        spec = json.loads(r["spec"])
        return ItemRecord(
            r["id"],
            r["job_id"],
            r["key"],
            r["state"],
            r["attempts"],
            spec["input"],
            spec["output"],
            spec["steps"],
            r["error"],
            bool(r["quarantined"]),
            r["checksum"],
            r["size"],
            r["seconds"],
            r["started"],
            r["finished"],
            spec.get("label", ""),
            spec.get("notes", []),
            json.loads(r["result"]) if r["result"] else {},
            {"done": r["progress_done"], "total": r["progress_total"], "unit": r["progress_unit"]}
            if r["progress_total"]
            else None,
            r["priority"],
        )

    def items(
        self, job_id: str, *, state: str | None = None, offset: int = 0, limit: int | None = None
    ) -> list[ItemRecord]:
        rows = (
            self._conn()
            .execute(
                "SELECT * FROM items WHERE job_id=? AND (? IS NULL OR state=?) ORDER BY id LIMIT ? OFFSET ?",
                (job_id, state, state, -1 if limit is None else limit, offset),
            )
            .fetchall()
        )
        return [self._record(r) for r in rows]

    def item(self, item_id: int) -> ItemRecord:
        row = self._conn().execute("SELECT * FROM items WHERE id=?", (item_id,)).fetchone()
        if row is None:
            from pixelsmith.errors import NotFound

            raise NotFound(f"no item {item_id}")
        return self._record(row)


def open_store(path: str | os.PathLike) -> SQLiteJobStore:
    return SQLiteJobStore(path)
