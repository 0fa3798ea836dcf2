"""HTTP server: Stability REST v2beta and Amazon Bedrock InvokeModel over one core.

``create_app(settings)`` builds the FastAPI app; ``pixelsmith serve`` runs it.
"""

from pixelsmith.api.app import Settings, create_app

__all__ = ["Settings", "create_app"]
