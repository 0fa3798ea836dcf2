"""The in-process job service a server runs: a store, a spool folder and worker threads.

The jobs API submits manifests and uploads here, and the REST async results
(creative upscale, ``GET /v2beta/results/{id}``) use :meth:`JobService.submit_one` /
:meth:`JobService.result`: every asynchronous piece of work lives in the one store,
survives restarts (queued and leased items are picked up again by the next
server), and is bookkept exactly once. There is no other results store.
"""

from __future__ import annotations

import io
import json
import logging
import os
import pathlib
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pixelsmith.jobs.manifest import EXT_FOR_FORMAT, Step, WorkItem, check_step
from pixelsmith.jobs.store import DEFAULT_LEASE_S, PRIORITY_BATCH, JobStore, SQLiteJobStore
from pixelsmith.jobs.worker import work_loop

log = logging.getLogger("pixelsmith.jobs")


def default_root() -> pathlib.Path:
    from pixelsmith import config

    return pathlib.Path(os.environ.get("PIXELSMITH_JOBS") or config.home() / "jobs").expanduser()


@dataclass
class OneResult:
    """One submitted generation (:meth:`JobService.submit_one`), as ``GET /v2beta/results/{id}`` answers it."""

    id: str
    owner: str | None
    tool: str
    status: str  # in-progress | succeeded | failed
    created: float
    format: str | None = None
    seed: int | None = None
    finish_reason: str | None = None
    error: dict[str, Any] | None = None
    path: pathlib.Path | None = None

    def data(self) -> bytes:
        assert self.path is not None
        return self.path.read_bytes()


