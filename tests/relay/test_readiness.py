"""Stream lag from XINFO GROUPS (relay/readiness.py). Pure: no Redis."""

from __future__ import annotations

import pytest

from relay.readiness import group_lag


@pytest.mark.parametrize(("groups", "lag"), [
    ([], 0),
    ([{"name": "relays", "lag": 3, "pending": 2}], 5),
    ([{"name": b"relays", "lag": 3, "pending": 0}], 3),      # names as bytes
    ([{"name": "relays", "lag": None, "pending": 4}], 4),    # lag unknown to Redis
    ([{"name": "relays", "pending": 1}], 1),                 # Redis before 7 has no lag
    ([{"name": "other", "lag": 9, "pending": 9},
      {"name": "relays", "lag": 1, "pending": 1}], 2),       # only the relays' group
])
def test_group_lag(groups: list[dict[str, object]], lag: int) -> None:
    assert group_lag(groups) == lag
