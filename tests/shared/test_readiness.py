"""The "N of M shards have no relay" readiness problem (shared/readiness.py)."""

from __future__ import annotations

import pytest

from shared.readiness import shards_without_relay


@pytest.mark.parametrize(("holders", "problems"), [
    ([b"relay-a", b"relay-b"], []),
    ([b"relay-a", None, None, b"relay-b"], ["2 of 4 shards have no relay"]),
    ([None, None, None], ["3 of 3 shards have no relay"]),
    ([], []),
])
def test_problems(holders: list[bytes | None], problems: list[str]) -> None:
    assert shards_without_relay(holders) == problems
