"""The admin API on a port of its own (SWITCHBOARD_ADMIN_PORT), so that the public port
need not expose it: a small HTTP/1.1 server, one request per connection, every part of a
request bounded in size and time. gateway/admin_api.py answers; this only carries."""

from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus

from gateway.admin_api import AdminApi
from gateway.admin_requests import MAX_BODY_BYTES
from shared.admin_replies import error_body

log = logging.getLogger(__name__)

_HEAD_BYTES = 16 * 1024  # request line and headers
_REQUEST_S = 10.0  # to send the whole request


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


async def _read_request(reader: asyncio.StreamReader
                        ) -> tuple[str, bytes, str | None, bytes]:
    """Method, target, Authorization header, body."""
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
    if not 0 <= length <= MAX_BODY_BYTES:
        raise _Refused(413, f"body larger than {MAX_BODY_BYTES} bytes")
    body = await reader.readexactly(length)
    authorization = headers.get(b"authorization")
    return (parts[0].decode("latin-1"), parts[1],
            None if authorization is None else authorization.decode("latin-1"), body)


def _response(status: int, body: bytes) -> bytes:
    extra = b"WWW-Authenticate: Bearer\r\n" if status == 401 else b""
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"%sConnection: close\r\n\r\n%s"
            % (status, HTTPStatus(status).phrase.encode(), len(body), extra, body))


async def serve_admin_port(host: str, port: int, api: AdminApi) -> asyncio.Server:
    """Serve the admin API on `port` (raises OSError when the port cannot be had)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                async with asyncio.timeout(_REQUEST_S):
                    method, target, authorization, body = await _read_request(reader)
            except _Refused as refused:
                status, payload = refused.status, error_body(str(refused))
            else:
                if target.split(b"?", 1)[0].rstrip(b"/") == b"/admin" or target.startswith(
                        b"/admin/"):
                    status, payload = await api.answer(method, target, authorization, body)
                else:
                    status, payload = 404, error_body("not found")
            writer.write(_response(status, payload))
            await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, OSError) as exc:
            log.debug("admin request not answered: %s", exc)
        finally:
            writer.close()

    return await asyncio.start_server(answer, host, port, limit=_HEAD_BYTES)
