"""How long to wait before trying again after a failure: one policy for every retry loop
(Redis reconnects, pub/sub links, leaves Redis did not take, discovery at start,
webhooks the app did not answer)."""

from __future__ import annotations


class Backoff:
    """Delays that double from `first` up to `most`, and start over after a success."""

    __slots__ = ("first", "most", "_next")

    def __init__(self, first: float = 0.1, most: float = 1.0) -> None:
        self.first = first
        self.most = most
        self._next = first

    def next(self) -> float:
        """The delay before the next attempt (each call doubles the one after)."""
        delay = self._next
        self._next = min(delay * 2, self.most)
        return delay

    def reset(self) -> None:
        """It worked: the next failure waits `first` again."""
        self._next = self.first
