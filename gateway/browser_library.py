"""The browser library (`browser/client/`): `/client/switchboard.js` and the modules it
imports, served by every gateway so that a page can import it from the service itself."""

from __future__ import annotations

from sanic import Blueprint, Request, response
from sanic.exceptions import NotFound

from gateway.static_files import BROWSER, JAVASCRIPT, file_response

LIBRARY = BROWSER / "client"
# Only the library's own modules are served, by name.
MODULES = frozenset(path.name for path in LIBRARY.glob("*.js"))


def library_routes() -> Blueprint:
    routes = Blueprint("browser_library")

    @routes.get("/client/<name:str>")
    async def module(request: Request, name: str) -> response.HTTPResponse:
        if name not in MODULES:
            raise NotFound(f"no library file {name!r}")
        return await file_response(LIBRARY / name, JAVASCRIPT)

    return routes
