"""The demo pages: a mesh video call built on the real palava-client library (`/demo`), and
a one-to-many broadcast built on Switchboard's own browser library (`/demo/broadcast`).

`GET /demo` serves `browser/demo/index.html`, which loads `palava.bundle.js` from npm's
`palava-client` (installed by scripts/setup.sh, never committed) at the path given by the
`SWITCHBOARD_PALAVA_BUNDLE` setting. Without that file the page says how to install it.
The page points its WebSocket at the host it was loaded from, so every gateway replica
serves a working demo.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request, response
from sanic.exceptions import NotFound

from gateway.static_files import BROWSER, CSS, HTML, JAVASCRIPT, file_response

PAGES = BROWSER / "demo"
BUNDLE = "palava.bundle.js"
# The pages' own files by the name they are served under: nothing else is served from PAGES.
ASSETS = {"demo.js": JAVASCRIPT, "demo.css": CSS, "broadcast.js": JAVASCRIPT,
          "page.js": JAVASCRIPT, "palava-resume.js": JAVASCRIPT}


def demo_routes(bundle: Path) -> Blueprint:
    """`/demo`, its assets under `/demo/`, and the palava-client `bundle` file."""
    routes = Blueprint("demo")

    @routes.get("/demo")
    async def page(request: Request) -> response.HTTPResponse:
        name = "index.html" if bundle.is_file() else "missing.html"
        return await file_response(PAGES / name, HTML)

    @routes.get("/demo/broadcast")
    async def broadcast(request: Request) -> response.HTTPResponse:
        # Built on the browser library (/client/switchboard.js): palava-client not needed.
        return await file_response(PAGES / "broadcast.html", HTML)

    @routes.get("/demo/<name:str>")
    async def asset(request: Request, name: str) -> response.HTTPResponse:
        if name == BUNDLE:
            return await file_response(bundle, JAVASCRIPT)
        if name not in ASSETS:
            raise NotFound(f"no demo file {name!r}")
        return await file_response(PAGES / name, ASSETS[name])

    return routes
