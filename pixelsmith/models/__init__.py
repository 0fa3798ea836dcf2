"""The model catalogue: every model pixelsmith knows, where it comes from, and how to install it."""

from pixelsmith.models.catalog import CATALOG, ModelSpec, get_model, is_installed, model_path

__all__ = ["CATALOG", "ModelSpec", "get_model", "is_installed", "model_path"]
