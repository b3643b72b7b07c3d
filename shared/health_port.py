"""A process's health port: /healthz (alive), /readyz (why it cannot serve now, if it
cannot) and /metrics. The relay's health port, and the gateway's metrics port when it has
one (off the public port); the gateway's public port answers the same paths through Sanic,
with the same bodies (`readiness_answer`). Carried by shared/http_port.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson

from shared.http_port import Request, Response, error_response, serve_http_port

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[list[str]]]
Exposition = Callable[[], Awaitable[tuple[bytes, str]]]  # body and content type


def readiness_answer(problems: list[str]) -> tuple[int, dict[str, object]]:
    """/readyz's status and body."""
    return (503 if problems else 200), {"ready": not problems, "problems": problems}


async def serve_health_port(host: str, port: int, readiness: Readiness,
                            metrics: Exposition | None = None) -> asyncio.Server | None:
    """Answer GET /healthz, /readyz and /metrics on `port`; None when the port cannot
    be had."""

    async def answer(request: Request) -> Response:
        path = request.target.split(b"?", 1)[0]
        if path == b"/metrics" and metrics is not None:
            exposition, kind = await metrics()
            return Response(200, exposition, kind.encode())
        if path == b"/healthz":
            return Response(200, orjson.dumps({"ok": True}))
        if path == b"/readyz":
            status, body = readiness_answer(await readiness())
            return Response(status, orjson.dumps(body))
        return error_response(404, "not found")

    try:
        return await serve_http_port(host, port, answer, line_only=True)
    except OSError as exc:
        log.warning("health port %s:%d unavailable: %s", host, port, exc)
        return None
