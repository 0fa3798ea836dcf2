"""What both HTTP adapters share: run a tool through the core, bounded and measured.

No wire format and no image logic here: fields in, :class:`pixelsmith.core.Output`
or a typed error out. Parsing (which decodes images) and the tool itself run in
a worker thread inside one slot of the concurrency gate. Asynchronous requests
(creative upscale) become jobs in the one jobs service
(:class:`pixelsmith.jobs.service.JobService`), which runs, stores and resumes them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from pixelsmith import core
from pixelsmith.api.cost import CostBudget, request_cost
from pixelsmith.api.limits import Gate
from pixelsmith.api.memory import is_large
from pixelsmith.api.metrics import Metrics
from pixelsmith.errors import InvalidRequest, PixelsmithError
from pixelsmith.jobs.service import JobService, OneResult
from pixelsmith.tools import get_tool

log = logging.getLogger("pixelsmith.server")
CHOICE_TTL = 10.0  # seconds a tool's chosen recipe is reused before installs are checked again
RESULT_TTL_S = 24 * 3600  # an asynchronous generation can be read this long after it was submitted
REUSE_ENV = "PIXELSMITH_REUSE_S"
REUSE_S = 60.0  # a finished run answers identical requests of the same key this long (a client's retries)
RECENT_MAX = 32  # results kept for reuse at most (their encoded bytes only)
RECENT_MAX_BYTES = 64 * 1024 * 1024  # and at most this many bytes of them
DISCONNECT_POLL_S = 0.25  # how often a waiting request checks that its client is still there


class RunCancelled(Exception):  # noqa: N818 - it is what happened, not an error of the caller
    """Raised from a run's progress report when every client waiting on it has gone: the run stops."""


class ClientGone(PixelsmithError):
    """The client disconnected before its result was ready (nobody reads this answer)."""

    code = "client_closed_request"
    status = 499


@dataclasses.dataclass
class _Shared:
    """One run in flight, and how many identical requests wait on it."""

    task: asyncio.Task[core.Output]
    cancel: threading.Event
    waiters: int = 0


