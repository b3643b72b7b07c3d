"""Checkpoint skipping (relay/checkpoint.py): after a takeover, the entries a former
holder committed are acknowledged only; the checkpoint never moves back."""

from __future__ import annotations

import pytest

from relay.checkpoint import applied_prefix, checkpoint_after, is_applied


@pytest.mark.parametrize(("entry_id", "checkpoint", "applied"), [
    ("5-0", "", False),        # no commit yet: nothing is applied
    ("5-0", "5-0", True),
    ("4-9", "5-0", True),
    ("5-1", "5-0", False),
    ("9-0", "10-0", True),     # ids order as numbers, not strings
    ("10-0", "9-0", False),
])
def test_is_applied(entry_id: str, checkpoint: str, applied: bool) -> None:
    assert is_applied(entry_id, checkpoint) is applied


@pytest.mark.parametrize(("ids", "checkpoint", "skipped"), [
    ([b"1-0", b"2-0"], "", 0),                          # a fresh shard
    ([b"3-0", b"4-0"], "2-0", 0),                       # steady state: all new
    ([b"1-0", b"2-0", b"3-0"], "2-0", 2),               # a takeover: two were committed
    ([b"1-0", b"2-0"], "2-0", 2),                       # the whole batch was committed
    ([b"2-0", b"2-1"], "2-0", 1),                       # same millisecond
    ([b"9-5", b"10-0"], "9-7", 1),                     # 10-0 is past 9-7
    ([b"9-5", b"10-0"], "10-0", 2),                     # numbers, not strings
    ([], "2-0", 0),
])
def test_applied_prefix(ids: list[bytes], checkpoint: str, skipped: int) -> None:
    assert applied_prefix(ids, checkpoint) == skipped


@pytest.mark.parametrize(("last_id", "checkpoint", "after"), [
    ("3-0", "", "3-0"),        # the first commit
    ("3-0", "2-0", "3-0"),
    ("2-0", "2-0", "2-0"),     # all applied before: unchanged
    ("1-0", "2-0", "2-0"),     # never back
    ("10-0", "9-0", "10-0"),
])
def test_checkpoint_after(last_id: str, checkpoint: str, after: str) -> None:
    assert checkpoint_after(last_id, checkpoint) == after
