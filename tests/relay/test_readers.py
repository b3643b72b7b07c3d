"""Which reader reads a shard, and when a reader reads its shards back at once
(relay/readers.py). Pure: no Redis."""

from __future__ import annotations

import pytest

from relay.readers import ALL_SHARDS, is_redirect, reader_of


@pytest.mark.parametrize(("number", "cluster", "reader"), [
    (0, False, ALL_SHARDS),     # a single Redis: one XREADGROUP over every owned stream
    (63, False, ALL_SHARDS),
    (0, True, 0),               # a cluster: one command cannot span slots
    (63, True, 63),
])
def test_reader_of(number: int, cluster: bool, reader: int) -> None:
    assert reader_of(number, cluster) == reader


@pytest.mark.parametrize(("error", "at_once"), [
    ("MOVED", True),            # the slot is elsewhere now: read it back from there
    ("ASK", True),
    ("TRYAGAIN", False),        # a cluster in flux: give it time
    ("CLUSTERDOWN", False),
    ("LOST", False),            # a master that cannot be reached (failing over)
    (None, False),              # an error of the command itself (NOSCRIPT...)
])
def test_is_redirect(error: str | None, at_once: bool) -> None:
    assert is_redirect(error) is at_once