def run_key(owner: str | None, route: str, engine: str | None, fields: dict[str, Any]) -> str:
    """What makes two requests the same run: the key, the route, the engine and the fields (images by hash)."""

    def part(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return "sha256:" + hashlib.sha256(value).hexdigest()
        if isinstance(value, (str, int, float, bool)) or value is None:
            return value
        if isinstance(value, (list, tuple)):
            return [part(v) for v in value]
        if isinstance(value, dict):
            return {str(k): part(v) for k, v in value.items()}
        if hasattr(value, "tobytes"):  # a PIL image or an array
            return "sha256:" + hashlib.sha256(value.tobytes()).hexdigest() + repr(getattr(value, "size", ""))
        return repr(value)

    doc = json.dumps([owner, route, engine, part(fields)], sort_keys=True, default=repr)
    return hashlib.sha256(doc.encode()).hexdigest()


def reuse_seconds(environ: Mapping[str, str] | None = None) -> float:
    """How long a finished run's result answers identical requests (``PIXELSMITH_REUSE_S``; 0: never)."""
    raw = (os.environ if environ is None else environ).get(REUSE_ENV, "")
    try:
        return max(0.0, float(raw)) if raw.strip() else REUSE_S
    except ValueError:
        return REUSE_S


_running = threading.local()  # .cancel: the cancellation event of the run on this worker thread


def _rid(request: Any) -> str:
    return str(getattr(getattr(request, "state", None), "request_id", "?"))


class Service:
    def __init__(
        self,
        gate: Gate,
        metrics: Metrics,
        jobs: JobService,
        engine: str | None = None,
        *,
        result_ttl: float = RESULT_TTL_S,
        reuse_s: float | None = None,
    ):
        self.reuse_s = reuse_seconds() if reuse_s is None else reuse_s
        self._inflight: dict[str, _Shared] = {}
        self._recent: dict[str, tuple[float, core.Output]] = {}
        self.gate = gate
        # Where tool runs go: None runs them in this process; Ray Serve's gateway sets its
        # ServeBackend (``run(tool, request, engine) -> core.Output``, see pixelsmith.jobs.ray_serve).
        self.backend: Any = None
        self.metrics = metrics
        self.jobs = jobs  # asynchronous generations live here
        self.result_ttl = result_ttl
        self.engine = engine
        self._loaded: set[tuple[str, str]] = set()
        self._choices: dict[str, tuple[float, Any]] = {}
        self.budget: CostBudget | None = None  # per-caller cost budget (create_app sets it from Settings)

    async def admit(self, tool_name: str, fields: dict[str, Any], who: str | None) -> float:
        """The request's cost (read from image headers, off the event loop), charged to ``who``'s budget."""
        import anyio

        cost = await anyio.to_thread.run_sync(request_cost, tool_name, fields)
        if self.budget is not None:
            self.budget.take(who or "anonymous", cost)  # RateLimited (429) past the budget
        return cost

    # -- synchronous requests -------------------------------------------------
    async def run(
        self,
        tool_name: str,
        fields: dict[str, Any],
        engine: str | None = None,
        who: str | None = None,
        *,
        request: Any = None,
        owner: str | None = None,
        route: str = "",
    ) -> core.Output:
        """``engine`` (the X-Pixelsmith-Engine header) forces an engine for this request only; ``who`` is the
        caller whose cost budget pays for it (only a request that starts a run pays: one that joins a run
        in flight, or is answered from a finished one, costs nothing).

        With ``request`` (an HTTP request; ``owner`` its key id, ``route`` its path): an identical
        request of the same key (same route, engine and fields) that is running is joined rather
        than started again, and one that finished less than ``reuse_s`` seconds ago is answered
        from its result, so a client's retries cost one run. When every client waiting on a run has
        disconnected, the run is cancelled at its next progress report and its slot freed."""
        if request is None:
            return await self._execute(tool_name, fields, engine, who, threading.Event())
        key = run_key(owner, route or tool_name, engine, fields)
        hit = self._recent.get(key)
        if hit is not None and hit[0] > time.monotonic():
            log.info("request %s: answered from an identical run's result", _rid(request))
            return hit[1]
        shared = self._inflight.get(key)
        if shared is None:
            cancel = threading.Event()
            shared = _Shared(asyncio.ensure_future(self._execute(tool_name, fields, engine, who, cancel)), cancel)
            self._inflight[key] = shared
            shared.task.add_done_callback(functools.partial(self._finished, key, shared))
        else:
            log.info("request %s: joined an identical run in flight", _rid(request))
        shared.waiters += 1
        try:
            while True:
                done, _ = await asyncio.wait({shared.task}, timeout=DISCONNECT_POLL_S)
                if done:
                    out = shared.task.result()
                    if is_large(out):  # the front door gives memory back once the answer is sent
                        request.state.release_memory = True
                    return out
                if await request.is_disconnected():
                    raise ClientGone("the client closed the connection before its result was ready")
        finally:
            shared.waiters -= 1
            if shared.waiters == 0 and not shared.task.done():  # nobody waits for it any more: stop it
                shared.cancel.set()
                shared.task.cancel()

    def _finished(self, key: str, shared: _Shared, task: asyncio.Task[core.Output]) -> None:
        """A shared run ended: forget it, and keep a success's result (without its decoded image) a while."""
        if self._inflight.get(key) is shared:
            del self._inflight[key]
        if task.cancelled() or task.exception() is not None or self.reuse_s <= 0:
            return  # (the exception was read: a run nobody waited for ends quietly)
        now = time.monotonic()
        for k in [k for k, (until, _) in self._recent.items() if until <= now]:
            del self._recent[k]
        # the encoded bytes are what is answered: the decoded image (the big part) is not kept
        out = dataclasses.replace(task.result(), image=None)  # type: ignore[arg-type]
        if len(out.data) > RECENT_MAX_BYTES // 4:
            return  # too big to keep around
        self._recent[key] = (now + self.reuse_s, out)
        while len(self._recent) > RECENT_MAX or sum(len(o.data) for _, o in self._recent.values()) > RECENT_MAX_BYTES:
            del self._recent[next(iter(self._recent))]

    async def _execute(
        self, tool_name: str, fields: dict[str, Any], engine: str | None, who: str | None, cancel: threading.Event
    ) -> core.Output:
        cost = await self.admit(tool_name, fields, who)
        self.metrics.queue_depth.inc()
        queued = True
        try:
            async with self.gate.slot(cost):
                self.metrics.queue_depth.dec()
                queued = False
                return await self._in_thread(self._parse_and_run, tool_name, fields, engine, cancel)
        except InvalidRequest:
            if self.budget is not None:  # refused at validation: no tool work was done
                self.budget.refund(who or "anonymous", cost)
            raise
        finally:
            if queued:
                self.metrics.queue_depth.dec()

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        import anyio

        self.metrics.running.inc()
        try:
            return await anyio.to_thread.run_sync(fn, *args, limiter=self.gate.threads)
        finally:
            self.metrics.running.dec()

    def _parse_and_run(
        self, tool_name: str, fields: dict[str, Any], engine: str | None = None, cancel: threading.Event | None = None
    ) -> core.Output:
        tool, request = core.parse(tool_name, fields)
        _running.cancel = cancel  # this worker thread's run: _run_parsed's progress reports check it
        try:
            return self._run_parsed(tool.name, request, engine)
        finally:
            _running.cancel = None

    def _run_parsed(self, tool_name: str, request: Any, engine: str | None = None) -> core.Output:
        tool = get_tool(tool_name)
        recipe = core.choose(tool, engine) if engine else self._choose(tool)
        cancel: threading.Event | None = getattr(_running, "cancel", None)

        def progress(done: int, total: int, unit: str) -> None:  # each report is a cancellation point
            if cancel is not None and cancel.is_set():
                raise RunCancelled(f"{tool.name}: cancelled at {done}/{total} {unit}: its clients went away")

        progress(0, 0, "start")
        if self.backend is not None:
            out = self.backend.run(tool.name, request, recipe.engine)
        else:
            self._load_models(recipe)
            out = core.run(tool.name, request, engine=recipe.engine, progress=progress)
        self.metrics.tool_seconds.labels(tool.name, out.engine).observe(out.seconds)
        return out

    def _choose(self, tool: Any) -> Any:
        """core.choose, remembered a few seconds: checking installs each request costs milliseconds."""
        now = time.monotonic()
        hit = self._choices.get(tool.name)
        if hit and now - hit[0] < CHOICE_TTL:
            return hit[1]
        recipe = core.choose(tool, self.engine)  # raises ToolUnavailable (not cached: installs are picked up)
        self._choices[tool.name] = (now, recipe)
        return recipe

    def _load_models(self, recipe: Any) -> None:
        """Load a recipe's models before its first run, timing each load for /metrics."""
        for model in recipe.models:
            if (recipe.engine, model) in self._loaded:
                continue
            started = time.perf_counter()
            core.load_model(recipe.engine, model)
            self.metrics.model_load.labels(model).set(time.perf_counter() - started)
            self._loaded.add((recipe.engine, model))

    def preload(self) -> list[str]:
        """Load the models of every tool this machine can serve (blocking); returns their names."""
        for recipe in core.servable_recipes(self.engine):
            self._load_models(recipe)
        return sorted(m for _, m in self._loaded)

    # -- asynchronous (REST creative upscale) ---------------------------------
    async def submit(self, tool_name: str, fields: dict[str, Any], owner: str | None, who: str | None = None) -> str:
        """Validate now (so bad requests fail at once), run later in the jobs service; returns the
        generation id (the job's id: 64 hex characters, Stability's shape). ``who`` pays its cost."""
        import anyio

        cost = await self.admit(tool_name, fields, who or owner)

        async with self.gate.slot(cost):
            await self._in_thread(self._validate, tool_name, fields)
        return await anyio.to_thread.run_sync(lambda: self.jobs.submit_one(tool_name, fields, owner=owner))

    def _validate(self, tool_name: str, fields: dict[str, Any]) -> Any:
        tool, request = core.parse(tool_name, fields)
        self._choose(tool)  # refuse now if no engine can serve it
        return request

    def result(self, gen_id: str, owner: str | None) -> OneResult | None:
        """The generation, or None if unknown, expired, another key's, or its image is gone."""
        if len(gen_id) != 64:
            return None
        return self.jobs.result(gen_id, owner, max_age=self.result_ttl)
