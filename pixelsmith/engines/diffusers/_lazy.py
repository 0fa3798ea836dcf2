"""``torch`` imported on first use, so reading the recipes (every CLI start) stays fast."""

from pixelsmith.lazy import LazyModule, torch

__all__ = ["LazyModule", "torch"]
