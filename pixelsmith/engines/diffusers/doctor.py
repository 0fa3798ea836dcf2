"""``pixelsmith doctor``: the device, its memory, the installed models, and for every diffusers tool
the model family (SD3.5 or SDXL) that would serve it, the loading plan and the expected peak memory.

``report()`` returns a JSON-able dict (for ``GET /readyz`` detail and the studio's tool info);
``format_report()`` renders it for a terminal. Nothing is loaded: the plan comes from
the parameter counts in ``planner.PARAMS`` and the device's memory.
"""

from __future__ import annotations

from typing import Any

from pixelsmith.engines.diffusers import planner
from pixelsmith.models import is_installed


def report(device: planner.Device | None = None) -> dict[str, Any]:
    from pixelsmith.engines import ENGINES
    from pixelsmith.tools import all_tools

    all_tools()
    dev = device or planner.detect_device()
    try:
        overrides = planner.from_settings()
        error = ""
    except ValueError as exc:
        overrides, error = {}, str(exc)
    from pixelsmith.engines.diffusers.families import FAMILIES, FamilyModels, best_fit, choose
    from pixelsmith.models import get_model

    def planned(models: list[str]) -> dict[str, Any]:
        missing = [m for m in models if not is_installed(m)]
        p = planner.plan(models, dev, **overrides)
        return {
            "models": models,
            "missing": missing,
            "ready": not missing,
            "plan": p.placement,
            "quantize": p.quantize,
            "drop_t5": p.drop_t5,
            "vae_tiling": p.vae_tiling,
            "peak_gb": round(p.peak / planner.GB, 2),
            "fits": p.fits,
            "notes": p.notes,
        }

    tools: dict[str, Any] = {}
    for tool, rec in sorted(ENGINES["diffusers"].recipes().items()):
        if not isinstance(rec.models, FamilyModels):
            tools[tool] = {**planned(list(rec.models)), "family": "", "checkpoint": ""}
            continue
        options = rec.models.options
        try:
            chosen = choose(options, dev)
        except ValueError as exc:  # a bad PIXELSMITH_FAMILY
            chosen, error = next(iter(options)), str(exc)
        fam = FAMILIES[chosen]
        masked = "inpaint" in rec.models.roles
        checkpoint = get_model(fam.inpaint if masked else fam.base).source
        tools[tool] = {
            **planned(list(options[chosen])),
            "family": chosen,
            "checkpoint": getattr(checkpoint, "repo_id", ""),
            "best_fit": best_fit(options, dev),  # the family to pull for this device
            "families": {f: planned(list(models)) for f, models in options.items()},
        }
    installed = sorted({m for t in tools.values() for m in t["models"] if m not in t["missing"]})
    out: dict[str, Any] = {
        "device": {
            "kind": dev.kind,
            "name": dev.name,
            "memory_gb": round(dev.memory / planner.GB, 2),
            "ram_gb": round(dev.ram / planner.GB, 2),
        },
        "quantizers": planner.quantizers(),
        "overrides": overrides,
        "installed": installed,
        "tools": tools,
    }
    if error:
        out["settings_error"] = error
    return out


def readyz_detail() -> dict[str, Any]:
    """The compact form for ``GET /readyz``: the device and, per tool, its plan and peak."""
    rep = report()
    return {
        "device": rep["device"],
        "tools": {
            t: {k: v[k] for k in ("ready", "family", "checkpoint", "plan", "quantize", "drop_t5", "peak_gb", "fits")}
            for t, v in rep["tools"].items()
        },
    }


def format_report(rep: dict[str, Any]) -> str:
    d = rep["device"]
    lines = [
        f"device: {d['kind']} {d['name']}".rstrip()
        + f"  (memory for models {d['memory_gb']} GB, RAM {d['ram_gb']} GB)",
        "quantization backends: " + (", ".join(rep["quantizers"]) or "none installed (torchao, bitsandbytes)"),
        f"installed diffusers models: {', '.join(rep['installed']) or 'none (pixelsmith models pull TOOL)'}",
    ]
    if rep["overrides"]:
        lines.append("settings: " + ", ".join(f"{k}={v}" for k, v in rep["overrides"].items()))
    if rep.get("settings_error"):
        lines.append("settings error: " + rep["settings_error"])
    lines.append("")
    lines.append(f"{'tool':<22} {'family':<7} {'ready':<6} {'plan':<19} {'denoiser':<9} {'T5':<8} {'peak GB':>8}")
    for tool, t in rep["tools"].items():
        lines.append(
            f"{tool:<22} {t['family'] or '-':<7} {'yes' if t['ready'] else 'no':<6} {t['plan']:<19} {t['quantize']:<9} "
            f"{'dropped' if t['drop_t5'] else ('-' if t['family'] == 'sdxl' else 'kept'):<8} {t['peak_gb']:>8.1f}"
            + ("" if t["fits"] else "  (does not fit)")
            + (f"  (best here: {t['best_fit']})" if t.get("best_fit") not in (None, t["family"]) else "")
        )
    return "\n".join(lines)
