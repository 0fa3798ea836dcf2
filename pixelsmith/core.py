"""The one core every front end calls: validate, choose an engine, run the recipe, encode.

The CLI, the Python API, both HTTP adapters and the job workers all go through
:func:`run`; none of them holds image logic of its own.
"""

from __future__ import annotations

import contextlib
import importlib.util
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from pixelsmith.engines import ENGINES, BatchGroup
from pixelsmith.engines.recipe import Context, Recipe
from pixelsmith.errors import InvalidRequest, Missing, PixelsmithError, ToolUnavailable
from pixelsmith.imaging.encode import encode, mime_for
from pixelsmith.models import get_model, is_installed
from pixelsmith.tools import get_tool
from pixelsmith.tools.base import MAX_SEED, Tool, ToolRequest

RunProgress = Callable[[int, int, str], None]  # what a caller of run hears: (done, total, unit)

__all__ = ["Context", "Output", "Recipe", "availability", "choose", "recipes_for", "run", "run_many"]


@dataclass
class Output:
    """A finished result, encoded as the request's ``output_format`` asked."""

    tool: str
    engine: str
    image: Image.Image
    data: bytes
    format: str
    seed: int
    finish_reason: str = "SUCCESS"
    seconds: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def mime(self) -> str:
        return mime_for(self.format)

    def save(self, path: str) -> None:
        from pixelsmith.fsutil import atomic_write

        atomic_write(path, self.data)


def recipes_for(tool: Tool) -> dict[str, Recipe[Any]]:
    """Every engine's recipe for ``tool``, by engine name (engines that do not serve it are absent)."""
    return {name: r for name, engine in ENGINES.items() if (r := engine.recipe(tool.name)) is not None}


def missing_for(recipe: Recipe[Any]) -> Missing | None:
    """What the recipe's engine lacks on this machine, or None when it can run."""
    engine = ENGINES[recipe.engine]
    packages = engine.missing_packages() + [p for p in recipe.packages if importlib.util.find_spec(p) is None]
    if packages:
        return Missing(recipe.engine, [], engine.install, f"needs Python packages {', '.join(packages)}")
    absent = [m for m in recipe.models if not is_installed(m)]
    if absent:
        # Models chosen by what is installed (the diffusers model families) also say what else would serve.
        alternatives = getattr(recipe.models, "alternatives", None)
        return Missing(
            recipe.engine,
            absent,
            get_model(absent[0]).command if len(absent) == 1 else _command_for(absent),
            alternatives() if alternatives else "",
        )
    return None


def _command_for(models: list[str]) -> str:
    kinds = {get_model(m).command.split(" ")[2] for m in models}
    if kinds == {"fetch"}:
        return "pixelsmith models fetch"
    return "pixelsmith models pull " + " ".join(models)


def availability(tool: Tool) -> tuple[Recipe[Any] | None, list[Missing]]:
    """The best recipe that can run now, and what each other engine lacks."""
    missing: list[Missing] = []
    ready: list[Recipe[Any]] = []
    recipes = recipes_for(tool)
    for recipe in sorted(recipes.values(), key=lambda r: -r.priority):
        gap = missing_for(recipe)
        if gap:
            missing.append(gap)
        else:
            ready.append(recipe)
    if not recipes:
        missing.append(Missing("no", [], "", "has a recipe for this tool yet"))
    return (ready[0] if ready else None), missing


def servable_recipes(engine: str | None = None) -> list[Recipe[Any]]:
    """For every tool, the recipe that serves it here (the best installed one, or ``engine``'s),
    leaving out tools that cannot run: what a server or replica loads at start."""
    from pixelsmith.tools import all_tools

    found = []
    for tool in all_tools():
        recipe = ENGINES[engine].recipe(tool.name) if engine else availability(tool)[0]
        if recipe is not None and missing_for(recipe) is None:
            found.append(recipe)
    return found


def choose(tool: Tool, engine: str | None) -> Recipe[Any]:
    """The recipe that will serve ``tool``: ``engine``'s when one is forced, else the best installed one."""
    if engine:
        if engine not in ENGINES:
            raise InvalidRequest.one("engine", f"unknown engine {engine!r}; engines: {', '.join(ENGINES)}")
        recipe = ENGINES[engine].recipe(tool.name)
        if recipe is None:
            raise ToolUnavailable(tool.name, [Missing(engine, [], "", f"has no recipe for {tool.name}")])
        gap = missing_for(recipe)
        if gap:
            raise ToolUnavailable(tool.name, [gap])
        return recipe
    recipe, missing = availability(tool)
    if recipe is None:
        raise ToolUnavailable(tool.name, missing)
    return recipe


