"""The gateway's sockets: open, serve frames, close; and the drain on shutdown."""

from __future__ import annotations

import asyncio
import logging
import uuid

from redis.exceptions import RedisError
from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed

from gateway.event_sink import EventSink
from gateway.outbox import Outbox
from gateway.session import Forward, Session
from gateway.subscriber import Subscriber
from shared import keys
from shared.close_codes import CloseCode
from shared.events import Join, JoinRefused, control_decoder, event_encoder
from shared.frames import ErrorText, Shutdown, encode_frame, error_frame
from shared.process_id import process_id
from shared.settings import Settings

log = logging.getLogger(__name__)

_closing: set[asyncio.Task[None]] = set()

_EVENT_NAMES = {"join": "join_room", "leave": "leave_room", "status": "update_status",
                "send": "send_to_peer"}


class Socket:
    """One client connection: its session, its outbox, its WebSocket."""

    __slots__ = ("ws", "session", "outbox", "channel")

    def __init__(self, ws: WebsocketImplProtocol, session: Session, outbox: Outbox) -> None:
        self.ws = ws
        self.session = session
        self.outbox = outbox
        self.channel = keys.connection_channel(session.conn_id).encode()

    def deliver(self, payload: bytes) -> None:
        """What the relay published for this socket: a frame, or a word for the gateway."""
        if payload[:1] == b"{":
            self.outbox.push(payload)
            return
        control = control_decoder.decode(payload)
        if isinstance(control, JoinRefused):
            self.session.join_refused(control)

    def close_soon(self, code: CloseCode, reason: str = "") -> None:
        """Close from synchronous code (a pub/sub callback); the handler then cleans up."""
        task = asyncio.get_running_loop().create_task(self.ws.close(code, reason))
        # The loop holds tasks weakly: keep this one alive until it has run.
        _closing.add(task)
        task.add_done_callback(_closing.discard)


class Gateway:
    """Everything one gateway process shares among its sockets."""

    def __init__(self, settings: Settings, sink: EventSink, subscriber: Subscriber) -> None:
        self.settings = settings
        self.id = process_id("gateway")
        self.sink = sink
        self.subscriber = subscriber
        self.sockets: dict[bytes, Socket] = {}
        self.draining = False
        self._all_closed = asyncio.Event()  # set once draining and the last socket is gone

    async def serve(self, ws: WebsocketImplProtocol) -> None:
        """Serve one WebSocket from open to close."""
        session = Session(str(uuid.uuid4()), self.id, self.settings.shards)
        if self.draining:
            await ws.send(encode_frame(Shutdown(seconds=0)).decode())
            await ws.close(CloseCode.SHUTDOWN, "shutdown")
            return
        socket = Socket(ws, session, None)  # type: ignore[arg-type]
        socket.outbox = Outbox(ws, self.settings.send_buffer_bytes,
                               lambda: socket.close_soon(CloseCode.TRY_AGAIN_LATER, "slow"))
        try:
            await self.subscriber.subscribe(socket.channel, socket.deliver)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("cannot subscribe a new socket: %s", exc)
            await ws.close(CloseCode.TRY_AGAIN_LATER, "service unavailable")
            return
        self.sockets[socket.channel] = socket
        try:
            await self._receive(socket)
        except (ConnectionClosed, WebsocketClosed, asyncio.CancelledError):
            pass
        except Exception:
            # A bug of ours, not the client's doing: say nothing of it on the wire.
            log.exception("socket %s failed", session.conn_id)
            socket.close_soon(CloseCode.INTERNAL_ERROR)
        finally:
            await self._close(socket)

    async def _receive(self, socket: Socket) -> None:
        ws, session, outbox = socket.ws, socket.session, socket.outbox
        while True:
            text = await ws.recv()
            if text is None:
                continue
            if isinstance(text, bytes):
                outbox.push(error_frame(ErrorText.INVALID_MESSAGE))
                continue
            result = session.handle(text)
            if result is None:
                continue
            if isinstance(result, bytes):
                outbox.push(result)
                continue
            await self._forward(socket, result)

    async def _forward(self, socket: Socket, forward: Forward) -> bool:
        try:
            await self.sink.send(forward.stream, event_encoder.encode(forward.event))
            return True
        except RedisError:
            event = forward.event
            if isinstance(event, Join):  # the join never reached a relay
                socket.session.join_refused(JoinRefused(seq=event.seq))
            name = _EVENT_NAMES[type(event).__struct_config__.tag]  # type: ignore[index]
            socket.outbox.push(error_frame(ErrorText.SERVICE_UNAVAILABLE, name))
            return False

    async def _close(self, socket: Socket) -> None:
        self.sockets.pop(socket.channel, None)
        try:
            await self.subscriber.unsubscribe(socket.channel)
            leave = socket.session.leave()
            if leave is not None:
                await self._forward(socket, leave)
        finally:
            if self.draining and not self.sockets:
                self._all_closed.set()

    def subscriptions_lost(self, channels: list[bytes]) -> None:
        """Pub/sub broke: these sockets may have missed frames, so they must rejoin."""
        for channel in channels:
            socket = self.sockets.get(channel)
            if socket is not None:
                socket.close_soon(CloseCode.SERVICE_RESTART, "subscription lost")

    async def drain(self) -> None:
        """SIGTERM: warn every socket, keep serving N seconds, then close them with 4200."""
        self.draining = True
        seconds = self.settings.shutdown_seconds
        notice = encode_frame(Shutdown(seconds=seconds))
        log.info("shutting down in %d s, %d sockets", seconds, len(self.sockets))
        for socket in list(self.sockets.values()):
            socket.outbox.push(notice)
        await asyncio.sleep(seconds)
        sockets = list(self.sockets.values())
        await asyncio.gather(*(s.outbox.flush(1.0) for s in sockets))
        await asyncio.gather(
            *(s.ws.close(CloseCode.SHUTDOWN, "shutdown") for s in sockets),
            return_exceptions=True,
        )
        # Each handler's close path sends its Leave; wait for them within a bound.
        if self.sockets:
            try:
                await asyncio.wait_for(self._all_closed.wait(), 5.0)
            except TimeoutError:
                log.warning("%d sockets still closing at exit", len(self.sockets))
