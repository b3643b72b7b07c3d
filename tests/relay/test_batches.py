"""Applying a batch read from a shard stream (relay/batches.py, `Batches._apply`): which
entries are applied, which only acknowledged, and the checkpoint the commit moves to.
No Redis: the commit is only packed."""

from __future__ import annotations

import pytest

from redis_io.resp import Reply
from relay.batches import Batches
from relay.rooms import RoomBook
from relay.store import Committer, Shard
from shared.events import Join, Status, event_encoder

SHARD = 3


def _join(conn: str) -> list[Reply]:
    event = Join(conn=conn, room="d1", gateway="gw", seq=1, status=Status(name=conn))
    return [b"e", event_encoder.encode(event)]


def _batches() -> Batches:
    return Batches("relay-me", 100, None, {}, Committer("relay-me", 10, 60_000),  # type: ignore[arg-type]
                   None, None, None, shards=8)  # type: ignore[arg-type]


@pytest.mark.parametrize(("checkpoint", "entries", "members", "new_checkpoint"), [
    # A fresh shard: everything is applied.
    ("", [(b"1-0", _join("a")), (b"2-0", _join("b"))], ["a", "b"], "2-0"),
    # After a takeover: what the checkpoint covers was applied before the crash.
    ("1-0", [(b"1-0", _join("a")), (b"2-0", _join("b"))], ["b"], "2-0"),
    ("2-0", [(b"1-0", _join("a")), (b"2-0", _join("b"))], [], "2-0"),
    # An entry trimmed away (nil fields) is acknowledged only.
    ("", [(b"1-0", None), (b"2-0", _join("b"))], ["b"], "2-0"),
    # An entry without an event is skipped (logged), and still moves the checkpoint.
    ("", [(b"1-0", _join("a")), (b"2-0", [b"x", b"y"])], ["a"], "2-0"),
    # Ids order as numbers.
    ("9-0", [(b"9-0", _join("a")), (b"10-0", _join("b"))], ["b"], "10-0"),
])
def test_apply(checkpoint: str, entries: list[tuple[bytes, list[Reply] | None]],
               members: list[str], new_checkpoint: str) -> None:
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint)
    command, moved_to, applied = _batches()._apply(shard, [list(e) for e in entries])
    room = shard.book.rooms.get("d1")
    assert (list(room.members) if room else []) == members
    assert moved_to == new_checkpoint
    assert applied == ({Join: len(members)} if members else {})
    for entry_id, _ in entries:  # every entry read is acknowledged
        assert entry_id in command
