"""Sanic's WebSocket connection, with what the gateway needs on top.

0. Speed. Sanic hands each message over through a task, a queue and a lock per message,
   after websockets parsed it through a generator. Here the common frames (complete,
   masked data frames and pongs) are parsed by gateway/ws_frames.py and their messages go
   straight to `on_message`, in order; from the first other frame (a close, a ping, a
   fragment, a broken rule) websockets parses everything, still handing data messages
   to `on_message` as they come, and only control frames and closing take Sanic's path.
1. Backpressure. Sanic reads from the socket whatever arrives and queues a task per chunk
   until the handler takes the messages, so a client writing as fast as TCP allows can
   fill the gateway's memory faster than the rate limit closes it. Here reading pauses
   while a few chunks wait, and TCP slows the client down instead.
2. A text frame that is not UTF-8 fails the connection with 1007, as RFC 6455 (8.1) asks;
   Sanic lets the decoding error escape into a background task and drops the frame.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from sanic.server.protocols import websocket_protocol
from sanic.server.websockets.frame import WebsocketFrameAssembler
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from gateway import ws_frames
from shared.close_codes import CloseCode

_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
# Chunks read but not yet handled, beyond which the socket is not read any further.
_PAUSE_AT, _RESUME_AT = 4, 1


class GatewayWebsocket(WebsocketImplProtocol):
    # Set by `start` once the gateway serves the socket; messages read before wait in
    # `_early` (or, parsed by websockets, on Sanic's path, for `recv`).
    on_message: Callable[[str | bytes], None] | None = None
    _early: list[tuple[bool, bytes]] | None = None
    # Frames are scanned by ws_frames until one needs websockets (then for good); the
    # bytes of a frame not complete yet wait in `_partial`.
    _fast = True
    _partial = b""
    # Messages that took Sanic's path and that `recv` has not handed over yet: while there
    # are any, later ones take that path too, so that all arrive in order.
    _behind = 0
    _waiting = 0
    _paused = False  # while chunks wait for Sanic's path
    _held = False  # while the gateway's XADDs catch up (hold/release)
    _fragments: list[bytes] | None = None
    _fragmented_text = False
    # When the client last sent anything (a frame, a pong): what the idle timeout reads.
    last_heard = 0.0
    _assembler: WebsocketFrameAssembler | None = None

    # Sanic's message assembler (two Events, a Queue, two Locks: ~4 KiB) serves only
    # Sanic's path (`recv`), which most sockets never take: made when first needed, so an
    # idle socket does not keep one.
    @property
    def assembler(self) -> WebsocketFrameAssembler:
        if self._assembler is None:
            self._assembler = WebsocketFrameAssembler(self)
        return self._assembler

    @assembler.setter
    def assembler(self, value: WebsocketFrameAssembler) -> None:
        self._assembler = None  # Sanic's __init__ makes one: let it go

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        if self._fast:
            data = self._scan(data)
            if not data:
                return
        self.ws_proto.receive_data(data)
        data_to_send = self.ws_proto.data_to_send()
        events = self.ws_proto.events_received()
        if self.on_message is not None and self._behind == 0:
            events = [event for event in events
                      if not (isinstance(event, Frame) and self._take_message(event))]
        else:
            self._behind += sum(1 for event in events if isinstance(event, Frame)
                                and event.fin and event.opcode in _DATA_OPCODES)
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

    def _scan(self, data: bytes) -> bytes:
        """Handle the common frames at the start of the data; return what websockets must
        parse (empty unless a frame needs it or the connection is closing)."""
        if self._partial:
            data, self._partial = self._partial + data, b""
        if self.ws_proto.state is not State.OPEN:
            self._fast = False  # websockets completes the closing handshake
            return data
        messages: list[tuple[bool, bytes]] = []
        used, hand_over = ws_frames.scan(data, self.ws_proto.max_message_size or 1 << 62,
                                         messages)
        for text, payload in messages:
            self._message(text, payload)
        if hand_over:
            self._fast = False
            return data[used:]
        if used < len(data):
            self._partial = data[used:]
        return b""

    def _message(self, text: bool, payload: bytes) -> None:
        """A complete data message, to `on_message` (if the socket is still open)."""
        if self.ws_proto.state is not State.OPEN:
            return  # failed or closing: what follows is not read
        if self.on_message is None:
            if self._early is None:
                self._early = []
            self._early.append((text, payload))
            if len(self._early) == _PAUSE_AT:
                self._apply_reading()  # until the gateway serves the socket
            return
        if not text:
            self.on_message(payload)
            return
        try:
            message = payload.decode()
        except UnicodeDecodeError:
            self.fail_connection(CloseCode.INVALID_PAYLOAD, "invalid utf-8")
            return
        self.on_message(message)

    def start(self, on_message: Callable[[str | bytes], None]) -> None:
        """Hand every message to `on_message` from now on, first those read before."""
        self.on_message = on_message
        early, self._early = self._early or [], None
        for text, payload in early:
            self._message(text, payload)
        if len(early) >= _PAUSE_AT:
            self._apply_reading()

    def ping_now(self) -> None:
        """Send a ping now if nothing else is writing (else skip it: the client is busy
        reading what we send, and the next interval pings again). Its pong only needs to
        arrive: any data updates `last_heard`."""
        transport = getattr(self.io_proto, "transport", None)
        if (transport is None or transport.is_closing() or self.conn_mutex.locked()
                or self.ws_proto.state is not State.OPEN):
            return
        self.ws_proto.send_ping(os.urandom(4))
        for data in self.ws_proto.data_to_send():
            transport.write(data)

    def behind(self) -> bool:
        """Whether messages wait on Sanic's path for `recv`."""
        return self._behind > 0

    def message_taken(self) -> None:
        """`recv` returned a message that took Sanic's path."""
        self._behind = max(0, self._behind - 1)

    def _take_message(self, frame: Frame) -> bool:
        """Hand a data frame's message to `on_message`; False for other frames.

        websockets has already checked the frame, including the size of a fragmented
        message (max_size: close 1009); what is left is putting fragments together and
        the UTF-8 of text (1007).
        """
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragments = [bytes(frame.data)]
                self._fragmented_text = opcode is Opcode.TEXT
                return True
            payload, text = bytes(frame.data), opcode is Opcode.TEXT
        elif opcode is Opcode.CONT:
            if self._fragments is None:
                return True
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return True
            payload, text = b"".join(self._fragments), self._fragmented_text
            self._fragments = None
        elif opcode is Opcode.PONG:
            return True  # nothing to do but `last_heard`, already set
        else:
            return False
        self._message(text, payload)
        return True

    def hold(self) -> None:
        """Stop reading from this client for now (the gateway is behind with Redis)."""
        self._held = True
        self._apply_reading()

    def release(self) -> None:
        self._held = False
        self._apply_reading()

    def _set_reading(self, reading: bool) -> None:
        self._paused = not reading
        self._apply_reading()

    def _apply_reading(self) -> None:
        """Read unless one of the reasons to stop holds (Sanic's own: a message not
        yet taken; ours: chunks waiting, Redis behind, messages waiting for `start`)."""
        transport = getattr(self.io_proto, "transport", None)
        if transport is None or transport.is_closing():
            return
        early = self._early is not None and len(self._early) >= _PAUSE_AT
        if self._paused or self._held or early or self.pause_frame_fut:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def resume_frames(self) -> bool:
        """Sanic resumes reading whenever its handler takes a message; not while we wait."""
        resumed: bool = super().resume_frames()  # type: ignore[no-untyped-call]
        if self._paused or self._held or self._early:
            self._apply_reading()
        return resumed


def install() -> None:
    """Have Sanic build the gateway's WebSocket connections from GatewayWebsocket.

    Sanic offers no setting for this class; its handshake looks the name up in its
    module at call time, so replacing it there is enough.
    """
    websocket_protocol.WebsocketImplProtocol = GatewayWebsocket  # type: ignore[attr-defined]
