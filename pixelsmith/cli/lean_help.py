"""Typer's help renderer without the two rich modules pixelsmith never uses: ``rich.markdown``, ``rich.traceback``.

Typer formats every help page and usage error with :mod:`typer.rich_utils`, which imports ``rich.markdown``
(markdown-it-py, linkify, mdurl) and ``rich.traceback`` (pygments through ``rich.syntax``) at its top. Neither
is used here: ``Markdown`` only renders help in ``rich_markup_mode="markdown"`` (ours is ``"rich"``), and
``Traceback`` only draws typer's pretty exceptions (``pretty_exceptions_enable=False``). Importing them is
about a third of ``pixelsmith --help`` (bench/startup.py, docs/performance.md, start-up).

:func:`install` puts a one-shot finder on ``sys.meta_path``: when ``typer.rich_utils`` is first imported, the
two names it takes from those modules are stand-in classes, which import the real module on first use (so
behaviour is unchanged if some Typer path does use them), and the stand-in modules leave ``sys.modules`` as
soon as ``typer.rich_utils`` has run: anything else importing ``rich.markdown`` gets the real one. A Typer
whose ``rich_utils`` asks those modules for other names is imported the ordinary way. (While that one import
runs, another thread importing ``rich.markdown`` would see the stand-in: the CLI imports on one thread.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importlib.abc imports importlib.resources (~5 ms): a finder and a loader need no base class
    from importlib.abc import Loader
    from importlib.machinery import ModuleSpec

TARGET = "typer.rich_utils"
DEFERRED = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}


class _Deferred(type):
    """Metaclass of a stand-in: calling it or reading an attribute imports the real class and uses it."""

    _module: str
    _attr: str

    def real(cls) -> Any:
        return getattr(importlib.import_module(cls._module), cls._attr)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls.real()(*args, **kwargs)

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):  # typing's probes of annotations (``Markdown | Text``): not a use
            raise AttributeError(name)
        return getattr(cls.real(), name)

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, cls.real())


def _stand_in(module: str, attr: str) -> types.ModuleType:
    mod = types.ModuleType(module, f"stand-in for {module} while {TARGET} is imported (pixelsmith.cli.lean_help)")
    setattr(mod, attr, _Deferred(attr, (), {"_module": module, "_attr": attr, "__module__": module}))
    return mod


class _Loader:
    def __init__(self, real: Loader):
        self.real = real

    def __getattr__(self, name: str) -> Any:  # get_source, get_resource_reader, ...: the real loader's
        return getattr(self.real, name)

    def create_module(self, spec: ModuleSpec) -> types.ModuleType | None:
        return self.real.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        stand_ins = {name: _stand_in(name, attr) for name, attr in DEFERRED.items() if name not in sys.modules}
        sys.modules.update(stand_ins)
        try:
            self.real.exec_module(module)
        except ImportError:  # a Typer that imports more from them: the ordinary import, from a clean slate
            _drop(stand_ins)
            self.real.exec_module(module)
        finally:
            _drop(stand_ins)


def _drop(stand_ins: dict[str, types.ModuleType]) -> None:
    for name, mod in stand_ins.items():
        if sys.modules.get(name) is mod:
            del sys.modules[name]


class _Finder:
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != TARGET:
            return None
        uninstall()
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)  # type: ignore[assignment]
        return spec


_FINDER = _Finder()


def install() -> None:
    """Arrange for ``typer.rich_utils`` to be imported lean (no-op if it is already imported)."""
    if TARGET not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
