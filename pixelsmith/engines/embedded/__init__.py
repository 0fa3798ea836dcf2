"""The embedded engine: packaged weights on the CPU, one small session class per model.

``new_session(name)`` returns the loaded model, once per process (each batch
worker or server worker loads a model the first time a tool needs it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_FACTORIES: dict[str, Callable[[], Any]] = {}
_SESSIONS: dict[str, Any] = {}
_LOCK = threading.Lock()


def session_class(name: str):
    """Decorator: register the class that loads catalogue model ``name``."""

    def register(cls):
        _FACTORIES[name] = cls
        return cls

    return register


def new_session(name: str) -> Any:
    with _LOCK:
        if name not in _SESSIONS:
            _load_modules()
            if name not in _FACTORIES:
                raise KeyError(f"no embedded session for model {name!r}")
            _SESSIONS[name] = _FACTORIES[name]()
        return _SESSIONS[name]


def _load_modules() -> None:
    # Importing the modules registers their session classes.
    from pixelsmith.engines.embedded import (  # noqa: F401  # noqa: F401
        hed,  # noqa: F401
        isnet,
        mediapipe_people,
        realesrgan,
        ssd,
    )
