"""``pixelsmith doctor``: device, memory, installed models and each diffusers tool's loading plan.

Wire it in the main app with ``app.command("doctor")(doctor)``.
"""

from __future__ import annotations

import json

import typer


def doctor(
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    memory_gb: float | None = typer.Option(
        None, "--memory-gb", help="plan for a device with this much memory (GB) instead of this machine's"
    ),
    cpu: bool = typer.Option(False, "--cpu", help="plan for CPU-only"),
) -> None:
    """Show the device, the installed models and, per tool, the plan it would use and its expected peak memory."""
    from pixelsmith.engines.diffusers import doctor as D
    from pixelsmith.engines.diffusers import planner

    device = None
    if memory_gb is not None or cpu:
        here = planner.detect_device()
        kind = "cpu" if cpu else "cuda"
        memory = int(memory_gb * planner.GB) if memory_gb is not None else here.memory
        device = planner.Device(kind, memory, here.ram, f"(assumed {memory / planner.GB:.0f} GB)")
    rep = D.report(device)
    typer.echo(json.dumps(rep, indent=2) if as_json else D.format_report(rep))
