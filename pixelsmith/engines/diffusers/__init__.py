"""The diffusers engine: SD3.5 and SDXL pipelines, ControlNets, IP-Adapters, grounding, SAM (diffusers, transformers).

``new_session(name)`` is what ``pixelsmith.core.Context.session`` calls for this
engine. Models installed by ``pixelsmith models pull`` load lazily through the
shared component store (``components.py``); embedded models a recipe also uses
(Real-ESRGAN before a diffusion refinement) come from the embedded engine.
"""

from __future__ import annotations

from typing import Any

from pixelsmith.models import get_model


class SD3Session:
    """A handle on one SD3 or SDXL checkpoint: pipelines built around its shared components."""

    def __init__(self, name: str):
        self.name = name

    def pipeline(self, kind: str = "txt2img", controlnet: str | None = None) -> Any:
        from pixelsmith.engines.diffusers.pipelines import build

        return build(kind, self.name, controlnet)


def new_session(name: str) -> Any:
    spec = get_model(name)
    if spec.engine == "embedded":
        from pixelsmith.engines.embedded import new_session as embedded_session

        return embedded_session(name)
    from pixelsmith.engines.diffusers import components
    from pixelsmith.models.hub import KIND

    kind = KIND.get(name)
    if kind in ("sd3", "sdxl", "sdxl-unet"):
        return SD3Session(name)
    if kind in ("controlnet", "sdxl-controlnet"):
        return components.controlnet(name)
    return components.weights_dir(name)  # IP-Adapters, the fp16-fix VAE, transformers models: loaded by their users
