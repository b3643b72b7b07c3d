"""The room state machine: pure, no Redis, no await.

It takes one decoded event (and the stream id it came with) and returns what must
happen: frames to publish to sockets and member records to write. The Redis layer
(`relay.store`) commits those effects atomically with the batch's checkpoint.
"""

from __future__ import annotations

from typing import NamedTuple

from shared.events import (
    AnyEvent,
    Join,
    JoinRefused,
    Leave,
    Member,
    SendToPeer,
    UpdateStatus,
    event_encoder,
)
from shared.frames import (
    ErrorText,
    JoinedRoom,
    NewPeer,
    PeerEntry,
    PeerLeft,
    PeerUpdatedStatus,
    encode_frame,
    error_frame,
    peer_message_frame,
)


class Publish(NamedTuple):
    conn: str
    payload: bytes


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


Effect = Publish | PutMember | DropMember | OpenRoom | CloseRoom

# Room members in join order (dicts keep insertion order): the first is the oldest.
Members = dict[str, Member]


def stream_order(entry_id: str) -> tuple[int, int]:
    """Sort key of a Redis stream id ``"<ms>-<seq>"``."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class RoomBook:
    """The rooms of one shard, in memory, and the rules that change them."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.rooms: dict[str, Members] = {}

    def load(self, room: str, members: Members) -> None:
        """Install a room read back from Redis, ordering members by join."""
        ordered = sorted(members.items(), key=lambda item: stream_order(item[1].joined))
        self.rooms[room] = dict(ordered)

    def gateways(self) -> set[str]:
        """The gateways that hold this shard's members' sockets."""
        return {m.gateway for members in self.rooms.values() for m in members.values()}

    def members_on(self, gateways: set[str]) -> list[Leave]:
        """Leave events for every member whose socket was on one of `gateways`."""
        return [Leave(conn=conn, room=room) for room, members in self.rooms.items()
                for conn, member in members.items() if member.gateway in gateways]

    def apply(self, event: AnyEvent, entry_id: str, out: list[Effect]) -> None:
        """Apply one event; append its effects to `out` in the order they must happen."""
        if isinstance(event, SendToPeer):
            self._send_to_peer(event, out)
        elif isinstance(event, Join):
            self._join(event, entry_id, out)
        elif isinstance(event, Leave):
            self._leave(event.room, event.conn, out)
        elif isinstance(event, UpdateStatus):
            self._update_status(event, out)

    def _join(self, event: Join, entry_id: str, out: list[Effect]) -> None:
        members = self.rooms.get(event.room)
        if members is not None and event.conn in members:
            # A gateway never sends this; answer as palava would and keep the membership.
            out.append(Publish(event.conn, error_frame(ErrorText.ALREADY_JOINED, "join_room")))
            return
        if members is not None and len(members) >= self.capacity:
            out.append(Publish(event.conn, error_frame(ErrorText.ROOM_FULL, "join_room")))
            out.append(Publish(event.conn, event_encoder.encode(JoinRefused(seq=event.seq))))
            return
        if members is None:
            members = self.rooms[event.room] = {}
            out.append(OpenRoom(event.room))
        peers = [PeerEntry(peer_id=conn, status=m.status) for conn, m in members.items()]
        out.append(Publish(event.conn, encode_frame(JoinedRoom(own_id=event.conn, peers=peers))))
        self._to_all(members, encode_frame(NewPeer(peer_id=event.conn, status=event.status)), out)
        member = Member(status=event.status, gateway=event.gateway, joined=entry_id)
        members[event.conn] = member
        out.append(PutMember(event.room, event.conn, member))

    def _leave(self, room: str, conn: str, out: list[Effect]) -> None:
        members = self.rooms.get(room)
        if members is None or members.pop(conn, None) is None:
            return  # leaving a room one is not in is no error (protocol.md)
        out.append(DropMember(room, conn))
        if not members:
            del self.rooms[room]
            out.append(CloseRoom(room))
            return
        self._to_all(members, encode_frame(PeerLeft(sender_id=conn)), out)

    def _update_status(self, event: UpdateStatus, out: list[Effect]) -> None:
        members = self.rooms.get(event.room)
        member = None if members is None else members.get(event.conn)
        if members is None or member is None:
            out.append(Publish(event.conn, error_frame(ErrorText.NOT_IN_ROOM, "update_status")))
            return
        status = member.status.merged(event.status)
        member = Member(status=status, gateway=member.gateway, joined=member.joined)
        members[event.conn] = member
        out.append(PutMember(event.room, event.conn, member))
        frame = PeerUpdatedStatus(status=status, sender_id=event.conn)
        self._to_all(members, encode_frame(frame), out)

    def _send_to_peer(self, event: SendToPeer, out: list[Effect]) -> None:
        members = self.rooms.get(event.room)
        if members is None or event.conn not in members:
            out.append(Publish(event.conn, error_frame(ErrorText.NOT_IN_ROOM, "send_to_peer")))
        elif event.peer not in members:
            out.append(Publish(event.conn, error_frame(ErrorText.UNKNOWN_PEER, "send_to_peer")))
        else:
            out.append(Publish(event.peer, peer_message_frame(event.data, event.conn)))

    @staticmethod
    def _to_all(members: Members, frame: bytes, out: list[Effect]) -> None:
        out.extend(Publish(conn, frame) for conn in members)
