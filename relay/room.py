"""One room: its members in join order, its topology, and who is shown whom."""

from __future__ import annotations

from shared.events import Member, Topology
from shared.frames import PeerEntry

# Room members in join order (dicts keep insertion order): the first is the oldest.
Members = dict[str, Member]


class Room:
    """One room: its members in join order and its topology.

    The host is the member present longest, the first in `members` (docs/protocol.md, "Host").
    Because a relay applies a room's events one at a time (rule 1), the host is a fact of
    the room's state, never a race between two joins.
    """

    __slots__ = ("members", "topology", "opened_ms", "peak")

    def __init__(self, topology: Topology, members: Members | None = None,
                 opened_ms: int = 0) -> None:
        self.members: Members = {} if members is None else members
        self.topology = topology
        # Usage statistics: when it opened (ms, Redis time) and the most members it had.
        # A room read back after a takeover counts from its oldest member's join.
        self.opened_ms = opened_ms
        self.peak = len(self.members)

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
