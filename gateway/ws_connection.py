"""One client's WebSocket after the handshake: the gateway's own asyncio Protocol.

Sanic parses the HTTP upgrade (gateway/ws_upgrade.py) and hands the socket over. From
then on nothing of Sanic's stays per socket: no HttpProtocol, Request, handler task,
auto-closer task or message assembler (an idle socket's memory), and no task, queue or
lock per message (its CPU). Messages go to `on_message` as they are read, in order.

Frames: complete masked data frames and pongs are parsed by gateway/ws_frames.py. From
the first other frame on (a close, a ping, a fragment, a broken rule) websockets' sans-I/O
state machine parses everything and answers as RFC 6455 asks (pongs, the closing
handshake, 1002, 1009), and data messages still come to `on_message`. A text message
that is not UTF-8 fails the connection with 1007 (RFC 6455, 8.1).

Bounds (docs/protocol.md, "Limits"; docs/architecture.md, rule 6): every byte and every frame read
is charged to the socket's WireBudget before anything parses it, so a flood of pings or
continuations is closed (1008) after a bounded amount of work, whatever its frames are;
a message of too many fragments is closed 1009. Reading pauses while the client does not
read what it is sent (pongs included), and only complete frames count as signs of life
for the idle timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from gateway import ws_frames
from gateway.wire_budget import WireBudget
from shared.close_codes import CloseCode

log = logging.getLogger(__name__)

# Messages read before the gateway serves the socket, beyond which reading pauses.
_EARLY_MAX = 4


class WsConnection(asyncio.Protocol):
    """A WebSocket in the OPEN state on `transport`, until the TCP connection is lost."""

    __slots__ = ("transport", "max_size", "close_timeout", "_proto", "on_message", "on_lost",
                 "on_writable", "last_heard", "lost", "write_paused", "_fast", "_partial",
                 "_early", "_held", "_fragments", "_fragmented_text", "_close_timer",
                 "_reading_on", "budget", "_counter", "_failed", "hook_request", "client")

    def __init__(self, transport: asyncio.Transport, max_size: int | None,
                 close_timeout: float) -> None:
        self.transport = transport
        self.max_size = max_size  # of a message, beyond which: close 1009
        self.close_timeout = close_timeout
        # websockets' state machine (~1.5 KB), made when a frame first needs it (`_ws`):
        # until then the connection is OPEN, and most sockets stay on the fast path.
        self._proto: ServerProtocol | None = None
        # Set by the gateway: `on_message` by `start`; called once, when TCP closes;
        # called when the client read enough of what waited for it.
        self.on_message: Callable[[str | bytes], None] | None = None
        self.on_lost: Callable[[], None] | None = None
        self.on_writable: Callable[[], None] | None = None
        # When the client last sent a complete frame (a pong too): what the idle timeout
        # reads. Bytes alone are not enough: one byte every few seconds would hold a socket.
        self.last_heard = time.monotonic()
        self.lost = False
        # With a join hook: the upgrade's Origin and the headers it is to be given.
        self.hook_request: tuple[str | None, dict[str, str]] | None = None
        self.client = ""  # its address (shared/client_address.py), for the logs
        self.write_paused = False  # the kernel and the transport hold too much for the client
        self._fast = True  # frames are scanned by ws_frames until one needs websockets
        self._partial = b""  # the start of a frame not complete yet (fast path)
        self._early: list[tuple[bool, bytes]] | None = None  # messages before `start`
        self._held = False  # while the gateway's XADDs catch up (hold/release)
        self._fragments: list[bytes] | None = None
        self._fragmented_text = False
        self._close_timer: asyncio.TimerHandle | None = None
        # After `close(read_on=True)`: messages keep coming until the client's close frame.
        self._reading_on = False
        # What the client may send (set by the gateway as it takes the socket, before any
        # frame is read); the frames handed to websockets are counted by `_counter`.
        self.budget: WireBudget | None = None
        self._counter: ws_frames.FrameCounter | None = None
        self._failed = False  # nothing more is read

    @property
    def open(self) -> bool:
        """Whether frames can still be sent (no close sent or received, TCP up)."""
        return self._ws_open() and not self.transport.is_closing()

    def _ws_open(self) -> bool:
        """Whether the WebSocket is OPEN (no close sent or received)."""
        return self._proto is None or self._proto.state is State.OPEN

    def _ws(self) -> ServerProtocol:
        if self._proto is None:
            self._proto = ServerProtocol(max_size=self.max_size, state=State.OPEN, logger=log)
        return self._proto

    # ---- asyncio.Protocol ----

    def data_received(self, data: bytes) -> None:
        if self._failed:
            return
        now = time.monotonic()
        budget = self.budget
        if budget is not None:
            budget.refill(now)
            if not budget.take_bytes(len(data)):
                self.fail(CloseCode.POLICY_VIOLATION, "too many bytes")
                return
        if self._fast:
            data = self._scan(data, now)
            if not data:
                return
        if budget is not None:
            if self._counter is None:  # from the first frame handed over: a frame boundary
                self._counter = ws_frames.FrameCounter()
            allowed = budget.frames_left
            frames = self._counter.count(data, allowed)
            if frames > allowed:
                self.fail(CloseCode.POLICY_VIOLATION, "too many frames")
                return
            budget.take_frames(frames)
        proto = self._ws()
        proto.receive_data(data)
        events = proto.events_received()
        if events:
            self.last_heard = now
        for event in events:
            if isinstance(event, Frame):
                self._take_frame(event)
        self._send_pending()

    def eof_received(self) -> bool | None:
        return None  # the client is gone: close our side too

    def pause_writing(self) -> None:
        # Back-pressure both ways: a client that does not read what it is sent is not
        # read either, so that what it sends cannot make us write (pongs) without bound.
        self.write_paused = True
        self._apply_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._apply_reading()
        if self.on_writable is not None:
            self.on_writable()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        self._ended()

    def _ended(self) -> None:
        """Nothing more will be read: the gateway forgets the socket (once)."""
        on_lost, self.on_lost = self.on_lost, None
        self.on_message = self.on_writable = None
        if on_lost is not None:
            on_lost()

    # ---- the gateway's side ----

    def start(self, on_message: Callable[[str | bytes], None]) -> None:
        """Hand every message to `on_message` from now on, first those read before."""
        self.on_message = on_message
        early, self._early = self._early or [], None
        for text, payload in early:
            self._message(text, payload)
        if len(early) >= _EARLY_MAX:
            self._apply_reading()

    def send_texts(self, payloads: list[bytes]) -> None:
        """Write these UTF-8 payloads as text frames, in one write."""
        if len(payloads) == 1:
            self.transport.write(ws_frames.text_frame(payloads[0]))
        else:
            self.transport.write(b"".join([ws_frames.text_frame(p) for p in payloads]))

    def ping_now(self) -> None:
        """Send a ping unless the client is behind reading what we send (the next interval
        pings again). Its pong only needs to arrive: any complete frame updates
        `last_heard`, a pong as any other (a frame's bytes alone do not)."""
        if not self.write_paused and self.open:
            self.transport.write(ws_frames.PING)

    def close(self, code: CloseCode, reason: str = "", read_on: bool = False) -> None:
        """The closing handshake: a close frame now; TCP closes once the client answered,
        or `close_timeout` seconds later. With `read_on`, the messages the client sent
        before it saw our close frame are still taken, until its own close frame (RFC
        6455 lets an endpoint receive after it sent a close): a session the server ends
        for its own reasons loses nothing the client had sent."""
        if self.open:
            self._reading_on = read_on
            self._ws().send_close(code, reason)
            self._send_pending()

    def fail(self, code: CloseCode, reason: str = "") -> None:
        """Fail the connection (RFC 6455, 7.1.7): a close frame, and nothing more read;
        the gateway is done with the socket at once (its peer leaves now), and TCP closes
        without waiting for the client's answer."""
        self._reading_on = False
        self._failed = True
        if self.open:
            self._ws().fail(code, reason)
            self._send_pending()
        else:
            self._close_transport()
        self._ended()

    def fail_for_bug(self, what: str) -> None:
        """A bug of ours, not the client's doing (called from an `except` block): logged
        with its traceback, and the socket failed with 1011, saying nothing of it on the
        wire."""
        log.exception(what)
        self.fail(CloseCode.INTERNAL_ERROR)

    def close_broken(self, reason: str) -> None:
        """Something the service owed this socket broke (never expected), and the client
        was told in a frame: closed with 1011 and `reason`, after what was sent."""
        self.close(CloseCode.INTERNAL_ERROR, reason)

    def ended_by(self) -> str:
        """How the socket ended (metrics): the close code the server sent, "client" when
        the client closed first, "lost" when TCP went without a closing handshake."""
        proto = self._proto  # every close, sent or received, goes through websockets
        if proto is None:
            return "lost"
        if proto.close_sent is not None and not proto.close_rcvd_then_sent:
            return str(proto.close_sent.code)
        return "client" if proto.close_rcvd is not None else "lost"

    def hold(self) -> None:
        """Stop reading from this client for now (the gateway is behind with Redis)."""
        self._held = True
        self._apply_reading()

    def release(self) -> None:
        self._held = False
        self._apply_reading()

    # ---- inside ----

    def _scan(self, data: bytes, now: float) -> bytes:
        """Handle the common frames at the start of the data; return what websockets must
        parse (empty unless a frame needs it or the connection is closing)."""
        if self._partial:
            data, self._partial = self._partial + data, b""
        if not self._ws_open():
            self._fast = False  # websockets completes the closing handshake
            return data
        messages: list[tuple[bool, bytes]] = []
        budget = self.budget
        allowed = budget.frames_left if budget is not None else 1 << 62
        used, hand_over, frames = ws_frames.scan(
            data, self.max_size or 1 << 62, messages, allowed)
        if frames:
            self.last_heard = now
        for text, payload in messages:
            self._message(text, payload)
        if budget is not None:
            budget.take_frames(frames)
            if frames > allowed:
                self.fail(CloseCode.POLICY_VIOLATION, "too many frames")
                return b""
        if hand_over:
            self._fast = False
            return data[used:]
        if used < len(data):
            self._partial = data[used:]
        return b""

    def _take_frame(self, frame: Frame) -> None:
        """A frame websockets parsed. It has checked the frame, including the size of a
        fragmented message (1009), and answered pings and closes; what is left is
        putting fragments together."""
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY:
            if not frame.fin:
                self._fragments = [bytes(frame.data)]
                self._fragmented_text = opcode is Opcode.TEXT
                return
            self._message(opcode is Opcode.TEXT, bytes(frame.data))
        elif opcode is Opcode.CONT and self._fragments is not None:
            # Counted, not only sized: a million empty fragments fit any size limit.
            if self.budget is not None and len(self._fragments) >= self.budget.limits.max_fragments:
                self._fragments = None
                self.fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments")
                return
            self._fragments.append(bytes(frame.data))
            if frame.fin:
                payload, self._fragments = b"".join(self._fragments), None
                self._message(self._fragmented_text, payload)

    def _message(self, text: bool, payload: bytes) -> None:
        """A complete data message, to `on_message` (if the socket is still open)."""
        if not self._ws_open() and not self._reading_on:
            # Failed, or closing without `read_on`: what follows is not read. (websockets
            # itself passes on no data frame that follows the client's close frame.)
            return
        on_message = self.on_message
        if on_message is None:
            if self._early is None:
                self._early = []
            self._early.append((text, payload))
            if len(self._early) == _EARLY_MAX:
                self._apply_reading()  # until the gateway serves the socket
            return
        message: str | bytes = payload
        if text:
            try:
                message = payload.decode()
            except UnicodeDecodeError:
                self.fail(CloseCode.INVALID_PAYLOAD, "invalid utf-8")
                return
        try:
            on_message(message)
        except Exception:
            self.fail_for_bug("handling a message failed")

    def _send_pending(self) -> None:
        """Write what websockets has to send; close TCP where it says so."""
        proto = self._ws()
        for data in proto.data_to_send():
            if data:
                if not self.transport.is_closing():
                    self.transport.write(data)
            else:
                # The server closes TCP first once the closing handshake is done or the
                # connection failed (RFC 6455, 7.1.1).
                self._close_transport()
        if proto.close_expected():
            self._abort_later()  # the client may never answer our close frame

    def _close_transport(self) -> None:
        """Close TCP once what is written has gone out."""
        transport = self.transport
        proto = self._proto
        if (proto is not None and proto.close_rcvd is None and transport.can_write_eof()
                and not transport.is_closing()):
            # Failed while the client may still be sending (a flood, a broken frame):
            # closing now, with its bytes unread, would make the kernel reset the
            # connection and drop our close frame, so the client would never learn why.
            # Send FIN after it instead, and read no more; the abort below ends it.
            transport.pause_reading()
            transport.write_eof()
        else:
            transport.close()
        self._abort_later()  # a client that does not read may never take it
        # Whether websockets failed the connection (1002, 1009...) or we did, nothing
        # more is read: the gateway need not wait for TCP to forget the socket.
        self._failed = True
        self._ended()

    def _abort_later(self) -> None:
        """Drop TCP `close_timeout` seconds from now unless it has closed by then."""
        if self._close_timer is None and not self.lost:
            self._close_timer = asyncio.get_running_loop().call_later(
                self.close_timeout, self.transport.abort)

    def _apply_reading(self) -> None:
        """Read unless one of the reasons to stop holds: Redis behind, messages waiting
        for `start`, or the client not reading what it is sent."""
        if self.transport.is_closing() or self._failed:
            return
        early = self._early is not None and len(self._early) >= _EARLY_MAX
        if self._held or early or self.write_paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()
