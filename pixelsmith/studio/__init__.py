"""The web studio: one static page served at ``/`` by ``pixelsmith serve``.

The page is plain HTML, CSS and JavaScript modules in ``static/`` (no build
step, nothing fetched at run time). It talks only to the server's public APIs:
``GET /v1/tools`` for the tools and their request models' JSON Schema, the
Stability REST routes to run a tool, and ``/v1/jobs`` for batches and history.
This module only serves files; it holds no image logic.
"""
from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
PREFIX = "/studio"


def mount(app) -> None:
    """Serve the studio page at ``/`` (and ``/studio``) and its assets under ``/studio/static``."""
    from fastapi.responses import FileResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    index = STATIC / "index.html"
    # no-cache: the page is small, and a stale page against a newer server breaks forms
    headers = {"cache-control": "no-cache"}

    async def page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers=headers)

    async def to_page() -> RedirectResponse:
        return RedirectResponse("./", status_code=307)  # relative: works under a proxy prefix

    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, to_page, methods=["GET"], include_in_schema=False)
    app.mount(f"{PREFIX}/static", _NoCacheStatic(directory=STATIC), name="studio-static")


def _NoCacheStatic(directory: Path):
    from fastapi.staticfiles import StaticFiles

    class NoCacheStatic(StaticFiles):
        """Static files revalidated on each load (ETag makes that cheap)."""

        async def get_response(self, path, scope):
            response = await super().get_response(path, scope)
            response.headers.setdefault("cache-control", "no-cache")
            return response

    return NoCacheStatic(directory=directory)


__all__ = ["STATIC", "mount"]
