"""Durable batch work: manifests, the job store, local and Ray workers, the jobs API.

One job system serves the CLI batch, the REST async results (creative upscale)
and the jobs API: see :mod:`pixelsmith.jobs.store` for the states and the
exactly-once rule.
"""

from pixelsmith.jobs.manifest import Manifest, ManifestError, Step, WorkItem, load
from pixelsmith.jobs.store import Claim, ItemRecord, JobStatus, JobStore, SQLiteJobStore, open_store

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
