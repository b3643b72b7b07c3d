"""Back-pressure toward clients: while Redis is behind with a client's events, that
client is not read (TCP slows it down) until the gateway's sink has caught up."""

from __future__ import annotations

from typing import Protocol


class Holdable(Protocol):
    def hold(self) -> None: ...

    def release(self) -> None: ...


class Holds:
    """The connections held until the sink drains; each is held once however many of
    its events found the sink busy meanwhile."""

    __slots__ = ("_held",)

    def __init__(self) -> None:
        self._held: set[Holdable] = set()

    def hold(self, connection: Holdable) -> None:
        if connection not in self._held:
            self._held.add(connection)
            connection.hold()

    def release_all(self) -> None:
        """The sink drained: every held connection is read again."""
        held, self._held = self._held, set()
        for connection in held:
            connection.release()

    def __len__(self) -> int:
        return len(self._held)
