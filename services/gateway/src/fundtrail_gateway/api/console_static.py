"""Serve the console's production build at /console/ from the gateway's origin (SPA fallback)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

MOUNT = "/console"


class _ConsoleFiles(StaticFiles):
    """Files of the build; any other path is a route of the single-page app and gets index.html."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or path.startswith("assets/"):
                raise
            response = await super().get_response("index.html", scope)
        # Built assets carry their content hash in the name; index.html must be re-read to see a new build.
        if path.startswith("assets/"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


def install_console(app: FastAPI, dist: Path) -> bool:
    """Mount the build if it exists (a gateway without the console still serves the API)."""
    if not (dist / "index.html").is_file():
        return False
    app.mount(MOUNT, _ConsoleFiles(directory=dist, html=True), name="console")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{MOUNT}/")

    return True
