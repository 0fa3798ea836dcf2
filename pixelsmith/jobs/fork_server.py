"""The batch's fork server: started first, so its imports run while the batch process does its own.

Only the standard library is imported here (and :mod:`pixelsmith`'s light top), so ``pixelsmith batch
--workers N`` can start the server before it imports the runner, the tools and pydantic (~80 ms of CPU that
the server's own preload then overlaps; docs/performance.md, small-item batches).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
from typing import Any

_SERVER_LOCK = threading.Lock()


def worker_context() -> Any:
    """How worker processes start: forked from a fork server where one is available (Linux, macOS), else
    spawned.

    A spawned worker is a fresh interpreter that imports the worker, the tools and every recipe module
    before its first item: about 0.5 CPU-s each, paid again by every worker and every restart
    (docs/performance.md). The fork server is itself a fresh interpreter (no threads, no model sessions, no
    state of the batch process), started once per batch process; it imports :mod:`pixelsmith.jobs.preload`
    once, and each worker is a fork of it that starts with those modules loaded. No model is loaded in the
    server: each worker loads its own, with its own thread count."""
    methods = mp.get_all_start_methods()
    if "forkserver" not in methods:
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    from multiprocessing import forkserver

    with _SERVER_LOCK:
        ctx.set_forkserver_preload(["pixelsmith.jobs.preload"])
        # The server imports pixelsmith before any child's sys.path is set: put this process's pixelsmith
        # first on its path, so it preloads the same code (a bench or test may have put it on sys.path
        # only, while an editable install points elsewhere).
        import pixelsmith

        root = os.path.dirname(os.path.dirname(os.path.abspath(pixelsmith.__file__)))
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = os.pathsep.join([root, saved] if saved else [root])
        try:
            forkserver.ensure_running()  # returns at once; the server imports while this process goes on
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved
    return ctx