class JobService:
    def __init__(
        self,
        root: str | os.PathLike | None = None,
        *,
        threads: int = 1,
        lease_s: float = DEFAULT_LEASE_S,
        store: JobStore | None = None,
    ):
        self.root = pathlib.Path(root) if root else default_root()
        from pixelsmith.fsutil import ensure_dir

        ensure_dir(self.root)  # private (0700) inside the server's private data dir
        self.store: JobStore = store or SQLiteJobStore(self.root / "jobs.db")
        self.threads = threads
        self.lease_s = lease_s
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._wake = threading.Event()
        from pixelsmith.jobs import webhooks

        self.webhook_key: bytes | None = None  # the server sets its master key (per-key signing secrets)
        self.webhook_attempts = webhooks.MAX_ATTEMPTS
        self.webhook_backoff_s = webhooks.BACKOFF_BASE_S

    # -- workers ---------------------------------------------------------------------------------
    def start(self) -> JobService:
        """Worker threads that drain every job in the store (models load once, in this process)."""
        if not self._workers:
            self.store.reclaim_dead_workers()
            for n in range(self.threads):
                t = threading.Thread(target=self._loop, name=f"pixelsmith-job-worker-{n}", daemon=True)
                t.start()
                self._workers.append(t)
            threading.Thread(target=self._notifier, name="pixelsmith-job-webhooks", daemon=True).start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            work_loop(self.store, lease_s=self.lease_s, stop=self._stop)
            self._wake.wait(0.5)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._workers:
            t.join(timeout=30)
        self._workers.clear()

    def poke(self) -> None:
        self._wake.set()

    # -- submitting --------------------------------------------------------------------------------
    def spool(self, job_tag: str, name: str, data: bytes) -> str:
        from pixelsmith.fsutil import atomic_write

        path = self.root / "inputs" / job_tag / name
        atomic_write(path, data)
        return str(path)

    def submit(
        self,
        items: list[WorkItem],
        *,
        owner: str | None = None,
        idempotency_key: str | None = None,
        title: str = "",
        meta: dict[str, Any] | None = None,
        priority: int = PRIORITY_BATCH,
    ) -> tuple[str, bool]:
        job_id, created = self.store.create_job(
            items, owner=owner, idempotency_key=idempotency_key, title=title, meta=meta, priority=priority
        )
        self.poke()
        return job_id, created

    def output_dir(self, tag: str) -> pathlib.Path:
        return self.root / "outputs" / tag

    def submit_one(
        self, tool: str, fields: dict[str, Any], *, owner: str | None = None, idempotency_key: str | None = None
    ) -> str:
        """One tool on one request (images as PIL, bytes or base64) -> a job id to poll with ``result``."""
        from pixelsmith.tools import get_tool
        from pixelsmith.tools.base import coerce_image

        spec = get_tool(tool)
        model = spec.request
        primary = model.primary_image()
        tag = uuid.uuid4().hex
        step_fields: dict[str, Any] = {}
        input_path = None
        for name, value in fields.items():
            if value is None:
                continue
            if name in model.image_fields():
                img = coerce_image(value, name, _any_rule())
                buf = io.BytesIO()
                img.save(buf, "PNG")
                path = self.spool(tag, f"{name}.png", buf.getvalue())
                if name == primary:
                    input_path = path
                else:
                    step_fields[name] = path
            else:
                step_fields[name] = value
        if input_path is None and primary and model.model_fields[primary].is_required():
            from pixelsmith.errors import InvalidRequest

            raise InvalidRequest.one(primary, "is required")
        # no primary image (text-to-image): the item has no input and its tool makes the picture
        step = check_step(Step(spec.name, step_fields), str(self.root), "request", has_input=input_path is not None)
        ext = EXT_FOR_FORMAT.get(step.fields.get("output_format", "png"), "png")
        out = str(self.output_dir(tag) / f"result.{ext}")
        import secrets

        job_id, _ = self.store.create_job(
            [WorkItem(out, input_path, [step], out, label=spec.name)],
            owner=owner,
            idempotency_key=idempotency_key,
            title=spec.name,
            meta={"kind": "one", "tool": spec.name},
            job_id=secrets.token_hex(32),
        )  # 64 hex: the REST results id shape
        self.poke()
        return job_id

    def result(self, job_id: str, owner: str | None = None, *, max_age: float | None = None) -> OneResult | None:
        """The single-item job's outcome, or None if unknown, another key's, older than ``max_age``
        seconds, or succeeded but its output file is gone."""
        from pixelsmith.errors import NotFound

        try:
            status = self.store.job(job_id)
        except NotFound:
            return None
        if status.owner != owner or (max_age is not None and time.time() - status.created > max_age):
            return None
        item = self.store.items(job_id, limit=1)[0]
        tool = item.steps[-1]["tool"] if item.steps else ""
        res = OneResult(job_id, owner, tool, "in-progress", status.created)
        if item.state == "done":
            last = (item.result.get("steps") or [{}])[-1]
            res.status, res.format, res.seed = "succeeded", item.result.get("format"), last.get("seed", 0)
            res.finish_reason, res.path = "SUCCESS", pathlib.Path(item.output)
            if not res.path.exists():
                return None
        elif item.state in ("failed", "cancelled"):
            res.status = "failed"
            res.error = {"status": 500 if item.quarantined else 400, "name": item.state, "errors": [item.error or ""]}
        return res

    # -- webhooks --------------------------------------------------------------------------------
    def webhook_secret(self, owner: str | None) -> str:
        """The key's webhook signing secret (``GET /v1/webhook-secret``), derived from the master key."""
        from pixelsmith.jobs.webhooks import webhook_secret

        if self.webhook_key is None:  # no server key store: a master key of the service's own
            from pixelsmith.api.auth import _master_key

            self.webhook_key = _master_key(self.root / "webhook.key")
        return webhook_secret(self.webhook_key, owner)

    def _notifier(self) -> None:
        while not self._stop.wait(1.0):
            try:
                self.notify_finished()
            except Exception:  # noqa: BLE001 - the notifier keeps running; the operator sees why it failed
                log.exception("webhook notifier: reading the job store failed")

    def notify_finished(self, now: float | None = None) -> int:
        """One pass: attempt each finished job's due ``job.finished`` webhook (see
        :mod:`pixelsmith.jobs.webhooks`); returns how many were delivered (answered 2xx) in it.
        A failed attempt is retried after a backoff, up to ``webhook_attempts`` attempts; a delivered
        or given-up event is never sent again. One pass at a time per folder (a file lock), so
        several server processes on one store do not deliver an event twice."""
        import fcntl

        with open(self.root / "webhooks.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._notify_pass(time.time() if now is None else now)

    def _notify_pass(self, now: float) -> int:
        from pixelsmith.errors import Forbidden
        from pixelsmith.jobs.webhooks import EVENT, backoff, check_destination, deliver

        delivered = 0
        for job in self.store.pending_webhooks():
            status = self.store.job(job)
            meta = status.meta
            if status.remaining or float(meta.get("webhook_next") or 0) > now:
                continue
            attempts = int(meta.get("webhook_attempts") or 0) + 1
            try:
                url = check_destination(meta.get("webhook"))
            except Forbidden as exc:  # checked at submission; the host may resolve elsewhere now
                log.warning("webhook for job %s refused: %s", job, exc.message)
                self.store.update_meta(job, webhook_sent=now, webhook_delivered=False, webhook_error=exc.message)
                continue
            body = status.as_dict()
            body["meta"] = {k: v for k, v in meta.items() if k in ("kind", "tool")}
            event_id = f"{job}:{EVENT}"  # the same on every attempt: the receiver's key for the event
            event: dict[str, Any] = {"id": event_id, "event": EVENT, "created": now, "job": body}
            ok, what = deliver(url, event, self.webhook_secret(status.owner), event_id)
            if ok:
                self.store.update_meta(
                    job, webhook_sent=time.time(), webhook_delivered=True, webhook_attempts=attempts, webhook_error=None
                )
                delivered += 1
            elif attempts >= self.webhook_attempts:
                log.warning("webhook for job %s to %s failed %d times, giving up: %s", job, url, attempts, what)
                self.store.update_meta(
                    job,
                    webhook_sent=time.time(),
                    webhook_delivered=False,
                    webhook_attempts=attempts,
                    webhook_error=what,
                )
            else:
                wait = backoff(attempts, self.webhook_backoff_s)
                log.warning("webhook for job %s to %s failed (%s); retrying in %.0f s", job, url, what, wait)
                self.store.update_meta(job, webhook_attempts=attempts, webhook_next=now + wait, webhook_error=what)
        return delivered


def _any_rule() -> Any:
    from pixelsmith.imaging.rules import HARD_MAX_PIXELS, ImageRule

    return ImageRule(min_side=1, min_pixels=1, max_pixels=HARD_MAX_PIXELS)  # the tool's own rule runs later


def dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)
