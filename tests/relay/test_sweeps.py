"""The sweeps' own decision (relay/sweeps.py): which shards hold entries stranded under
another relay. (The rooms' decisions, departures, expiries and deadlines, are RoomBook's:
tests/relay/test_rooms_*.py; the dead-gateway verdict is tests/relay/test_gateway_watch.py.)"""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from relay.sweeps import pending_elsewhere


def summary(*consumers: tuple[bytes, int]) -> dict[str, object]:
    """An XPENDING summary as redis-py gives it."""
    return {"pending": sum(n for _, n in consumers), "min": None, "max": None,
            "consumers": [{"name": name, "pending": n} for name, n in consumers]}


TABLE = [
    (summary(), False),  # nothing pending
    (summary((b"relay-a", 3)), False),  # pending under this relay: its own to commit
    (summary((b"relay-b", 2)), True),  # under another: stranded
    (summary((b"relay-a", 1), (b"relay-b", 1)), True),
    (summary((b"relay-b", 0)), False),  # a consumer with nothing pending
    ({"pending": 0, "consumers": None}, False),
    (ResponseError("NOGROUP"), False),  # the shard's stream or group is gone: not known
    (None, False),
]


@pytest.mark.parametrize(("pending", "stranded"), TABLE)
def test_pending_elsewhere(pending: object, stranded: bool) -> None:
    assert pending_elsewhere(pending, "relay-a") is stranded


def test_a_consumer_named_as_text_is_this_relay_too() -> None:
    assert not pending_elsewhere({"consumers": [{"name": "relay-a", "pending": 4}]}, "relay-a")
