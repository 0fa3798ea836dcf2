"""The model catalogue: every model pixelsmith knows, where it comes from, and how to install it.

``catalog.py`` holds the embedded engine's packaged models, ``hub.py`` the Hugging Face models of the
diffusers engine; importing this package registers both.
"""

from pixelsmith.models import hub  # noqa: F401  (registers the hub models in CATALOG)
from pixelsmith.models.catalog import CATALOG, ModelSpec, get_model, is_installed, model_path

__all__ = ["CATALOG", "ModelSpec", "get_model", "is_installed", "model_path"]
