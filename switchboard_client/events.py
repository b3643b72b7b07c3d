"""Server frames decoded into typed events. Pure: bytes or text in, a struct out."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.frames import (
    PEER_EVENTS,
    Error,
    HostChanged,
    Info,
    JoinedRoom,
    NewPeer,
    PeerLeft,
    PeerUpdatedStatus,
    Pong,
    Removed,
    ServerMessage,
    Shutdown,
)


class PeerMessage(msgspec.Struct, frozen=True):
    """What another peer sent with `send_to_peer`: `data` as it was sent, its sender."""

    event: str
    sender_id: str
    data: dict[str, Any]


ServerEvent = (JoinedRoom | NewPeer | PeerLeft | PeerUpdatedStatus | HostChanged | Error
               | Shutdown | Pong | Info | Removed | ServerMessage | PeerMessage)

_room_frames = msgspec.json.Decoder(
    JoinedRoom | NewPeer | PeerLeft | PeerUpdatedStatus | HostChanged | Error | Shutdown | Pong
    | Info | Removed | ServerMessage)


def json_of(raw: msgspec.Raw) -> Any:
    """The app's JSON in a frame (`info`, a server message's `data`) as Python values;
    None when the frame has none."""
    return msgspec.json.decode(raw) if raw else None


class _Head(msgspec.Struct):
    event: str = ""
    sender_id: str = ""
    frame_seq: int = 0


_head = msgspec.json.Decoder(_Head)


def decode_event(frame: str | bytes) -> ServerEvent:
    """Decode one server frame; raises msgspec.ValidationError for a frame of no known kind."""
    return decode_numbered(frame)[0]


def decode_numbered(frame: str | bytes) -> tuple[ServerEvent, int]:
    """A server frame and its `frame_seq` (0 for a frame that is not numbered: any frame
    to a peer that did not join resumable, and direct replies)."""
    head = _head.decode(frame)
    if head.event in PEER_EVENTS:
        data = msgspec.json.decode(frame, type=dict[str, Any])
        data.pop("frame_seq", None)  # the service's numbering, not what the peer sent
        return PeerMessage(event=head.event, sender_id=head.sender_id, data=data), head.frame_seq
    event: ServerEvent = _room_frames.decode(frame)
    return event, head.frame_seq
