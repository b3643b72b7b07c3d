"""Server frames decoded into typed events. Pure: bytes or text in, a struct out."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.frames import (
    Error,
    HostChanged,
    Info,
    JoinedRoom,
    NewPeer,
    PeerLeft,
    PeerUpdatedStatus,
    Pong,
    Shutdown,
)

PEER_EVENTS = frozenset({"offer", "answer", "ice_candidate", "message"})


class PeerMessage(msgspec.Struct, frozen=True):
    """What another peer sent with `send_to_peer`: `data` as it was sent, its sender."""

    event: str
    sender_id: str
    data: dict[str, Any]


ServerEvent = (JoinedRoom | NewPeer | PeerLeft | PeerUpdatedStatus | HostChanged | Error
               | Shutdown | Pong | Info | PeerMessage)

_room_frames = msgspec.json.Decoder(
    JoinedRoom | NewPeer | PeerLeft | PeerUpdatedStatus | HostChanged | Error | Shutdown | Pong
    | Info)


class _Head(msgspec.Struct):
    event: str = ""
    sender_id: str = ""


_head = msgspec.json.Decoder(_Head)


def decode_event(frame: str | bytes) -> ServerEvent:
    """Decode one server frame; raises msgspec.ValidationError for a frame of no known kind."""
    head = _head.decode(frame)
    if head.event in PEER_EVENTS:
        data = msgspec.json.decode(frame, type=dict[str, Any])
        return PeerMessage(event=head.event, sender_id=head.sender_id, data=data)
    event: ServerEvent = _room_frames.decode(frame)
    return event
