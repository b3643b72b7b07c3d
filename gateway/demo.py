"""The demo page: a video call in the browser, built on the real palava-client library.

`GET /demo` serves `gateway/demo_page/index.html` (package data), which loads
`palava.bundle.js` from npm's `palava-client` (installed by scripts/setup.sh, never
committed) at the path given by the `SWITCHBOARD_PALAVA_BUNDLE` setting. Without that file
the page says how to install it. The page points its WebSocket at the host it was loaded
from, so every gateway replica serves a working demo.
"""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, Request, response
from sanic.exceptions import NotFound

PAGES = Path(__file__).with_name("demo_page")
BUNDLE = "palava.bundle.js"
JAVASCRIPT = "text/javascript; charset=utf-8"
# The page's own files by the name they are served under: nothing else is served from PAGES.
ASSETS = {"demo.js": JAVASCRIPT, "demo.css": "text/css; charset=utf-8"}
# A redeploy may change any of these, and they are small: let browsers revalidate.
NO_CACHE = {"Cache-Control": "no-cache"}


def demo_routes(bundle: Path) -> Blueprint:
    """`/demo`, its assets under `/demo/`, and the palava-client `bundle` file."""
    routes = Blueprint("demo")

    @routes.get("/demo")
    async def page(request: Request) -> response.HTTPResponse:
        name = "index.html" if bundle.is_file() else "missing.html"
        return await response.file(PAGES / name, mime_type="text/html; charset=utf-8",
                                   headers=NO_CACHE)

    @routes.get("/demo/<name:str>")
    async def asset(request: Request, name: str) -> response.HTTPResponse:
        if name == BUNDLE:
            path, mime_type = bundle, JAVASCRIPT
        elif name in ASSETS:
            path, mime_type = PAGES / name, ASSETS[name]
        else:
            raise NotFound(f"no demo file {name!r}")
        if not path.is_file():
            raise NotFound(f"{name} is not installed")
        return await response.file(path, mime_type=mime_type, headers=NO_CACHE)

    return routes
