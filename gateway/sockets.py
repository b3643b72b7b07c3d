"""The gateway's sockets: open, serve frames, forward events, close; and the drain on
shutdown. Each socket is a gateway/socket.py Socket. The decisions are elsewhere, each
with its own tests: where an event goes (gateway/routing.py), what waits for the join
hook (gateway/join_gate.py), which clients wait for Redis (gateway/holds.py), who is
silent too long (gateway/keep_alive.py); a leave Redis did not take is retried by
gateway/leave_retry.py."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine
from typing import Any

from gateway.event_sink import EventSink
from gateway.holds import Holds
from gateway.ice_servers import IceServers
from gateway.join_gate import JoinGate
from gateway.join_hook import JoinHook
from gateway.join_tokens import JoinTokens
from gateway.keep_alive import keep_alive
from gateway.leave_retry import retry_leave
from gateway.metrics import GatewayMetrics
from gateway.outbox import Outbox
from gateway.rate_limit import FrameRate, Verdict
from gateway.routing import Route, route
from gateway.session import Forward, Session
from gateway.socket import Socket
from gateway.subscriber import Subscriber
from gateway.wire_budget import WireBudget, WireLimits
from gateway.ws_connection import WsConnection
from shared import keys
from shared.close_codes import CloseCode
from shared.events import (
    EVENT_NAMES,
    Detach,
    Join,
    JoinRefused,
    Leave,
    LeaveReason,
    Resume,
    event_encoder,
)
from shared.frame_bytes import with_fields
from shared.frames import ErrorText, Shutdown, encode_frame, error_frame
from shared.settings import Settings

log = logging.getLogger(__name__)

class Gateway:
    """Everything one gateway process shares among its sockets."""

    def __init__(self, gateway_id: str, settings: Settings, sink: EventSink,
                 subscriber: Subscriber) -> None:
        self.settings = settings
        self.id = gateway_id
        self.sink = sink
        self.subscriber = subscriber
        self.sockets: dict[str, Socket] = {}  # by socket id
        self.by_channel: dict[bytes, Socket] = {}
        self._shard_of_stream = {keys.shard_stream(shard): shard
                                 for shard in range(settings.shards)}
        self.draining = False
        self.batches: list[Outbox] = []  # outboxes holding frames of the current read
        subscriber.after_deliveries = self.send_batches
        self.join_tokens = JoinTokens(settings.join_secret, settings.join_public_key)
        self.ice = IceServers(settings.turn_secret, settings.turn_ttl_s, settings.ice_url_list)
        self.metrics = GatewayMetrics(
            lambda: len(self.sockets),
            lambda: max(subscriber.generation - 1, 0) + max(sink.connections - 1, 0),
            lambda: sink.wait_shortfalls)
        self.holds = Holds()
        sink.drained = self.holds.release_all
        self.wire_limits = WireLimits(settings.wire_frame_rate, settings.wire_frame_burst,
                                      settings.wire_byte_rate, settings.wire_byte_burst,
                                      settings.max_fragments)
        self._all_closed = asyncio.Event()  # set once draining and the last socket is gone
        self.join_gate = JoinGate(
            JoinHook(settings.join_hook_url, settings.webhook_secret,
                     settings.join_hook_timeout_ms / 1000, self.metrics.registry),
            self._forward, self._spawn) if settings.join_hook_url else None
        # Tasks nobody awaits (subscriptions, leave retries): the loop holds tasks weakly,
        # so each is kept here until it has run.
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` without awaiting it."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open(self, connection: WsConnection) -> None:
        """A new WebSocket (from gateway/ws_upgrade.py)."""
        try:
            self.serve(connection)
        except Exception:
            connection.fail_for_bug("serving a new socket failed")

    def serve(self, connection: WsConnection) -> None:
        """Take a new WebSocket: serve its messages as they are read (WsConnection calls
        `receive`) until TCP closes (`_close`). Nothing waits on an open socket: an idle
        one costs memory, not a task. Its channel is subscribed when it joins a room."""
        connection.budget = WireBudget(self.wire_limits, connection.last_heard)
        if self.draining:
            connection.send_texts([encode_frame(Shutdown(seconds=0))])
            connection.close(CloseCode.SHUTDOWN, "shutdown")
            return
        settings = self.settings
        session = Session(str(uuid.uuid4()), self.id, settings.shards, self.join_tokens,
                          self.metrics.received, keep_names=settings.keeps_room_names)
        rate = FrameRate(settings.frame_rate, settings.frame_burst, connection.last_heard)
        outbox = Outbox(connection, settings.send_buffer_bytes, self.metrics.frames_sent)
        socket = Socket(connection, session, outbox, rate, self)
        log.info("socket %s opened by %s", session.socket_id, connection.client)
        self.sockets[session.socket_id] = socket
        if connection.lost:  # the client left during the handshake
            self._close(socket)
            return
        connection.on_lost = lambda: self._close(socket)
        # First the messages read meanwhile, then each as it is read.
        connection.start(lambda message: self.receive(socket, message))

    def receive(self, socket: Socket, message: str | bytes) -> None:
        """One message from the client: limits, then a reply or an event for a relay."""
        verdict = socket.rate.check(time.monotonic())
        if verdict is not Verdict.ALLOWED:
            if verdict is Verdict.ABUSIVE:
                socket.connection.fail(CloseCode.POLICY_VIOLATION, "rate limit exceeded")
            else:
                socket.outbox.push(error_frame(ErrorText.RATE_LIMITED))
            return
        if isinstance(message, bytes):
            self.metrics.received["invalid"] += 1
            socket.outbox.push(error_frame(ErrorText.INVALID_MESSAGE))
            return
        result = socket.session.handle(message)
        if result is None:
            return
        if isinstance(result, bytes):
            socket.outbox.push(result)
            return
        self._route(socket, result)

    def _route(self, socket: Socket, forward: Forward) -> None:
        """Forward, unless the app is to be asked about a join first (gateway/join_gate.py)."""
        if self.join_gate is None:  # the hot path: no hook, nothing ever waits for one
            self._forward(socket, forward)
        else:
            self.join_gate.route(socket, forward)

    def _forward(self, socket: Socket, forward: Forward) -> None:
        """XADD the event, or tell the client the service cannot take it now (rule 5)."""
        event = forward.event
        kind = type(event)
        joining = kind is Join or kind is Resume
        target = None
        if joining and socket.waiting is None:
            # (The shard of this event's stream: the session may have joined on since.)
            target = keys.connection_channel(self._shard_of_stream[forward.stream],
                                             socket.session.socket_id).encode()
        live = self.subscriber.is_live
        decision = route(
            joining=joining, leaving=kind is Leave or kind is Detach,
            waiting=socket.waiting is not None, channel=socket.channel,
            channel_live=socket.channel is not None and live(socket.channel),
            target=target, target_live=target is not None and live(target))
        if decision is Route.WAIT:
            assert socket.waiting is not None
            socket.waiting.append(forward)
        elif decision is Route.SUBSCRIBE_FIRST:
            assert target is not None
            self._switch_channel(socket, target)
            socket.waiting = [forward]
            self._spawn(self._subscribe_then_forward(socket, target))
        elif decision is Route.SEND:
            if joining:
                socket.awaiting_joined = True
            if self.sink.submit(forward.stream, event_encoder.encode(event),
                                lambda _: self._not_taken(socket, forward)):
                self.holds.hold(socket.connection)  # Redis is behind: this client waits
        else:
            self._not_taken(socket, forward)

    def _switch_channel(self, socket: Socket, channel: bytes) -> None:
        socket.channel = channel
        if channel not in socket.channels:
            socket.channels.append(channel)
        self.by_channel[channel] = socket

    async def _subscribe_then_forward(self, socket: Socket, channel: bytes) -> None:
        """Subscribe the socket's channel, then send what it sent meanwhile; its join is
        refused (`service unavailable`) if Redis cannot take the subscription now."""
        live = await self.subscriber.subscribe(channel, socket.deliver)
        waiting, socket.waiting = socket.waiting or [], None
        if socket.closed:
            self.subscriber.unsubscribe(channel)
            return  # closed meanwhile: its join never went out, so nothing need leave
        for forward in waiting:
            if not live and isinstance(forward.event, Join | Resume):
                self._not_taken(socket, forward)
            else:
                self._forward(socket, forward)

    def send_batches(self) -> None:
        """One write per socket for what one read from Redis brought it: at full load a
        socket often gets several frames at once, and each write is a system call."""
        batches, self.batches[:] = list(self.batches), []
        for outbox in batches:
            try:
                outbox.send_batch()
            except Exception:
                # A bug of ours for one socket: the others' frames still go out.
                log.exception("sending to a socket failed")

    def joined_room_for(self, session: Session, frame: bytes) -> bytes:
        """A joined_room with what only this gateway may know: the resume token (the
        relay has its digest alone) and the TURN credentials (the secret stays here)."""
        fields: dict[str, object] = (
            self.ice.fields(session.conn_id, time.time()) if self.ice.any else {})
        if session.token is not None:
            fields["resume_token"] = session.token
        return with_fields(frame, fields)

    def replay_broken(self, socket: Socket) -> None:
        """The resumed socket cannot be given every frame it lacks (never expected): its
        peer leaves, as if it could not resume, rather than miss frames in silence."""
        log.error("kept frames missing for resumed peer %s: it leaves", socket.session.conn_id)
        leave = socket.session.leave(LeaveReason.CLOSED)
        if leave is not None:
            self._forward(socket, leave)
        socket.outbox.push(error_frame(ErrorText.CANNOT_RESUME, "resume"))
        socket.connection.close_broken("cannot resume")

    def evicted(self, socket: Socket) -> None:
        """The app removed the socket's peer (docs/protocol.md, "Removal"): it is closed
        with 4003 once its `removed` frame, held for this read's batch, is written."""
        outbox = socket.outbox
        outbox.send_batch()
        if outbox.queue is None:
            socket.connection.close(CloseCode.REMOVED, "removed")
            return

        async def close_when_sent() -> None:  # a slow reader: what it is owed goes first
            await outbox.flush(1.0)
            socket.connection.close(CloseCode.REMOVED, "removed")
        self._spawn(close_when_sent())

    def _not_taken(self, socket: Socket, forward: Forward) -> None:
        event = forward.event
        if isinstance(event, Leave | Detach):
            # If Redis kept its data, the peer would otherwise stay a member for good.
            self._spawn(retry_leave(self.sink, forward))
        elif isinstance(event, Join | Resume):  # it never reached a relay
            socket.awaiting_joined = False
            socket.session.join_refused(JoinRefused(seq=event.seq))
        name = EVENT_NAMES[type(event)]
        socket.outbox.push(error_frame(ErrorText.SERVICE_UNAVAILABLE, name))

    def _close(self, socket: Socket) -> None:
        """TCP closed (or never served): forget the socket, and its peer leaves its room.

        The leave goes first and nothing can skip it (docs/architecture.md, rule 6): a socket
        whose cleanup stopped half-way would stay a member of its room for as long as
        this gateway lives, and enough of them fill it. Metrics come after, and a failure
        there is logged, never passed on.
        """
        if self.sockets.pop(socket.session.socket_id, None) is None:
            return
        socket.closed = True
        try:
            try:
                leave = socket.session.closed()
                if leave is not None:
                    self._route(socket, leave)
            finally:
                for channel in socket.channels:
                    self.by_channel.pop(channel, None)
                    # The one being subscribed goes once the subscription is answered.
                    if socket.waiting is None or channel != socket.channel:
                        self.subscriber.unsubscribe(channel)
        finally:
            if self.draining and not self.sockets:
                self._all_closed.set()
        try:
            self.metrics.closed(socket.connection.ended_by(),
                                time.monotonic() - socket.opened)
        except Exception:
            log.exception("counting a closed socket failed")

    async def keep_alive(self) -> None:
        """Ping every socket, close the silent ones (gateway/keep_alive.py)."""
        await keep_alive(lambda: (s.connection for s in self.sockets.values()),
                         self.settings.ping_interval_s, self.settings.idle_timeout_s)

    def close_all(self, code: CloseCode, reason: str) -> None:
        for socket in list(self.sockets.values()):
            socket.connection.close(code, reason)

    def subscriptions_lost(self, channels: list[bytes]) -> None:
        """Pub/sub broke: these sockets may have missed frames, so they must rejoin."""
        for channel in channels:
            socket = self.by_channel.get(channel)
            if socket is not None:
                socket.connection.close(CloseCode.SERVICE_RESTART, "subscription lost",
                                        read_on=True)

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
        for socket in sockets:
            socket.connection.close(CloseCode.SHUTDOWN, "shutdown", read_on=True)
        # Each socket sends its Leave as TCP closes; wait for them within a bound.
        if self.sockets:
            try:
                await asyncio.wait_for(self._all_closed.wait(), 5.0)
            except TimeoutError:
                log.warning("%d sockets still closing at exit", len(self.sockets))
