"""Heavy modules imported on first attribute use.

Recipe modules are imported whenever the tool list is read (every CLI start, ``pixelsmith tools``, the
server's OpenAPI schema); importing cv2 (~30 ms), torch (~1 s) or onnxruntime there would make every
start pay for models it never runs. A recipe module says ``from pixelsmith.lazy import cv2`` and uses
``cv2.resize`` as usual: the real import happens in the first call.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._name!r}>"


cv2: Any = LazyModule("cv2")
torch: Any = LazyModule("torch")
