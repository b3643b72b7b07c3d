"""What the room state machine's tests share: a book, events, and decoded effects."""

from __future__ import annotations

import json
from typing import Any

from relay.effects import Effect, Publish
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    AnyEvent,
    Join,
    Member,
    Status,
    Topology,
    control_decoder,
)

ROOM = "d" * 128  # rooms are keyed by digest; the relay never sees a name
OTHER_ROOM = "e" * 128
GW = "gw-1"
ANN = Status(name="Ann", user_agent="chrome")


def error(text: str, received: str) -> dict[str, Any]:
    return {"event": "error", "message": text, "description": text, "received_msg": received}


def run(book: RoomBook, event: AnyEvent, entry_id: str = "99-0") -> list[Any]:
    """Apply one event; Publish payloads come back decoded (JSON frame or control)."""
    out: list[Effect] = []
    book.apply(event, entry_id, out)
    return [("publish", e.channel, decode(e.payload)) if isinstance(e, Publish) else e for e in out]


def decode(payload: bytes) -> Any:
    if payload.startswith(b"{"):
        return json.loads(payload)
    return control_decoder.decode(payload)


def join(conn: str, status: Status = EMPTY_STATUS, seq: int = 1, room: str = ROOM,
         topology: Topology | None = None, user: str = "", info: bytes = b"",
         host: bool = False) -> Join:
    return Join(conn=conn, room=room, gateway=GW, seq=seq, status=status, topology=topology,
                user=user, info=info, host=host)


def book_with(*members: tuple[str, Status], capacity: int = 100, star_capacity: int = 1000,
              topology: Topology | None = None) -> RoomBook:
    """A book whose room ROOM holds `members`, joined in that order at "1-0", "2-0", ...
    (the first names `topology`, the others name none)."""
    book = RoomBook(capacity, star_capacity)
    for i, (conn, status) in enumerate(members, 1):
        run(book, join(conn, status, topology=topology if i == 1 else None), f"{i}-0")
    return book


def snapshot(book: RoomBook) -> dict[str, dict[str, Member]]:
    return {digest: dict(room.members) for digest, room in book.rooms.items()}


def joined(own: str, peers: list[dict[str, Any]], host: str, topology: str = "mesh"
           ) -> dict[str, Any]:
    """A `joined_room` frame as the relay sends it."""
    return {"event": "joined_room", "own_id": own, "peers": peers, "host_id": host,
            "topology": topology}
