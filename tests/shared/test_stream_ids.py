"""Stream ids order as Redis orders them (shared/stream_ids.py)."""

from __future__ import annotations

import pytest

from shared.stream_ids import stream_order


@pytest.mark.parametrize(("earlier", "later"), [
    ("1-0", "1-1"),
    ("1-9", "1-10"),        # numbers, not strings
    ("9-0", "10-0"),
    ("1700000000000-5", "1700000000001-0"),
    ("5", "5-1"),           # a bare time is its first id
    (b"9-0", "10-0"),       # bytes as Redis replies them
    ("9-0", b"10-0"),
])
def test_order(earlier: str | bytes, later: str | bytes) -> None:
    assert stream_order(earlier) < stream_order(later)


@pytest.mark.parametrize(("entry_id", "key"), [
    ("0-0", (0, 0)),
    ("1700000000000-3", (1700000000000, 3)),
    (b"1700000000000-3", (1700000000000, 3)),
    ("42", (42, 0)),
])
def test_key(entry_id: str | bytes, key: tuple[int, int]) -> None:
    assert stream_order(entry_id) == key
