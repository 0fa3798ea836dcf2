"""The web studio: one static page served at ``/`` by ``pixelsmith serve``.

The page is plain HTML, CSS and JavaScript modules in ``static/`` (no build
step, nothing fetched at run time). It talks only to the server's public APIs:
``GET /v1/tools`` for the tools and their request models' JSON Schema,
``/v1/jobs`` for runs (one-item jobs of kind "run", with queue position and
progress), batches and the history, and the Stability REST routes for tools
with no input image or a server without the jobs API.
This module only serves files; it holds no image logic.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
PREFIX = "/studio"
# no-cache = revalidate each load (cheap with ETags): a page older than its server breaks forms
NO_CACHE = {"cache-control": "no-cache"}


def mount(app) -> None:
    """Serve the page at ``/`` (``/studio`` redirects there) and its files under ``/studio/static``."""
    from fastapi.responses import FileResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    class RevalidatedFiles(StaticFiles):
        async def get_response(self, path, scope):
            response = await super().get_response(path, scope)
            response.headers.setdefault("cache-control", NO_CACHE["cache-control"])
            return response

    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers=NO_CACHE)

    async def to_page() -> RedirectResponse:
        return RedirectResponse("./", status_code=307)  # relative: also right under a proxy's path prefix

    app.add_api_route("/", page, methods=["GET"], include_in_schema=False)
    app.add_api_route(PREFIX, to_page, methods=["GET"], include_in_schema=False)
    app.mount(f"{PREFIX}/static", RevalidatedFiles(directory=STATIC), name="studio-static")


__all__ = ["STATIC", "mount"]
