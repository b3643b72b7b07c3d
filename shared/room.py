"""One room: its members in join order, its topology, and who is shown whom.

Pure: the relay's state machine (relay/rooms.py) keeps rooms in it, and the admin API
(gateway/admin_rooms.py) reads rooms back from Redis through it, so that both tell the
same host."""

from __future__ import annotations

import msgspec

from shared.events import Member, Topology
from shared.frames import NO_INFO, PeerEntry

# Room members in join order (dicts keep insertion order): the first is the oldest.
Members = dict[str, Member]


def peer_entry(conn: str, member: Member) -> PeerEntry:
    """How `member` is shown to others: `user` and `info` only when its token had them."""
    return PeerEntry(peer_id=conn, status=member.status, user=member.user or None,
                     info=msgspec.Raw(member.info) if member.info else NO_INFO)


class Room:
    """One room: its members in join order and its topology.

    The host is the longest-present member holding the host grant, or, when none holds it,
    the longest-present member (docs/protocol.md, "Host"). Because a relay applies a room's
    events one at a time (rule 1), the host is a fact of the room's state, never a race
    between two joins. Members enter with `admit` and go with `remove`, which keep the
    host up to date; a member's record may be replaced in place, its grant never changes.
    """

    __slots__ = ("members", "topology", "opened_ms", "peak", "ends_at", "name", "_host")

    def __init__(self, topology: Topology, members: Members | None = None,
                 opened_ms: int = 0, ends_at: int = 0, name: str = "") -> None:
        self.members: Members = {} if members is None else members
        self.topology = topology
        # The deadline (ms, 0: none) and the name in clear ("" unless the admin API is on).
        self.ends_at = ends_at
        self.name = name
        # Usage statistics: when it opened (ms, Redis time) and the most members it had.
        # A room read back after a takeover counts from its oldest member's join.
        self.opened_ms = opened_ms
        self.peak = len(self.members)
        self._host = self._choose_host()

    def _choose_host(self) -> str:
        first = ""
        for conn, member in self.members.items():
            if member.host:
                return conn
            first = first or conn
        return first

    @property
    def host(self) -> str:
        return self._host

    def admit(self, conn: str, member: Member) -> None:
        """`conn` joins last; a granted member takes over from a host without the grant."""
        self.members[conn] = member
        self.peak = max(self.peak, len(self.members))
        if not self._host or (member.host and not self.members[self._host].host):
            self._host = conn

    def remove(self, conn: str) -> None:
        del self.members[conn]
        if conn == self._host:
            self._host = self._choose_host()

    def sees_only_host(self, conn: str) -> bool:
        """In a star room, every member but the host sees the host alone."""
        return self.topology is Topology.STAR and conn != self._host

    def view(self, viewer: str) -> list[PeerEntry]:
        """The other members `viewer` is shown: what a fresh join would list."""
        if self.sees_only_host(viewer):
            return [peer_entry(self._host, self.members[self._host])]
        return [peer_entry(conn, m) for conn, m in self.members.items() if conn != viewer]

    def watchers(self, conn: str) -> list[str]:
        """The members shown `conn` (itself excluded): who hears of its joins and leaves."""
        if self.sees_only_host(conn):
            return [self._host]
        return [other for other in self.members if other != conn]

    def may_address(self, sender: str, target: str) -> bool:
        """send_to_peer: a star room's non-host may address only the host (or itself)."""
        return target in self.members and (
            target == sender or not self.sees_only_host(sender) or target == self._host)
