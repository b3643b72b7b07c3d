"""Structs that cross Redis, encoded as msgpack.

Rolling deploys mix versions: a struct only ever gains fields with defaults, no field is
retyped, and decoders ignore fields they do not know (msgspec's default).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Topology(StrEnum):
    """Who sees whom in a room (protocol.md, "Star rooms")."""

    MESH = "mesh"  # everyone sees everyone: plain palava
    STAR = "star"  # the host sees everyone, every other member sees only the host


class Status(msgspec.Struct, frozen=True, omit_defaults=True):
    """A peer's validated status: the only two keys palava keeps."""

    name: str | None = None
    user_agent: str | None = None

    def merged(self, update: Status) -> Status:
        """This status with the keys `update` sets replaced (an empty update keeps all)."""
        return Status(
            name=self.name if update.name is None else update.name,
            user_agent=self.user_agent if update.user_agent is None else update.user_agent,
        )


EMPTY_STATUS = Status()


class Event(msgspec.Struct, frozen=True, tag_field="t"):
    """Something a socket asked of its room; XADDed by a gateway to the room's shard."""

    conn: str  # the sender's peer id
    room: str  # digest of the room name, never the name


class Join(Event, tag="join", frozen=True):
    gateway: str
    seq: int  # the socket's join counter, echoed in JoinRefused
    status: Status = EMPTY_STATUS
    # The topology the client named; None takes the room's (mesh for a new room).
    topology: Topology | None = None


class Leave(Event, tag="leave", frozen=True):
    pass


class UpdateStatus(Event, tag="status", frozen=True):
    status: Status


class SendToPeer(Event, tag="send", frozen=True):
    peer: str
    # The client's `data` object as JSON, without any `sender_id` key; the relay appends
    # the real one, so that the frame is finished without decoding it again.
    data: bytes


AnyEvent = Join | Leave | UpdateStatus | SendToPeer

event_encoder = msgspec.msgpack.Encoder()
event_decoder = msgspec.msgpack.Decoder(AnyEvent)


class Member(msgspec.Struct, frozen=True, omit_defaults=True):
    """A room member as stored in Redis."""

    status: Status
    gateway: str
    # Stream id of the join: orders members by arrival (the host is the oldest).
    joined: str
    # The room's topology, kept with each member so that a room read back from Redis
    # knows it without a key of its own (and leaves none behind). Omitted for mesh: a
    # mesh member's record is the same bytes as before star rooms existed.
    topology: Topology = Topology.MESH


member_decoder = msgspec.msgpack.Decoder(Member)


class Control(msgspec.Struct, frozen=True, tag_field="t"):
    """A message for the gateway itself, published on a socket's channel.

    Frames for the client are JSON objects and start with ``{``; a control message is a
    msgpack map and never does, so the gateway tells them apart by the first byte.
    """


class JoinRefused(Control, tag="join_refused", frozen=True):
    seq: int


AnyControl = JoinRefused

control_decoder = msgspec.msgpack.Decoder(AnyControl)
