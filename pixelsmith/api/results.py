"""Durable results of asynchronous REST generations (creative upscale).

``POST`` answers ``{id}`` (64 hex characters) at once; ``GET /v2beta/results/{id}``
answers 202 until the image is ready, then 200. Records live in SQLite and
images in files under ``<data_dir>/results``, so they survive a restart: a
generation that was still running when the server stopped is run again from its
saved request when the server starts. Results expire after 24 hours, and only
the key that created a generation can read it (others get 404).

The interface is small (:class:`ResultStore`) so the jobs service can replace it.
"""

from __future__ import annotations

import json
import pathlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

from pixelsmith.fsutil import atomic_write

TTL_SECONDS = 24 * 3600


@dataclass
class Result:
    id: str
    owner: str | None
    tool: str
    status: str  # "in-progress", "succeeded" or "failed"
    created: float
    format: str | None = None
    seed: int | None = None
    finish_reason: str | None = None
    error: dict[str, Any] | None = None  # {"status", "name", "errors"} of a failed generation
    path: pathlib.Path | None = None

    def data(self) -> bytes:
        assert self.path is not None
        return self.path.read_bytes()


class ResultStore:
    def __init__(self, data_dir: pathlib.Path, ttl: float = TTL_SECONDS):
        self.dir = pathlib.Path(data_dir) / "results"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ttl = ttl
        self._lock = threading.Lock()
        self._db = sqlite3.connect(pathlib.Path(data_dir) / "server.db", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, owner TEXT, tool TEXT NOT NULL,"
            " status TEXT NOT NULL, created REAL NOT NULL, format TEXT, seed INTEGER, finish_reason TEXT,"
            " error TEXT)"
        )

    def create(self, tool: str, request: dict[str, Any], owner: str | None) -> str:
        gen_id = secrets.token_hex(32)
        atomic_write(self.dir / f"{gen_id}.request.json", json.dumps({"tool": tool, "request": request}).encode())
        with self._lock:
            self._db.execute(
                "INSERT INTO results (id, owner, tool, status, created) VALUES (?,?,?,?,?)",
                (gen_id, owner, tool, "in-progress", time.time()),
            )
        return gen_id

    def saved_request(self, gen_id: str) -> dict[str, Any] | None:
        path = self.dir / f"{gen_id}.request.json"
        return json.loads(path.read_bytes())["request"] if path.exists() else None

    def succeed(self, gen_id: str, data: bytes, fmt: str, seed: int, finish_reason: str) -> None:
        atomic_write(self.dir / f"{gen_id}.{fmt}", data)
        with self._lock:
            self._db.execute(
                "UPDATE results SET status='succeeded', format=?, seed=?, finish_reason=? WHERE id=?",
                (fmt, seed, finish_reason, gen_id),
            )
        (self.dir / f"{gen_id}.request.json").unlink(missing_ok=True)

    def fail(self, gen_id: str, status: int, name: str, errors: list[str]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE results SET status='failed', error=? WHERE id=?",
                (json.dumps({"status": status, "name": name, "errors": errors}), gen_id),
            )
        (self.dir / f"{gen_id}.request.json").unlink(missing_ok=True)

    def get(self, gen_id: str, owner: str | None) -> Result | None:
        """The generation, or None if unknown, expired, or created by another key."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, owner, tool, status, created, format, seed, finish_reason, error FROM results WHERE id=?",
                (gen_id,),
            ).fetchone()
        if row is None or row[1] != owner or time.time() - row[4] > self.ttl:
            return None
        result = Result(*row[:8], error=json.loads(row[8]) if row[8] else None)
        if result.status == "succeeded":
            result.path = self.dir / f"{gen_id}.{result.format}"
            if not result.path.exists():
                return None
        return result

    def pending(self) -> list[Result]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, owner, tool, status, created FROM results WHERE status='in-progress'"
            ).fetchall()
        return [Result(*row) for row in rows]

    def purge(self) -> int:
        """Delete generations older than the TTL; returns how many went."""
        cutoff = time.time() - self.ttl
        with self._lock:
            rows = self._db.execute("SELECT id, format FROM results WHERE created < ?", (cutoff,)).fetchall()
            self._db.execute("DELETE FROM results WHERE created < ?", (cutoff,))
        for gen_id, fmt in rows:
            for path in (self.dir / f"{gen_id}.{fmt}", self.dir / f"{gen_id}.request.json"):
                path.unlink(missing_ok=True)
        return len(rows)


class JobsResults:
    """The same interface over the jobs service (``pixelsmith.jobs``), so async REST work shares its store.

    Stability's generation ids are 64 characters. The jobs service hands out 64-hex
    job ids for single requests; should it hand out 32-character ones, the
    generation id is the job id followed by a 32-character check derived from it.
    The jobs service runs and resumes the work itself.
    """

    def __init__(self, jobs: Any, ttl: float = TTL_SECONDS):
        self.jobs = jobs
        self.ttl = ttl

    @staticmethod
    def _check(job_id: str) -> str:
        import hashlib

        return hashlib.sha256(f"pixelsmith-generation:{job_id}".encode()).hexdigest()[:32]

    def submit(self, tool: str, fields: dict[str, Any], owner: str | None) -> str:
        job_id = self.jobs.submit_one(tool, fields, owner=owner)
        return job_id if len(job_id) == 64 else job_id + self._check(job_id)

    def get(self, gen_id: str, owner: str | None) -> Any:
        if len(gen_id) != 64:
            return None
        result = self.jobs.result(gen_id, owner)
        if result is None and gen_id[32:] == self._check(gen_id[:32]):
            result = self.jobs.result(gen_id[:32], owner)
        if result is None or time.time() - result.created > self.ttl:
            return None
        if result.status == "succeeded" and (result.path is None or not pathlib.Path(result.path).exists()):
            return None
        return result

    def pending(self) -> list[Result]:
        return []  # the jobs service picks up its own unfinished work

    def purge(self) -> int:
        return 0
