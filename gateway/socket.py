"""One client connection as the gateway holds it: its session, its outbox, its WebSocket,
its limits, and the channels its frames come on."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import msgspec

from gateway.join_hook import HookRequest
from gateway.outbox import Outbox
from gateway.rate_limit import FrameRate
from gateway.session import Forward, Session
from gateway.ws_connection import WsConnection
from shared.close_codes import CloseCode
from shared.events import (
    Evicted,
    JoinRefused,
    ReplayBroken,
    Resumed,
    TakenOver,
    control_decoder,
)
from shared.frame_bytes import event_prefix

if TYPE_CHECKING:
    from gateway.sockets import Gateway

log = logging.getLogger(__name__)

_JOINED_ROOM = event_prefix("joined_room")


class Socket:
    """One client connection: its session, its outbox, its WebSocket, its limits."""

    __slots__ = ("connection", "session", "outbox", "channel", "channels", "rate", "gateway",
                 "awaiting_joined", "opened", "waiting", "hook_queue", "closed")

    def __init__(self, connection: WsConnection, session: Session, outbox: Outbox,
                 rate: FrameRate, gateway: Gateway) -> None:
        self.connection = connection
        self.session = session
        self.outbox = outbox
        # The shard channel of its room (subscribed, or being), once it joined one; and
        # every channel it has had, kept until it closes: replies to what it sent in an
        # earlier room may still be on their way there.
        self.channel: bytes | None = None
        self.channels: list[bytes] = []
        self.rate = rate
        self.gateway = gateway
        # A join or resume is on its way: its joined_room gets this gateway's fields.
        self.awaiting_joined = False
        self.opened = time.monotonic()
        # While its channel is being subscribed: the events sent meanwhile, in order.
        self.waiting: list[Forward] | None = None
        # While the join hook is asked about a join: what came after it, in order (joins
        # with what the hook is to be asked about them).
        self.hook_queue: list[tuple[Forward, HookRequest | None]] | None = None
        # Its TCP connection closed and the gateway let it go (its peer left).
        self.closed = False

    def deliver(self, payload: bytes) -> None:
        """What the relay published for this socket: a frame, or a word for the gateway.
        Frames wait for the end of the read from Redis (Gateway.send_batches)."""
        if payload[:1] == b"{":
            if self.awaiting_joined and payload.startswith(_JOINED_ROOM):
                self.awaiting_joined = False
                payload = self.gateway.joined_room_for(self.session, payload)
            if self.outbox.push_batched(payload):
                self.gateway.batches.append(self.outbox)
            return
        try:
            control = control_decoder.decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # A newer relay's word this gateway does not know (rolling deploy): ignore it.
            log.warning("unknown control message for %s: %s", self.session.conn_id, exc)
            return
        if isinstance(control, JoinRefused):
            self.session.join_refused(control)
        elif isinstance(control, Resumed):
            self.session.resumed(control)
        elif isinstance(control, TakenOver):
            self.session.taken_over()
            self.connection.close(CloseCode.TAKEN_OVER, "resumed elsewhere")
        elif isinstance(control, ReplayBroken):
            self.gateway.replay_broken(self)
        elif isinstance(control, Evicted):
            # Removed by the app (its `removed` frame is already in the outbox): closed
            # without a leave, the relay has let it go (docs/protocol.md, "Removal").
            if self.session.evicted(control):
                self.gateway.evicted(self)
