"""What the batch's fork server imports once, so that every worker forked from it starts with it loaded
(:func:`pixelsmith.jobs.worker.worker_context`): the worker, the job store, core, the tools and every
engine's recipe modules (what a worker's first ``core.run`` would import; about 0.5 CPU-s per spawned
worker). Nothing here loads a model, imports a model runtime (ncnn, onnxruntime, torch: the recipes import
them lazily) or starts a thread, so a fork of this process is as clean as a fresh interpreter.
"""

from __future__ import annotations

import pixelsmith.jobs.worker  # noqa: F401 - the worker's own imports: store, execute, tools, pydantic, PIL
from pixelsmith import core  # noqa: F401
from pixelsmith.engines import ENGINES

for _engine in ENGINES.values():
    try:
        _engine.recipes()  # imports the engine's recipe modules (light by the architecture's rule)
    except Exception:  # noqa: BLE001 - a broken engine fails in the worker, with its reason, as without preload
        pass
