"""The admin API's reply bodies (docs/protocol.md, "Admin API"), in one place: the relay
answers actions with them, the gateway answers reads and errors with them.

Pure: rooms are rendered from their member records, through `Room` so that the host
shown is the one the relay's state machine has.
"""

from __future__ import annotations

from typing import Any

import msgspec

from shared.events import Member
from shared.room import Members, Room
from shared.stream_ids import stream_order

_encoder = msgspec.json.Encoder()

NO_MEMBERS = "room has no members"


def unix_seconds(ms: int) -> int | float:
    """Milliseconds as unix seconds: whole when they are."""
    return ms // 1000 if ms % 1000 == 0 else ms / 1000


def deadline(ends_at_ms: int) -> int | float | None:
    """A room's deadline as shown: unix seconds, or null for none."""
    return unix_seconds(ends_at_ms) if ends_at_ms else None


def error_body(text: str, **more: Any) -> bytes:
    return _encoder.encode({"error": text, **more})


def removed_body(peers: list[str]) -> bytes:
    return _encoder.encode({"removed": peers})


def delivered_body(peers: list[str]) -> bytes:
    return _encoder.encode({"delivered": peers})


def deadline_body(ends_at_ms: int) -> bytes:
    return _encoder.encode({"ends_at": deadline(ends_at_ms)})


def room_of(members: Members) -> Room:
    """A room read back from its member records (in any order), as a relay would load it."""
    ordered = dict(sorted(members.items(), key=lambda item: stream_order(item[1].joined)))
    first = next(iter(ordered.values()))
    return Room(first.topology, ordered, stream_order(first.joined)[0],
                ends_at=first.ends_at, name=first.room_name)


def _summary(room: Room) -> dict[str, Any]:
    return {"room": room.name or None, "topology": room.topology.value,
            "members": len(room.members), "host_id": room.host,
            "started_at": unix_seconds(room.opened_ms), "ends_at": deadline(room.ends_at)}


def _member(conn: str, member: Member) -> dict[str, Any]:
    return {"peer_id": conn, "user": member.user or None,
            "info": msgspec.Raw(member.info) if member.info else None,
            "status": member.status, "joined_at": unix_seconds(stream_order(member.joined)[0]),
            "away": member.detached_until > 0}


def rooms_body(rooms: list[Room]) -> bytes:
    """GET /admin/rooms: every room with members, oldest first."""
    ordered = sorted(rooms, key=lambda room: (room.opened_ms, room.name))
    return _encoder.encode({"rooms": [_summary(room) for room in ordered]})


def room_body(room: Room, name: str) -> bytes:
    """GET /admin/rooms/{room}: the room and its members in join order."""
    summary = _summary(room)
    summary["room"] = name
    del summary["members"]
    summary["members"] = [_member(conn, member) for conn, member in room.members.items()]
    return _encoder.encode(summary)
