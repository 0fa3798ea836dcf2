"""What a recipe is made of: its declaration, the context it runs in, and what it returns.

A recipe is how one engine serves one tool. It lives in
``pixelsmith/engines/<engine>/recipes/<tool>.py`` and is declared with :func:`recipe`::

    @recipe(TOOL, engine="embedded", models=["isnet-general"], priority=10)
    def remove_background(req: RemoveBackgroundRequest, ctx: Context) -> ToolResult: ...

The engine finds it by importing that module (:meth:`pixelsmith.engines.Engine.recipe`); nothing
else registers it. Recipe modules are imported whenever the tool list is read, so they import heavy
modules lazily (``pixelsmith.lazy``) or inside the function.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from PIL import Image

from pixelsmith.tools.base import Tool, ToolRequest

Progress = Callable[[int, int], None]  # what a recipe calls: (done, total)
R = TypeVar("R", bound=ToolRequest)
S = TypeVar("S")


@dataclass
class ToolResult:
    """What a recipe returns: the image plus what the caller should know about it."""

    image: Image.Image
    finish_reason: str = "SUCCESS"
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """What a recipe may use besides its request: its engine's models, the seed, progress reporting."""

    engine: str
    seed: int
    progress: Progress | None = None

    def session(self, model: str, kind: type[S]) -> S:
        """The loaded catalogue model ``model``, checked to be a ``kind`` (a protocol of
        :mod:`pixelsmith.engines.sessions`): one load per process, shared by every request."""
        from pixelsmith.engines import ENGINES

        found = ENGINES[self.engine].session(model)
        if not isinstance(found, kind):
            raise TypeError(f"{self.engine} session {model!r} is a {type(found).__name__}, not a {kind.__name__}")
        return found

    def report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(done, total)


@dataclass(frozen=True, eq=False)
class Recipe(Generic[R]):
    """How one engine serves one tool: the models it needs and the steps to run."""

    tool: Tool
    engine: str
    models: tuple[str, ...]
    run: Callable[[R, Context], ToolResult]
    priority: int = 0  # higher wins when several engines can serve a tool
    note: str = ""
    progress_unit: str = "step"  # what the recipe's ctx.progress(done, total) counts: tile, level, iteration...
    packages: tuple[str, ...] = ()  # importable modules this recipe needs beyond its engine's (an extra's)

    def __call__(self, req: R, ctx: Context) -> ToolResult:
        return self.run(req, ctx)


def recipe(
    tool: Tool,
    *,
    engine: str,
    models: tuple[str, ...] | list[str] = (),
    priority: int = 0,
    note: str = "",
    progress_unit: str = "step",
    packages: tuple[str, ...] = (),
) -> Callable[[Callable[[R, Context], ToolResult]], Recipe[R]]:
    """Declare ``fn(request, ctx) -> ToolResult`` as ``engine``'s recipe for ``tool``.

    ``models`` are catalogue names that must be installed for the recipe to run;
    ``progress_unit`` names what its ``ctx.progress(done, total)`` counts (shown as "Tile 3 of 16");
    ``packages`` are Python modules it needs beyond its engine's (a pip extra), checked before it is chosen."""

    def declare(fn: Callable[[R, Context], ToolResult]) -> Recipe[R]:
        return Recipe(tool, engine, tuple(models), fn, priority, note, progress_unit, tuple(packages))

    return declare
