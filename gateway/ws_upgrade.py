"""The WebSocket handshake, taken before Sanic sees the request, and the hand-over of the
socket to a WsConnection.

Sanic serves HTTP: health, readiness, the demo page. For a WebSocket, Sanic would build
a connection task, a Request with its headers, route it, dispatch its signals and run a
handler task, per socket: most of the gateway's CPU in a join storm. So the first
request of each TCP connection is looked at here: an upgrade to / or /ws is checked and
answered by websockets' sans-I/O protocol (101, or its 400/426 with the reason) and the
transport goes to a WsConnection; anything else is handed to Sanic as it arrived.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

from sanic.server import HttpProtocol
from websockets.http11 import Request as HandshakeRequest
from websockets.server import ServerProtocol

from gateway.ws_connection import WsConnection

log = logging.getLogger(__name__)

# palava clients use the root; /ws is an alias (with a trailing slash too, as Sanic routes it)
_WEBSOCKET_PATHS = (b"/", b"/ws", b"/ws/")
# The longest request head read here: Sanic's own limit (REQUEST_MAX_HEADER_SIZE), which
# answers a longer one with 413.
_HEAD_MAX = 8192
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


class GatewayHttpProtocol(HttpProtocol):
    """Sanic's HTTP/1.1 protocol, except for a first request that opens a WebSocket."""

    __slots__ = ("_head", "_head_timer")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Sanic's connection task starts only if the first request is not an upgrade.
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        # Sanic's limits: past 64 KiB unread by the client, WsConnection.pause_writing.
        self.transport.set_write_buffer_limits(low=16384, high=65536)
        self._head: bytes | None = b""
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.request_timeout, self._head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self._head is None:
            super().data_received(data)
            return
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0 and len(head) <= _HEAD_MAX:
            self._head = head
            return
        self._head = None
        self._cancel_head_timer()
        if end >= 0 and is_websocket_upgrade(head[:end]):
            self._upgrade(head[:end + 4], head[end + 4:])
            return
        # Anything else is Sanic's, from its first byte.
        super().connection_made(self.transport)  # type: ignore[no-untyped-call]
        super().data_received(head)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head is not None:  # gone before its first request: Sanic never knew it
            self._head = None
            self._cancel_head_timer()
            return
        super().connection_lost(exc)  # type: ignore[no-untyped-call]

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head is not None and self.transport is not None:
            self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

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
        if requests:
            origin = requests[0].headers.get("Origin")
            if self.app.ctx.allowed_origins.allows(origin):
                response = handshake.accept(requests[0])
            else:  # protocol.md, "Origins": refused before any frame
                response = handshake.reject(403, "this origin may not open a WebSocket here\n")
            handshake.send_response(response)
            accepted = response.status_code == 101
        else:  # not even HTTP: websockets has written its 400
            accepted = False
        transport.write(b"".join(handshake.data_to_send()))
        gateway = getattr(self.app.ctx, "gateway", None)  # set before the server listens
        if not accepted or gateway is None:
            transport.close()
            return
        connection = WsConnection(transport, max_size, CLOSE_TIMEOUT_S)
        transport.set_protocol(connection)
        self.transport = None
        gateway.open(connection)
        if rest:  # frames the client sent right behind its request
            connection.data_received(rest)
