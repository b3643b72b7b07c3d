"""What applying an event makes happen: the room state machine's output, committed by
`relay.store` atomically with the batch's checkpoint (docs/architecture.md, rule 2)."""

from __future__ import annotations

from typing import NamedTuple

from shared.events import Member
from shared.webhook_events import RoomLife


class Publish(NamedTuple):
    """A frame (or a control message) for one socket's channel."""

    channel: str
    payload: bytes


class Keep(NamedTuple):
    """A numbered frame for a resumable peer: published to its socket (none while it is
    detached: `channel` "") and kept for a resume (docs/protocol.md, "Resume")."""

    conn: str
    channel: str
    seq: int
    payload: bytes


class Replay(NamedTuple):
    """The last `frames` frames kept for `conn`, to `channel`, in order (a resume)."""

    conn: str
    channel: str
    frames: int


class DropKept(NamedTuple):
    """A resumable peer left: its kept frames and its frame counter go."""

    conn: str


class PutMember(NamedTuple):
    room: str
    conn: str
    member: Member


class DropMember(NamedTuple):
    room: str
    conn: str


class OpenRoom(NamedTuple):
    room: str


class CloseRoom(NamedTuple):
    room: str


class Hook(NamedTuple):
    """A lifecycle event for the app (docs/protocol.md, "Webhooks"), into the shard's
    outbox: `body` is its JSON, as it is sent."""

    room: str
    body: bytes


class PutLife(NamedTuple):
    """The room's life as numbered so far (keys.room_lives)."""

    room: str
    life: RoomLife


class DropLife(NamedTuple):
    room: str


Effect = (Publish | Keep | Replay | DropKept | PutMember | DropMember | OpenRoom | CloseRoom
          | Hook | PutLife | DropLife)

