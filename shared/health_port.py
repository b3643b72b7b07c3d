"""A small HTTP port of a process's own: /healthz (alive), /readyz (why it cannot serve
now, if it cannot) and /metrics. The relay's health port, and the gateway's metrics port
when it has one (off the public port); the gateway's public port answers the same paths
through Sanic, with the same bodies (`readiness_answer`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import orjson

log = logging.getLogger(__name__)

Readiness = Callable[[], Awaitable[list[str]]]
Exposition = Callable[[], Awaitable[tuple[bytes, str]]]  # body and content type

_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


def readiness_answer(problems: list[str]) -> tuple[int, dict[str, object]]:
    """/readyz's status and body."""
    return (503 if problems else 200), {"ready": not problems, "problems": problems}


async def serve_health_port(host: str, port: int, readiness: Readiness,
                       metrics: Exposition | None = None) -> asyncio.Server | None:
    """Answer GET /healthz, /readyz and /metrics on `port`; None when the port cannot
    be had."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            path = request.split(b" ")[1] if request.count(b" ") >= 2 else b""
            body: dict[str, object]
            content_type = b"application/json"
            if path == b"/metrics" and metrics is not None:
                exposition, kind = await metrics()
                _write(writer, 200, kind.encode(), exposition)
                await writer.drain()
                return
            if path == b"/healthz":
                status, body = 200, {"ok": True}
            elif path == b"/readyz":
                status, body = readiness_answer(await readiness())
            else:
                status, body = 404, {"error": "not found"}
            _write(writer, status, content_type, orjson.dumps(body))
            await writer.drain()
        except (OSError, TimeoutError) as exc:
            log.debug("health request failed: %s", exc)
        finally:
            writer.close()

    try:
        return await asyncio.start_server(answer, host, port)
    except OSError as exc:
        log.warning("health port %s:%d unavailable: %s", host, port, exc)
        return None


def _write(writer: asyncio.StreamWriter, status: int, content_type: bytes,
           payload: bytes) -> None:
    writer.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                 b"Connection: close\r\n\r\n%s"
                 % (status, _REASONS[status].encode(), content_type, len(payload), payload))
