"""``pixelsmith batch MANIFEST``: run a manifest durably, locally or on Ray."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import typer

from pixelsmith.cli.common import FAILURE, OK, fail_with
from pixelsmith.errors import PixelsmithError

if TYPE_CHECKING:
    from pixelsmith.jobs.runner import BatchResult


def batch(
    manifest: str = typer.Argument(..., help="YAML or JSONL manifest: items (file, glob or folder) and steps"),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Worker processes (each loads its models once)"),
    output: str = typer.Option(None, "--output", "-o", help="Output folder (default: the manifest's 'output')"),
    resume: bool = typer.Option(
        True, "--resume/--fresh", help="--resume (default) skips items already done; --fresh runs every item again"
    ),
    ray: str = typer.Option(None, "--ray", help="Run on Ray Data: a cluster address, or 'local' / 'auto'"),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        help="Model threads per worker process (default: the cores shared out; set 1 to give each worker one core)",
    ),
    lease: float = typer.Option(30.0, "--lease", help="Seconds a worker's claim on an item lasts without a heartbeat"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar"),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object on stdout"),
) -> None:
    """Run a batch manifest: every item through its chain of steps, resumable after any crash.

    Exits 0 when every item is done, 1 when any item failed (after the whole batch), 2 for a bad manifest.
    """
    if ray is None and (workers > 1 or threads is not None):
        from pixelsmith.jobs.fork_server import worker_context

        worker_context()  # the workers' fork server starts its imports now, while this process does its own
    from pixelsmith.jobs.runner import run_batch, summary_lines

    address = None if ray in (None, "local") else ray
    try:
        result = run_batch(
            manifest,
            workers=workers,
            output=output,
            fresh=not resume,
            use_ray=ray is not None,
            ray_address=address,
            lease_s=lease,
            threads=threads,
            show_progress=progress,
            echo=lambda line: typer.echo(line, err=True),
        )
    except PixelsmithError as exc:
        fail_with(exc)
    except OSError as exc:  # the output folder (or the batch's state next to it) cannot be written
        if os.environ.get("PIXELSMITH_DEBUG"):  # --debug: the traceback
            raise
        where = exc.filename or output or manifest
        why = "it is a file, not a folder" if isinstance(exc, (FileExistsError, NotADirectoryError)) else exc.strerror
        typer.echo(f"error: cannot write the batch's output at {where}: {why}", err=True)
        typer.echo("hint: choose a writable output folder with --output/-o (or the manifest's 'output')", err=True)
        raise typer.Exit(FAILURE) from None
    if as_json:
        typer.echo(json.dumps(summary_json(result), default=str))
    else:
        for line in summary_lines(result):
            typer.echo(line)
    raise typer.Exit(OK if result.ok else FAILURE)


def summary_json(result: BatchResult) -> dict[str, Any]:
    """What ``batch --json`` prints: the counts, every item's output, and the failures."""
    from pixelsmith.jobs.store import SQLiteJobStore

    items = SQLiteJobStore(result.store_path).items(result.job_id)
    return {
        "job_id": result.job_id,
        "ok": result.ok,
        "counts": result.status.counts,
        "total": result.status.total,
        "processed": result.processed,
        "skipped": result.skipped,
        "seconds": round(result.seconds, 3),
        "outputs": [i.output for i in items if i.state == "done"],
        "items": [
            {"input": i.input, "output": i.output, "state": i.state, "seconds": i.seconds, "error": i.error}
            for i in items
        ],
        "failures": [{"input": path, "error": reason} for path, reason in result.failures],
        "contact_sheet": result.contact_sheet,
        "notes": result.notes,
        "state": result.store_path,
    }
