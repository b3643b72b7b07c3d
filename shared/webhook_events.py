"""The webhooks' bodies (docs/protocol.md, "Webhooks"), JSON as the app receives them and as
they wait in a shard's outbox, and what a relay keeps of each room's life to number them.
"""

from __future__ import annotations

import msgspec

from shared.events import Status, Topology

# `info` of a peer without any: JSON null.
NO_INFO = msgspec.Raw(b"null")


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """What every body has: its `id` (the same on every retry), the room's name, the
    event's number within this life of the room, and when it happened (unix ms)."""

    id: str
    room: str
    room_seq: int
    at: int


class RoomStarted(WebhookEvent, frozen=True, kw_only=True, tag="room.started"):
    topology: Topology


class PeerJoined(WebhookEvent, frozen=True, kw_only=True, tag="peer.joined"):
    peer_id: str
    user: str | None
    info: msgspec.Raw
    status: Status
    host: bool  # is it the host now


class HostChanged(WebhookEvent, frozen=True, kw_only=True, tag="host.changed"):
    host_id: str
    user: str | None


class PeerLeft(WebhookEvent, frozen=True, kw_only=True, tag="peer.left"):
    peer_id: str
    user: str | None
    reason: str  # a LeaveReason (or one a newer version adds)


class RoomFinished(WebhookEvent, frozen=True, kw_only=True, tag="room.finished"):
    started_at: int  # unix ms
    duration_s: float
    peak_members: int
    joins: int


AnyWebhookEvent = RoomStarted | PeerJoined | HostChanged | PeerLeft | RoomFinished

webhook_encoder = msgspec.json.Encoder()


class Delivery(msgspec.Struct, frozen=True):
    """What the sender reads of a body: the rest is sent as it is."""

    id: str
    type: str
    at: int


delivery_decoder = msgspec.json.Decoder(Delivery)


class RoomLife(msgspec.Struct, frozen=True, array_like=True):
    """One life of a room, from its first join to its last leave, as the relay keeps it in
    Redis beside the room (keys.room_lives): so that a relay that takes the shard over
    numbers the room's next event where the last one left off."""

    name: str  # of this life: the first part of its events' ids
    seq: int  # the room_seq of its last event
    started: int  # unix ms
    peak: int  # the most members it had
    joins: int


life_encoder = msgspec.msgpack.Encoder()
life_decoder = msgspec.msgpack.Decoder(RoomLife)
