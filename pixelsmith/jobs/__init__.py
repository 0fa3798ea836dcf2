"""Durable batch work: manifests, the job store, local and Ray workers, the jobs API.

One job system serves the CLI batch, the REST async results (creative upscale)
and the jobs API: see :mod:`pixelsmith.jobs.store` for the states and the
exactly-once rule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pixelsmith.jobs.manifest import Manifest, ManifestError, Step, WorkItem, load
    from pixelsmith.jobs.store import Claim, ItemRecord, JobStatus, JobStore, SQLiteJobStore, open_store

# The names below load their module on first use: importing one light submodule (``jobs.fork_server``) must not
# import the manifest's tools and pydantic.
_HOMES = {
    **dict.fromkeys(("Manifest", "ManifestError", "Step", "WorkItem", "load"), "pixelsmith.jobs.manifest"),
    **dict.fromkeys(
        ("Claim", "ItemRecord", "JobStatus", "JobStore", "SQLiteJobStore", "open_store"), "pixelsmith.jobs.store"
    ),
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Claim",
    "ItemRecord",
    "JobStatus",
    "JobStore",
    "Manifest",
    "ManifestError",
    "SQLiteJobStore",
    "Step",
    "WorkItem",
    "load",
    "open_store",
]
