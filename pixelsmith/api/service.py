"""What both HTTP adapters share: run a tool through the core, bounded and measured.

No wire format and no image logic here: fields in, :class:`pixelsmith.core.Output`
or a typed error out. Parsing (which decodes images) and the tool itself run in
a worker thread inside one slot of the concurrency gate. Asynchronous requests
(creative upscale) become jobs in the one jobs service
(:class:`pixelsmith.jobs.service.JobService`), which runs, stores and resumes them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pixelsmith import core
from pixelsmith.api.cost import CostBudget, request_cost
from pixelsmith.api.limits import Gate
from pixelsmith.api.metrics import Metrics
from pixelsmith.errors import InvalidRequest
from pixelsmith.jobs.service import JobService, OneResult
from pixelsmith.tools import get_tool

log = logging.getLogger("pixelsmith.server")
CHOICE_TTL = 10.0  # seconds a tool's chosen recipe is reused before installs are checked again
RESULT_TTL_S = 24 * 3600  # an asynchronous generation can be read this long after it was submitted


class Service:
    def __init__(
        self,
        gate: Gate,
        metrics: Metrics,
        jobs: JobService,
        engine: str | None = None,
        *,
        result_ttl: float = RESULT_TTL_S,
    ):
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
