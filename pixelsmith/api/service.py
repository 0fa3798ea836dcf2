"""What both HTTP adapters share: run a tool through the core, bounded and measured.

No wire format and no image logic here: fields in, :class:`pixelsmith.core.Output`
or a typed error out. Parsing (which decodes images) and the tool itself run in
a worker thread inside one slot of the concurrency gate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pixelsmith import core
from pixelsmith.api.cost import CostBudget, request_cost
from pixelsmith.api.limits import Gate
from pixelsmith.api.metrics import Metrics
from pixelsmith.api.results import JobsResults, ResultStore
from pixelsmith.errors import InvalidRequest, PixelsmithError
from pixelsmith.tools import get_tool

log = logging.getLogger("pixelsmith.server")
CHOICE_TTL = 10.0  # seconds a tool's chosen recipe is reused before installs are checked again


class Service:
    def __init__(self, gate: Gate, metrics: Metrics, results: ResultStore | JobsResults, engine: str | None = None):
        self.gate = gate
        # Where tool runs go: None runs them in this process; Ray Serve's gateway sets its
        # ServeBackend (``run(tool, request, engine) -> core.Output``, see pixelsmith.jobs.ray_serve).
        self.backend: Any = None
        self.metrics = metrics
        self.results = results
        self.engine = engine
        self._loaded: set[tuple[str, str]] = set()
        self._choices: dict[str, tuple[float, Any]] = {}
        self._tasks: set[asyncio.Task] = set()
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
        self, tool_name: str, fields: dict[str, Any], engine: str | None = None, who: str | None = None
    ) -> core.Output:
        """``engine`` (the X-Pixelsmith-Engine header) forces an engine for this request only; ``who`` is the
        caller whose cost budget pays for it."""
        cost = await self.admit(tool_name, fields, who)
        self.metrics.queue_depth.inc()
        queued = True
        try:
            async with self.gate.slot(cost):
                self.metrics.queue_depth.dec()
                queued = False
                return await self._in_thread(self._parse_and_run, tool_name, fields, engine)
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

    def _parse_and_run(self, tool_name: str, fields: dict[str, Any], engine: str | None = None) -> core.Output:
        tool, request = core.parse(tool_name, fields)
        return self._run_parsed(tool.name, request, engine)

    def _run_parsed(self, tool_name: str, request: Any, engine: str | None = None) -> core.Output:
        tool = get_tool(tool_name)
        recipe = core.choose(tool, engine) if engine else self._choose(tool)
        if self.backend is not None:
            out = self.backend.run(tool.name, request, recipe.engine)
        else:
            self._load_models(recipe)
            out = core.run(tool.name, request, engine=recipe.engine)
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
        """Validate now (so bad requests fail at once), run later; returns the generation id."""
        cost = await self.admit(tool_name, fields, who or owner)
        async with self.gate.slot(cost):
            request = await self._in_thread(self._validate, tool_name, fields)
        if hasattr(self.results, "submit"):  # the jobs service runs it
            import anyio

            return await anyio.to_thread.run_sync(self.results.submit, tool_name, fields, owner)
        gen_id = self.results.create(tool_name, request.model_dump(mode="json"), owner)
        self._spawn(gen_id, tool_name, request)
        return gen_id

    def _validate(self, tool_name: str, fields: dict[str, Any]) -> Any:
        tool, request = core.parse(tool_name, fields)
        self._choose(tool)  # refuse now if no engine can serve it
        return request

    def _spawn(self, gen_id: str, tool_name: str, request: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._finish(gen_id, tool_name, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish(self, gen_id: str, tool_name: str, request: Any) -> None:
        try:
            while True:
                try:
                    async with self.gate.slot():
                        out = await self._in_thread(self._run_parsed, tool_name, request)
                    break
                except PixelsmithError as exc:
                    if exc.status != 503:
                        raise
                    await asyncio.sleep(1.0)  # the gate was full: an accepted generation waits its turn
            self.results.succeed(gen_id, out.data, out.format, out.seed, out.finish_reason)
        except PixelsmithError as exc:
            self.results.fail(gen_id, exc.status, exc.code, exc.details)
        except Exception:  # noqa: BLE001 - recorded for the poller, logged for the operator
            log.exception("generation %s failed", gen_id)
            self.results.fail(
                gen_id, 500, "internal_error", ["An unexpected server error has occurred, please try again later."]
            )

    def resume(self) -> int:
        """Re-run generations a previous server process accepted but did not finish."""
        count = 0
        for pending in self.results.pending():
            saved = self.results.saved_request(pending.id)
            if saved is None:
                self.results.fail(pending.id, 500, "internal_error", ["the server restarted and lost this request"])
                continue
            try:
                request = get_tool(pending.tool).parse(saved)
            except PixelsmithError as exc:
                self.results.fail(pending.id, exc.status, exc.code, exc.details)
                continue
            self._spawn(pending.id, pending.tool, request)
            count += 1
        return count

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
