"""Frames the server sends to clients (docs/protocol.md), encoded to JSON once.

The relay builds the room frames, the gateway the replies that need no room state; both
use these encoders so that a frame has one shape wherever it is made.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import msgspec

from shared import SERVER_NAME, __version__
from shared.events import Status, Topology

PROTOCOL_VERSION = "1.0.0"


# The events one peer sends another through `send_to_peer` (docs/protocol.md,
# "Client → server"): what a gateway lets through, and what a client library delivers.
PEER_EVENTS = frozenset({"offer", "answer", "ice_candidate", "message"})

class ErrorText(StrEnum):
    """Every error text of docs/protocol.md, verbatim."""

    INVALID_MESSAGE = "invalid message"
    NO_EVENT = "no event given"
    UNKNOWN_EVENT = "unknown event"
    NO_ROOM_ID = "no room id given"
    ROOM_ID_TOO_LONG = "room id too long"
    ALREADY_JOINED = "already joined another room"
    ROOM_FULL = "room is full"
    BLANK_NAME = "blank name not allowed"
    NAME_TOO_LONG = "name too long"
    UNKNOWN_USER_AGENT = "unknown user agent"
    INVALID_STATUS = "invalid status"
    NOT_IN_ROOM = "currently not in any room"
    RAW_DATA = "cannot send raw data"
    UNKNOWN_PEER = "unknown peer"
    EVENT_NOT_ALLOWED = "event not allowed"
    SERVICE_UNAVAILABLE = "service unavailable"
    RATE_LIMITED = "rate limit exceeded"
    WRONG_TOPOLOGY = "wrong topology"
    CANNOT_RESUME = "cannot resume"
    NOT_ALLOWED = "not allowed"


class Frame(msgspec.Struct, tag_field="event", omit_defaults=True):
    pass


class Error(Frame, tag="error"):
    message: str
    description: str
    received_msg: str | None = None


class Pong(Frame, tag="pong"):
    pass


class Info(Frame, tag="info"):
    protocol_version: str
    server: str


class Shutdown(Frame, tag="shutdown"):
    seconds: int


# No `info`: this very object, as msgspec leaves a default out by identity (an empty Raw
# made elsewhere would be encoded, as nothing).
NO_INFO = msgspec.Raw()


class PeerEntry(msgspec.Struct, omit_defaults=True):
    peer_id: str
    status: Status
    # ext (docs/protocol.md, "Identities and roles"): only for peers whose token had them.
    user: str | None = None
    # The app's JSON object, as its token carried it; empty (left out) for none. (Not
    # `Raw | None`: msgspec cannot decode a Raw inside a union, and clients decode these.)
    info: msgspec.Raw = NO_INFO


class JoinedRoom(Frame, tag="joined_room"):
    own_id: str
    peers: list[PeerEntry]
    # ext; Switchboard always sends both. None only when decoding another palava server.
    host_id: str | None = None
    topology: Topology | None = None
    resumed: bool | None = None  # ext: true when a resume took the peer over
    user: str | None = None  # ext: the joiner's own identity, when its token had one
    info: msgspec.Raw = NO_INFO
    # ext, added by the gateway (the relay never has them): the resume token, and TURN
    # credentials and ICE servers when configured.
    resume_token: str | None = None
    turn_user: str | None = None
    turn_password: str | None = None
    ice_servers: list[dict[str, Any]] | None = None


class HostChanged(Frame, tag="host_changed"):
    """ext: the host left, or a member with the host grant took over; `peers` is the
    receiver's view of the room from now on."""

    host_id: str
    peers: list[PeerEntry]


class NewPeer(Frame, tag="new_peer"):
    peer_id: str
    status: Status
    user: str | None = None  # ext, as in PeerEntry
    info: msgspec.Raw = NO_INFO


class PeerLeft(Frame, tag="peer_left"):
    sender_id: str


class PeerUpdatedStatus(Frame, tag="peer_updated_status"):
    status: Status
    sender_id: str


class RemovalReason(StrEnum):
    """Why the app ended a peer's membership (docs/protocol.md, "Removal")."""

    REMOVED = "removed"  # that peer, by the admin API
    CLOSED = "closed"  # its whole room, by the admin API
    EXPIRED = "expired"  # its room's deadline passed


class Removed(Frame, tag="removed"):
    """ext: the app removed the peer; its socket is closed (4003) right after."""

    reason: RemovalReason


class ServerMessage(Frame, tag="server_message"):
    """ext: a message from the app, through the admin API."""

    data: msgspec.Raw  # the app's JSON object, as it sent it


_encoder = msgspec.json.Encoder()


def encode_frame(frame: Frame) -> bytes:
    """The frame's JSON text, as sent on the socket."""
    return _encoder.encode(frame)


def error_frame(text: ErrorText, received: str | None = None) -> bytes:
    """An `error` frame; `message` and `description` both carry the text, as palava
    clients read one or the other."""
    return _encoder.encode(Error(message=text, description=text, received_msg=received))


def peer_message_frame(data: bytes, sender_id: str) -> bytes:
    """`data` (a JSON object with no `sender_id`) with `"sender_id"` appended.

    Splicing keeps the sender's SDP and candidates byte for byte and costs no decode.
    The gateway guarantees `data` holds at least the `event` key, so it is never `{}`.
    """
    return b"".join((data[: data.rindex(b"}")], b',"sender_id":"', sender_id.encode(), b'"}'))


PONG = encode_frame(Pong())
INFO = encode_frame(Info(protocol_version=PROTOCOL_VERSION, server=f"{SERVER_NAME}/{__version__}"))
