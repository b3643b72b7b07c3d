"""The WebSocket handshake, taken before Sanic sees the request, and the hand-over of the
socket to a WsConnection.

Sanic serves HTTP: health, readiness, the demo page. For a WebSocket, Sanic would build
a connection task, a Request with its headers, route it, dispatch its signals and run a
handler task, per socket: most of the gateway's CPU in a join storm. So the first
request of each TCP connection is looked at here: an upgrade to / or /ws is checked and
answered by websockets' sans-I/O protocol (101, or its 400/426 with the reason) and the
transport goes to a WsConnection; anything else is handed to Sanic as it arrived. A head
too long for either is answered here. Every refusal is one log line at INFO (websockets'
"connection rejected" or "HTTP response sent"), never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
from http import HTTPStatus
from typing import cast

from sanic.http import Http
from sanic.server import HttpProtocol
from websockets.http11 import Request as HandshakeRequest
from websockets.http11 import Response
from websockets.server import ServerProtocol

from gateway.ws_connection import WsConnection

log = logging.getLogger(__name__)

# palava clients use the root; /ws is an alias (with a trailing slash too, as Sanic routes it)
_WEBSOCKET_PATHS = (b"/", b"/ws", b"/ws/")
# The longest request head read here: Sanic's own limit (REQUEST_MAX_HEADER_SIZE). A longer
# one is answered here, 413 as Sanic would, or 414 for a request line that long, whether or
# not its end came in the same read: the answer does not depend on how TCP cut it up.
_HEAD_MAX = 8192
# Headers a handshake may carry once only: which Host, or which Origin, would the allow-list
# be checked against? (RFC 9112, 3.2: a server MUST answer 400 to more than one Host; RFC
# 6454, 7.3: a user agent MUST NOT send more than one Origin.)
_ONCE_ONLY = ("Host", "Origin")
# A control character (or DEL) in a request line: no valid HTTP request has one.
_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")
_CONTROL_TEXT = re.compile(_CONTROL.pattern.decode())  # the same, in a decoded URL
# How long the closing handshake may take before TCP is closed anyway.
CLOSE_TIMEOUT_S = 10.0


def is_websocket_upgrade(head: bytes) -> bool:
    """Whether a request head asks for a WebSocket on one of the gateway's paths (the
    handshake itself is checked by websockets)."""
    line_end = head.find(b"\r\n")
    parts = head[:line_end].split(b" ")
    return (len(parts) == 3 and parts[0] == b"GET"
            and parts[1].split(b"?", 1)[0] in _WEBSOCKET_PATHS
            and b"websocket" in head.lower())


def _refusal(status: HTTPStatus, text: str) -> bytes:
    """The bytes of a plain-text refusal that closes the connection, for a request refused
    before websockets or Sanic could answer it; websockets logs it, in one line at INFO."""
    protocol = ServerProtocol(logger=log)
    protocol.send_response(protocol.reject(status, text))
    return b"".join(protocol.data_to_send())


class _Http(Http):
    """Sanic's HTTP/1.1 request cycle, answering a bad request line of a keep-alive
    request as it does any bad request: 400."""

    __slots__ = ()

    def create_empty_request(self) -> None:
        # Sanic answers an error through a stand-in request built from the URL it could
        # not parse; control characters in it fail that too (sanic-org/sanic#2735): the
        # client got no answer and the log a traceback. Percent-encoded, they parse.
        if self.url and _CONTROL_TEXT.search(self.url):
            self.url = _CONTROL_TEXT.sub(lambda m: f"%{ord(m.group()):02X}", self.url)
            log.info("request refused (400 Bad Request): control characters in its URL")
        super().create_empty_request()


class GatewayHttpProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol, except for a first request that opens a WebSocket."""

    HTTP_CLASS = _Http

    __slots__ = ("_head", "_head_timer", "_sanic_serves")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Sanic's connection task starts only if the first request is not an upgrade.
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        # Sanic's limits: past 64 KiB unread by the client, WsConnection.pause_writing.
        self.transport.set_write_buffer_limits(low=16384, high=65536)
        self._head: bytes | None = b""  # None once the head has been read
        # Whether Sanic serves this connection, and so must hear of its end.
        self._sanic_serves = False
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.request_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._sanic_serves:
            super().data_received(data)
            return
        if self._head is None:  # answered and closing: what follows is not read
            return
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0 and len(head) <= _HEAD_MAX:
            self._head = head
            return
        self._head = None
        self._cancel_head_timer()
        if end < 0 or end + 4 > _HEAD_MAX:
            self._refuse_long_head(head)
        elif _CONTROL.search(head, 0, head.find(b"\r\n")):
            # Refused here, before Sanic builds anything for it (a keep-alive request
            # with one is Sanic's: _Http answers it).
            assert self.transport is not None
            self.transport.write(_refusal(HTTPStatus.BAD_REQUEST,
                                          "this is not a valid HTTP request\n"))
            self.transport.close()
        elif is_websocket_upgrade(head[:end]):
            self._upgrade(head[:end + 4], head[end + 4:])
        else:  # anything else is Sanic's, from its first byte
            self._sanic_serves = True
            super().connection_made(self.transport)  # type: ignore[no-untyped-call]
            super().data_received(head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._sanic_serves:
            super().connection_lost(exc)  # type: ignore[no-untyped-call]
            return
        # Gone before its first request, or answered here: Sanic never knew it (and its
        # connection_lost would fail on the state its connection_made never set up).
        self._head = None
        self._cancel_head_timer()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head is not None and self.transport is not None:
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse_long_head(self, head: bytes) -> None:
        """414 if the request line alone is past the limit, else 413."""
        assert self.transport is not None
        line_end = head.find(b"\r\n")
        if line_end < 0 or line_end > _HEAD_MAX:
            self.transport.write(_refusal(HTTPStatus.REQUEST_URI_TOO_LONG,
                                         "the request line is too long\n"))
        else:
            self.transport.write(_refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                         "the request head is too large\n"))
        self.transport.close()

    def _upgrade(self, head: bytes, rest: bytes) -> None:
        """websockets checks the handshake and writes the answer; a 101 hands the
        transport over to a WsConnection, anything else closes it."""
        transport = self.transport
        assert transport is not None
        max_size = self.app.ctx.settings.max_frame_bytes  # beyond: close 1009
        handshake = ServerProtocol(max_size=max_size, logger=log)
        handshake.receive_data(head)
        requests = [event for event in handshake.events_received()
                    if isinstance(event, HandshakeRequest)]
        accepted = False
        if requests:  # else websockets has answered (431), or found no HTTP request at all
            response = self._answer(handshake, requests[0])
            handshake.send_response(response)
            accepted = response.status_code == 101
        answer = b"".join(handshake.data_to_send())
        # Not HTTP (a control character in a header, say): websockets closes without a
        # word, where HTTP answers malformed syntax with 400 (RFC 9110, 15.5.1).
        transport.write(answer or _refusal(HTTPStatus.BAD_REQUEST,
                                          "this is not a valid HTTP request\n"))
        gateway = getattr(self.app.ctx, "gateway", None)  # set before the server listens
        if not accepted or gateway is None:
            transport.close()
            return
        connection = WsConnection(transport, max_size, CLOSE_TIMEOUT_S)
        peer = transport.get_extra_info("peername")
        forwarded_for = ",".join(requests[0].headers.get_all("X-Forwarded-For")) or None
        connection.client = self.app.ctx.trusted_proxies.client_of(
            str(peer[0]) if peer else "", forwarded_for)
        forwarded: list[str] | None = self.app.ctx.join_hook_headers
        if forwarded is not None:  # docs/protocol.md, "Join hook"
            headers = requests[0].headers
            connection.hook_request = (headers.get("Origin"), {
                name: value for name in forwarded if (value := headers.get(name)) is not None})
        transport.set_protocol(connection)
        self.transport = None
        gateway.open(connection)
        if rest:  # frames the client sent right behind its request
            connection.data_received(rest)

    def _answer(self, handshake: ServerProtocol, request: HandshakeRequest) -> Response:
        """101, or a refusal: 400 for a header repeated that may come once only, 403 for an
        origin that is not allowed, or whatever websockets finds wrong with the handshake."""
        for name in _ONCE_ONLY:
            if len(request.headers.get_all(name)) > 1:
                return handshake.reject(HTTPStatus.BAD_REQUEST,
                                        f"more than one {name} header\n")
        if not self.app.ctx.allowed_origins.allows(request.headers.get("Origin")):
            # docs/protocol.md, "Origins": refused before any frame
            return handshake.reject(HTTPStatus.FORBIDDEN,
                                    "this origin may not open a WebSocket here\n")
        return handshake.accept(request)
