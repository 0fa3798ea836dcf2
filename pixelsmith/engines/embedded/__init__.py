"""The embedded engine: packaged weights on the CPU, one small session class per model.

``new_session(name)`` returns the loaded model, once per process (each batch
worker or server worker loads a model the first time a tool needs it). Adding a
model is one module here with a ``@session_class(name)`` class, and one line in
``_SESSION_MODULES``; its catalogue entry is in :mod:`pixelsmith.models.catalog`.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
S = TypeVar("S")

# catalogue model -> the module whose @session_class loads it (imported only when that model is first used)
_SESSION_MODULES = {
    "isnet-general": "isnet",
    "realesr-animevideov3-x4": "realesrgan",
    "realesrgan-x4plus": "realesrgan",
    "span-x4-ch52": "realesrgan",
    "realesr-general-x4v3": "realesrgan",
    "clearreality-x4": "realesrgan",
    "hed": "hed",
    "magenta-arbitrary-style": "magenta",
    "mediapipe-people": "mediapipe_people",
    "ssd-mobilenet-v2-coco": "ssd",
    "mobilesam": "mobilesam",
}
_FACTORIES: dict[str, Callable[[], object]] = {}
_SESSIONS: dict[str, object] = {}
_LOCK = threading.Lock()


def session_class(name: str) -> Callable[[type[T]], type[T]]:
    """Decorator: register the class that loads catalogue model ``name``."""

    def register(cls: type[T]) -> type[T]:
        _FACTORIES[name] = cls
        return cls

    return register


def new_session(name: str) -> object:
    with _LOCK:
        if name not in _SESSIONS:
            if name not in _FACTORIES and name in _SESSION_MODULES:
                importlib.import_module(f"{__name__}.{_SESSION_MODULES[name]}")  # registers its classes
            if name not in _FACTORIES:
                raise KeyError(f"no embedded session for model {name!r}")
            _SESSIONS[name] = _FACTORIES[name]()
        return _SESSIONS[name]


def release_sessions() -> int:
    """Ask every loaded session that keeps scratch buffers between calls (a ``release()`` method) to free
    them; their weights stay loaded. Returns how many were asked. The server calls it after large requests."""
    with _LOCK:
        loaded = list(_SESSIONS.values())
    asked = 0
    for sess in loaded:
        release = getattr(sess, "release", None)
        if callable(release):
            release()
            asked += 1
    return asked


def session(name: str, kind: type[S]) -> S:
    """``new_session(name)`` checked to be a ``kind`` (a protocol of :mod:`pixelsmith.engines.sessions`)."""
    found = new_session(name)
    if not isinstance(found, kind):
        raise TypeError(f"embedded session {name!r} is a {type(found).__name__}, not a {kind.__name__}")
    return found
