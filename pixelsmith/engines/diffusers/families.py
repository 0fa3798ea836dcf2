"""Model families: SD3.5 (gated, the best) and SDXL 1.0 (OpenRAIL++, not gated, smaller), chosen per tool.

Every generative recipe can run on either family. A recipe names the *roles* it
needs (``base``, ``inpaint``, ``canny``, ``depth``, ``tile``, ``adapter``,
``encoder``) plus any family-independent models (OWLv2, SAM, Depth Anything,
Real-ESRGAN); each family maps the roles to its catalogue models.

Which family serves a tool (:func:`choose`):

1. ``PIXELSMITH_FAMILY=sd3.5|sdxl`` forces one (``auto``, the default, chooses);
2. of the families whose models for this tool are all installed, the first (SD3.5,
   then SDXL) whose memory plan (``planner.py``) runs at full quality: fits the
   device without sequential offload, a quantized denoiser or a dropped T5;
3. else the first installed one whose plan is usable (fits, not sequential offload);
4. else the first installed one, whatever its plan;
5. nothing installed: SD3.5 (its models are what the error asks for, and it names
   the SDXL alternative with its pull command).

The plan is computed only when more than one family is installed, so listing the
tools never imports torch.

A recipe's ``models`` is a :class:`FamilyModels`: a sequence that yields the
models of the family serving the tool *now*, so everything that reads
``recipe.models`` (the core's availability check, the server's preload,
``pixelsmith models pull TOOL``) sees the models that will really load.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

from pixelsmith.models import is_installed

ROLES = ("base", "inpaint", "canny", "depth", "tile", "adapter", "encoder")


@dataclass(frozen=True)
class Family:
    name: str
    base: str  # text-to-image / image-to-image / ControlNet checkpoint
    inpaint: str  # the checkpoint masked edits run on
    canny: str
    depth: str
    tile: str  # the upscalers' ControlNet (SD3.5: blur, SDXL: tile)
    adapter: str  # IP-Adapter
    encoder: str | None  # the IP-Adapter's image encoder when it is a model of its own

    def role(self, role: str) -> str | None:
        value: str | None = getattr(self, role)
        return value

    def models(self, roles: Sequence[str], extra: Sequence[str] = ()) -> tuple[str, ...]:
        names = [self.role(r) for r in roles]
        return tuple(dict.fromkeys([n for n in names if n] + list(extra)))


SD35 = Family(
    "sd3.5",
    base="sd3.5-large",
    inpaint="sd3.5-large",
    canny="sd3.5-large-controlnet-canny",
    depth="sd3.5-large-controlnet-depth",
    tile="sd3.5-large-controlnet-blur",
    adapter="sd3.5-large-ip-adapter",
    encoder="siglip-so400m",
)
SDXL = Family(
    "sdxl",
    base="sdxl-base",
    inpaint="sdxl-inpaint",
    canny="sdxl-controlnet-canny",
    depth="sdxl-controlnet-depth",
    tile="sdxl-controlnet-tile",
    adapter="sdxl-ip-adapter",
    encoder=None,  # h94/IP-Adapter ships its ViT-H image encoder in the same repository
)
FAMILIES: dict[str, Family] = {f.name: f for f in (SD35, SDXL)}
# Catalogue model -> its family (the checkpoints; what response metadata names).
FAMILY_OF: dict[str, str] = {
    "sd3.5-large": "sd3.5",
    "sd3.5-large-turbo": "sd3.5",
    "sd3.5-medium": "sd3.5",
    "sdxl-base": "sdxl",
    "sdxl-inpaint": "sdxl",
}


def forced() -> str | None:
    """The family PIXELSMITH_FAMILY forces, or None for automatic choice."""
    wanted = os.environ.get("PIXELSMITH_FAMILY", "").strip().lower()
    if wanted in ("", "auto"):
        return None
    if wanted not in FAMILIES:
        raise ValueError(f"PIXELSMITH_FAMILY={wanted!r}: use auto, {', '.join(FAMILIES)}")
    return wanted


def full_quality(plan: object) -> bool:
    """A plan that fits and degrades nothing (no streaming, quantizing or dropped encoder)."""
    return usable(plan) and getattr(plan, "quantize", "none") == "none" and not getattr(plan, "drop_t5", False)


def usable(plan: object) -> bool:
    return bool(getattr(plan, "fits", False)) and getattr(plan, "placement", "") != "sequential-offload"


def choose(options: dict[str, tuple[str, ...]], device: object | None = None) -> str:
    """The family (a key of ``options``: family -> the models it needs) that serves a tool; see the module doc."""
    force = forced()
    if force is not None and force in options:
        return force
    installed = [f for f, models in options.items() if all(map(is_installed, models))]
    if len(installed) == 1:
        return installed[0]
    if not installed:
        return next(iter(options))
    return best_fit({f: options[f] for f in installed}, device)


def best_fit(options: dict[str, tuple[str, ...]], device: object | None = None) -> str:
    """Of these families, the one whose plan for the device is best (full quality, else usable, else the
    first), whatever is installed: what ``choose`` picks when all are, and what ``doctor`` suggests pulling."""
    from pixelsmith.engines.diffusers import planner

    dev = device if isinstance(device, planner.Device) else planner.detect_device()
    try:
        overrides = planner.from_settings()
    except ValueError:
        overrides = {}
    plans = {f: planner.plan(list(models), dev, **overrides) for f, models in options.items()}
    for test in (full_quality, usable):
        for f in options:
            if test(plans[f]):
                return f
    return next(iter(options))


class FamilyModels(Sequence[str]):
    """A recipe's ``models``: the models of the family that serves its tool now (see the module doc)."""

    def __init__(self, roles: Sequence[str], extra: Sequence[str] = (), families: Sequence[Family] = (SD35, SDXL)):
        self.roles = tuple(roles)
        self.extra = tuple(extra)
        self.options: dict[str, tuple[str, ...]] = {f.name: f.models(self.roles, self.extra) for f in families}

    def family(self, device: object | None = None) -> Family:
        return FAMILIES[choose(self.options, device)]

    def current(self) -> tuple[str, ...]:
        return self.options[choose(self.options)]

    def all(self) -> tuple[str, ...]:
        """Every model any family would use for this tool (the catalogue's "tools" column)."""
        return tuple(dict.fromkeys(m for models in self.options.values() for m in models))

    def alternatives(self) -> str:
        """What else would serve the tool, for the error that names the missing models."""
        chosen = choose(self.options)
        others = [
            f"or the {f} family: `pixelsmith models pull {' '.join(m for m in models if not is_installed(m))}`"
            for f, models in self.options.items()
            if f != chosen and not all(map(is_installed, models))
        ]
        return "; ".join(others)

    def __iter__(self) -> Iterator[str]:
        return iter(self.current())

    def __len__(self) -> int:
        return len(self.current())

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[str]: ...
    def __getitem__(self, i: int | slice) -> str | Sequence[str]:
        return self.current()[i]

    def __repr__(self) -> str:
        return f"FamilyModels({self.options!r})"