def load_model(engine: str, model: str) -> None:
    """Load ``model`` on ``engine`` now (a server's preload), so the first request does not pay for it."""
    ENGINES[engine].session(model)


def resolve_seed(seed: int | None) -> int:
    """0 or absent means random, as both APIs define it."""
    return seed if seed else random.randint(1, MAX_SEED - 1)


def parse(tool_name: str, fields: dict[str, Any]) -> tuple[Tool, ToolRequest]:
    tool = get_tool(tool_name)
    return tool, tool.parse(fields)


def run(
    tool_name: str,
    request: ToolRequest | dict[str, Any],
    *,
    engine: str | None = None,
    progress: RunProgress | None = None,
    encoded: bool = True,
) -> Output:
    """Run one tool on one request and return the encoded result. ``progress(done, total, unit)``
    hears the recipe's reports, with the unit the chosen recipe counts in (tile, level, step...).
    ``encoded=False`` skips the encode (``data`` is empty): for a chain's intermediate steps, whose image
    goes to the next step and is never written."""
    tool = get_tool(tool_name)
    req = request if isinstance(request, ToolRequest) else tool.parse(request)
    if not isinstance(req, tool.request):
        raise InvalidRequest.one("", f"request is a {type(req).__name__}, not a {tool.request.__name__}")
    recipe = choose(tool, engine)
    seed = resolve_seed(getattr(req, "seed", 0))
    report: Callable[[int, int], None] | None = None
    if progress is not None:
        hear = progress

        def report(done: int, total: int) -> None:
            hear(done, total, recipe.progress_unit)

    ctx = Context(engine=recipe.engine, seed=seed, progress=report)
    started = time.perf_counter()
    result = recipe.run(req, ctx)
    fmt = getattr(req, "output_format", "png")
    data = encode(result.image, fmt) if encoded else b""
    elapsed = time.perf_counter() - started
    has_seed = "seed" in tool.request.model_fields
    return Output(
        tool.name,
        recipe.engine,
        result.image,
        data,
        fmt,
        seed if has_seed else 0,
        result.finish_reason,
        elapsed,
        {**result.metadata, **({"note": recipe.note} if recipe.note else {})},
    )


def run_many(
    calls: list[tuple[str, dict[str, Any] | ToolRequest]], *, engine: str | None = None
) -> list[Output | PixelsmithError]:
    """Run requests together, one thread each; returns each one's Output or its error, in order.

    The calls are announced as one group to every engine with a batching hook
    (``Engine.batch_group``: the diffusers batcher), so same-shape text-to-image
    requests among them run in one pipeline call however their threads are
    scheduled (Ray Serve's ``@serve.batch`` hands its batches here). One bad
    request comes back as its error; the others still run.
    """
    import logging
    from concurrent.futures import ThreadPoolExecutor

    from pixelsmith.tools import all_tools

    if not calls:
        return []
    for tool in all_tools():  # fill the registries before the threads look tools and recipes up
        recipes_for(tool)
    groups: list[BatchGroup] = [
        g for e in ENGINES.values() if not e.missing_packages() and (g := e.new_group(len(calls))) is not None
    ]

    def one(call: tuple[str, dict[str, Any] | ToolRequest]) -> Output | PixelsmithError:
        with contextlib.ExitStack() as members:
            for group in groups:
                members.enter_context(group.member())
            try:
                return run(call[0], call[1], engine=engine)
            except PixelsmithError as exc:
                return exc
            except Exception as exc:  # noqa: BLE001 - one request's bug must not fail its batch mates
                logging.getLogger("pixelsmith").exception("%s failed in a group run", call[0])
                error = PixelsmithError(f"{call[0]} failed: {type(exc).__name__}")
                error.__cause__ = exc
                return error

    # one thread per call: a member still waiting for a thread could not reach the batcher in time
    with ThreadPoolExecutor(max_workers=len(calls), thread_name_prefix="pixelsmith-run-many") as pool:
        return list(pool.map(one, calls))
