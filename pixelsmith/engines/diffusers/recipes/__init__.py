"""Diffusers recipes, one module per tool; importing this package registers them all."""

from pixelsmith.engines.diffusers import catalog  # noqa: F401  (the models the recipes name)
from pixelsmith.engines.diffusers.recipes import (  # noqa: F401
    conservative_upscale,
    creative_upscale,
    erase,
    fast_upscale,
    generate,
    inpaint,
    outpaint,
    remove_background,
    search_and_recolor,
    search_and_replace,
    sketch,
    structure,
    style_guide,
    style_transfer,
)
