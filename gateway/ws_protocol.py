"""Sanic's WebSocket connection, with two fixes the gateway needs (protocol.md, "Limits").

1. Backpressure. Sanic reads from the socket whatever arrives and queues a task per chunk
   until the handler takes the messages, so a client writing as fast as TCP allows can
   fill the gateway's memory faster than the rate limit closes it. Here reading pauses
   while a few chunks wait, and TCP slows the client down instead.
2. A text frame that is not UTF-8 fails the connection with 1007, as RFC 6455 (8.1) asks;
   Sanic lets the decoding error escape into a background task and drops the frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from sanic.server.protocols import websocket_protocol
from sanic.server.websockets.impl import WebsocketImplProtocol

from shared.close_codes import CloseCode

# Chunks read but not yet handled, beyond which the socket is not read any further.
_PAUSE_AT, _RESUME_AT = 4, 1


class GatewayWebsocket(WebsocketImplProtocol):
    _waiting = 0
    _paused = False

    def data_received(self, data: bytes) -> None:
        self.ws_proto.receive_data(data)
        data_to_send = self.ws_proto.data_to_send()
        events = self.ws_proto.events_received()
        if not data_to_send and not events:
            return
        self._waiting += 1
        if self._waiting >= _PAUSE_AT and not self._paused:
            self._set_reading(False)
        asyncio.create_task(self._handle(data_to_send, events))

    async def _handle(self, data_to_send: list[bytes], events: Sequence[Any]) -> None:
        try:
            await self.async_data_received(data_to_send, events)  # type: ignore[no-untyped-call]
        except UnicodeDecodeError:
            self.fail_connection(CloseCode.INVALID_PAYLOAD, "invalid utf-8")
        finally:
            self._waiting -= 1
            if self._paused and self._waiting <= _RESUME_AT:
                self._set_reading(True)

    def _set_reading(self, reading: bool) -> None:
        self._paused = not reading
        transport = getattr(self.io_proto, "transport", None)
        if transport is None or transport.is_closing():
            return
        if not reading:
            transport.pause_reading()
        elif not self.pause_frame_fut:  # Sanic's own pause (a message not yet taken) holds
            transport.resume_reading()

    def resume_frames(self) -> bool:
        """Sanic resumes reading whenever its handler takes a message; not while we wait."""
        resumed: bool = super().resume_frames()  # type: ignore[no-untyped-call]
        transport = getattr(self.io_proto, "transport", None)
        if self._paused and transport is not None and not transport.is_closing():
            transport.pause_reading()
        return resumed


def install() -> None:
    """Have Sanic build the gateway's WebSocket connections from GatewayWebsocket.

    Sanic offers no setting for this class; its handshake looks the name up in its
    module at call time, so replacing it there is enough.
    """
    websocket_protocol.WebsocketImplProtocol = GatewayWebsocket  # type: ignore[attr-defined]
