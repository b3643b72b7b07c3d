"""Files the gateway serves as they are: the browser library and the demo pages, from the
top-level `browser/` folder (`browser/client/`, `browser/demo/`). It lies next to the
`gateway` package both in a checkout and where the project is installed (pyproject.toml
installs its folders beside the packages, the Dockerfile copies it)."""

from __future__ import annotations

from pathlib import Path

from sanic import response
from sanic.exceptions import NotFound

BROWSER = Path(__file__).resolve().parent.parent / "browser"

JAVASCRIPT = "text/javascript; charset=utf-8"
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
# A redeploy may change any of these, and they are small: let browsers revalidate.
NO_CACHE = {"Cache-Control": "no-cache"}


async def file_response(path: Path, mime_type: str) -> response.HTTPResponse:
    """`path` with its type and no-cache; 404 when the file is not there."""
    if not path.is_file():
        raise NotFound(f"{path.name} is not installed")
    return await response.file(path, mime_type=mime_type, headers=NO_CACHE)
