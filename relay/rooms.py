"""The room state machine: pure, no Redis, no await.

It takes one decoded event (and the stream id it came with) and returns what must
happen: frames to publish to sockets and member records to write. The Redis layer
(`relay.store`) commits those effects atomically with the batch's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from shared.events import (
    AnyEvent,
    Join,
    JoinRefused,
    Leave,
    Member,
    SendToPeer,
    Topology,
    UpdateStatus,
    event_encoder,
)
from shared.frames import (
    ErrorText,
    HostChanged,
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


class Room:
    """One room: its members in join order and its topology.

    The host is the member present longest, the first in `members` (protocol.md, "Host").
    Because a relay applies a room's events one at a time (rule 1), the host is a fact of
    the room's state, never a race between two joins.
    """

    __slots__ = ("members", "topology")

    def __init__(self, topology: Topology, members: Members | None = None) -> None:
        self.members: Members = {} if members is None else members
        self.topology = topology

    @property
    def host(self) -> str:
        return next(iter(self.members))

    def sees_only_host(self, conn: str) -> bool:
        """In a star room, every member but the host sees the host alone."""
        return self.topology is Topology.STAR and conn != self.host

    def view(self, viewer: str) -> list[PeerEntry]:
        """The other members `viewer` is shown: what a fresh join would list."""
        if self.sees_only_host(viewer):
            host = self.host
            return [PeerEntry(peer_id=host, status=self.members[host].status)]
        return [PeerEntry(peer_id=conn, status=m.status)
                for conn, m in self.members.items() if conn != viewer]

    def watchers(self, conn: str) -> list[str]:
        """The members shown `conn` (itself excluded): who hears of its joins and leaves."""
        if self.sees_only_host(conn):
            return [self.host]
        return [other for other in self.members if other != conn]

    def may_address(self, sender: str, target: str) -> bool:
        """send_to_peer: a star room's non-host may address only the host (or itself)."""
        return target in self.members and (
            target == sender or not self.sees_only_host(sender) or target == self.host)


class RoomBook:
    """The rooms of one shard, in memory, and the rules that change them."""

    def __init__(self, capacity: int, star_capacity: int) -> None:
        self.capacity = capacity
        self.star_capacity = star_capacity
        self.rooms: dict[str, Room] = {}

    def load(self, room: str, members: Members) -> None:
        """Install a room read back from Redis, ordering members by join."""
        ordered = dict(sorted(members.items(), key=lambda item: stream_order(item[1].joined)))
        self.rooms[room] = Room(next(iter(ordered.values())).topology, ordered)

    def gateways(self) -> set[str]:
        """The gateways that hold this shard's members' sockets."""
        return {m.gateway for room in self.rooms.values() for m in room.members.values()}

    def members_on(self, gateways: set[str]) -> list[Leave]:
        """Leave events for every member whose socket was on one of `gateways`."""
        return [Leave(conn=conn, room=digest) for digest, room in self.rooms.items()
                for conn, member in room.members.items() if member.gateway in gateways]

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
        room = self.rooms.get(event.room)
        refusal = None if room is None else self._refusal(room, event)
        if refusal is not None:
            out.append(Publish(event.conn, error_frame(refusal, "join_room")))
            if refusal is not ErrorText.ALREADY_JOINED:  # then the socket stays where it is
                out.append(Publish(event.conn, event_encoder.encode(JoinRefused(seq=event.seq))))
            return
        if room is None:
            room = self.rooms[event.room] = Room(event.topology or Topology.MESH)
            out.append(OpenRoom(event.room))
            joined = JoinedRoom(own_id=event.conn, peers=[], host_id=event.conn,
                                topology=room.topology)
            out.append(Publish(event.conn, encode_frame(joined)))
        else:
            joined = JoinedRoom(own_id=event.conn, peers=room.view(event.conn),
                                host_id=room.host, topology=room.topology)
            out.append(Publish(event.conn, encode_frame(joined)))
            new_peer = encode_frame(NewPeer(peer_id=event.conn, status=event.status))
            self._to(room.watchers(event.conn), new_peer, out)
        member = Member(status=event.status, gateway=event.gateway, joined=entry_id,
                        topology=room.topology)
        room.members[event.conn] = member
        out.append(PutMember(event.room, event.conn, member))

    def _refusal(self, room: Room, event: Join) -> ErrorText | None:
        if event.conn in room.members:
            # A gateway never sends this; answer as palava would and keep the membership.
            return ErrorText.ALREADY_JOINED
        if event.topology is not None and event.topology != room.topology:
            return ErrorText.WRONG_TOPOLOGY
        capacity = self.star_capacity if room.topology is Topology.STAR else self.capacity
        if len(room.members) >= capacity:
            return ErrorText.ROOM_FULL
        return None

    def _leave(self, digest: str, conn: str, out: list[Effect]) -> None:
        room = self.rooms.get(digest)
        if room is None or conn not in room.members:
            return  # leaving a room one is not in is no error (protocol.md)
        was_host = conn == room.host
        watchers = room.watchers(conn)
        del room.members[conn]
        out.append(DropMember(digest, conn))
        if not room.members:
            del self.rooms[digest]
            out.append(CloseRoom(digest))
            return
        self._to(watchers, encode_frame(PeerLeft(sender_id=conn)), out)
        if was_host:
            self._host_changed(room, out)

    def _host_changed(self, room: Room, out: list[Effect]) -> None:
        """After the host left: every member learns the new host and its own new view."""
        host = room.host
        shared_view: bytes | None = None  # in a star room, every non-host's is the same
        for conn in room.members:
            if room.sees_only_host(conn):
                if shared_view is None:
                    shared_view = encode_frame(HostChanged(host_id=host, peers=room.view(conn)))
                out.append(Publish(conn, shared_view))
            else:
                frame = HostChanged(host_id=host, peers=room.view(conn))
                out.append(Publish(conn, encode_frame(frame)))

    def _update_status(self, event: UpdateStatus, out: list[Effect]) -> None:
        room = self.rooms.get(event.room)
        member = None if room is None else room.members.get(event.conn)
        if room is None or member is None:
            out.append(Publish(event.conn, error_frame(ErrorText.NOT_IN_ROOM, "update_status")))
            return
        status = member.status.merged(event.status)
        member = Member(status=status, gateway=member.gateway, joined=member.joined,
                        topology=member.topology)
        room.members[event.conn] = member
        out.append(PutMember(event.room, event.conn, member))
        frame = encode_frame(PeerUpdatedStatus(status=status, sender_id=event.conn))
        # The sender hears its own update too, in join order among those who see it.
        if room.sees_only_host(event.conn):
            self._to([room.host, event.conn], frame, out)
        else:
            self._to(room.members, frame, out)

    def _send_to_peer(self, event: SendToPeer, out: list[Effect]) -> None:
        room = self.rooms.get(event.room)
        if room is None or event.conn not in room.members:
            out.append(Publish(event.conn, error_frame(ErrorText.NOT_IN_ROOM, "send_to_peer")))
        elif not room.may_address(event.conn, event.peer):
            out.append(Publish(event.conn, error_frame(ErrorText.UNKNOWN_PEER, "send_to_peer")))
        else:
            out.append(Publish(event.peer, peer_message_frame(event.data, event.conn)))

    @staticmethod
    def _to(conns: Iterable[str], frame: bytes, out: list[Effect]) -> None:
        out.extend(Publish(conn, frame) for conn in conns)
