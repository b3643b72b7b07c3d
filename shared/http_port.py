"""The one small HTTP/1.1 server for a process's ports of its own (the health and metrics
port, the admin port): one request per connection, every part of a request bounded in
size and time, errors answered as `{"error": text}`. What a path means is the handler's."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import NamedTuple

from shared.admin_replies import error_body

log = logging.getLogger(__name__)

HEAD_BYTES = 16 * 1024  # request line and headers
REQUEST_S = 10.0  # to send the whole request
JSON = b"application/json"


class Request(NamedTuple):
    method: str
    target: bytes
    headers: dict[bytes, bytes]  # names in lower case
    body: bytes


class Response(NamedTuple):
    status: int
    body: bytes
    content_type: bytes = JSON


Handler = Callable[[Request], Awaitable[Response]]


def error_response(status: int, text: str) -> Response:
    return Response(status, error_body(text))


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


async def _read_request_line(reader: asyncio.StreamReader) -> Request:
    """The request line alone (headers and body, if any, are not read): what probes and
    hand-typed checks send, `printf 'GET /healthz\\n' | nc` included."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as ended:  # the client sent the line and no more
        line = ended.partial
    except asyncio.LimitOverrunError:
        raise _Refused(414, "request line too long") from None
    parts = line.strip().split(b" ")
    if not 2 <= len(parts) <= 3 or (len(parts) == 3 and not parts[2].startswith(b"HTTP/")):
        raise _Refused(400, "not an HTTP request")
    return Request(parts[0].decode("latin-1"), parts[1], {}, b"")


async def _read_request(reader: asyncio.StreamReader, max_body: int) -> Request:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise _Refused(431, "request head too large") from None
    request_line, *lines = head[:-4].split(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _Refused(400, "not an HTTP/1.1 request")
    headers: dict[bytes, bytes] = {}
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon:
            raise _Refused(400, "malformed header")
        headers[name.strip().lower()] = value.strip()
    if b"transfer-encoding" in headers:
        raise _Refused(411, "send a Content-Length")
    try:
        length = int(headers.get(b"content-length", b"0"))
    except ValueError:
        raise _Refused(400, "bad Content-Length") from None
    if not 0 <= length <= max_body:
        raise _Refused(413, f"body larger than {max_body} bytes")
    body = await reader.readexactly(length)
    return Request(parts[0].decode("latin-1"), parts[1], headers, body)


def _encode(response: Response) -> bytes:
    extra = b"WWW-Authenticate: Bearer\r\n" if response.status == 401 else b""
    return (b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            b"%sConnection: close\r\n\r\n%s"
            % (response.status, HTTPStatus(response.status).phrase.encode(),
               response.content_type, len(response.body), extra, response.body))


async def serve_http_port(host: str, port: int, handler: Handler, *,
                          max_body: int = 0, line_only: bool = False) -> asyncio.Server:
    """Answer each request on `port` with `handler` (raises OSError when the port cannot
    be had). `line_only`: answer on the request line, for handlers that need nothing
    else (probes)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(REQUEST_S):
                    request = await (_read_request_line(reader) if line_only
                                     else _read_request(reader, max_body))
            except _Refused as refused:
                response = error_response(refused.status, str(refused))
            else:
                response = await handler(request)
            writer.write(_encode(response))
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError) as exc:
            log.debug("request on port %d not answered: %s", port, exc)
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port, limit=HEAD_BYTES)
