"""Lease decisions (relay/leases.py): each relay's fair share, what it gives back or
takes to hold it, and which leases a renewal lost. Pure: no Redis."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from relay.leases import lost_leases, rebalance, shards_per_relay


@pytest.mark.parametrize(("shards", "relays", "share"), [
    (64, 1, 64),
    (64, 2, 32),
    (64, 3, 22),    # rounded up: together the relays can hold every shard
    (64, 100, 1),
    (64, 0, 64),    # not even counting itself yet
])
def test_shards_per_relay(shards: int, relays: int, share: int) -> None:
    assert shards_per_relay(shards, relays) == share


@pytest.mark.parametrize(("owned", "share", "surplus", "wanted"), [
    ([], 32, [], 32),                   # a new relay takes up to its share
    ([3, 1, 2], 3, [], 0),              # holds its share
    ([3, 1, 2], 5, [], 2),
    ([9, 3, 1, 7], 2, [7, 9], 0),       # a relay joined: the highest numbered go back
    ([5], 0, [5], 0),
])
def test_rebalance(owned: list[int], share: int, surplus: list[int], wanted: int) -> None:
    assert rebalance(owned, share) == (surplus, wanted)


FAILED = RedisConnectionError("failing over")


@pytest.mark.parametrize(("owned", "renewals", "lost"), [
    ([1, 2, 3], [1, 1, 1], []),
    ([1, 2, 3], [1, 0, 1], [2]),                # another relay holds shard 2 now
    ([1, 2, 3], [0, FAILED, 1], [1]),           # shard 2's master did not answer: kept
    ([1, 2], [FAILED, 0], [2]),
    ([], [], []),
])
def test_lost_leases(owned: list[int], renewals: list[object], lost: list[int]) -> None:
    assert lost_leases(owned, renewals) == lost


def test_no_renewal_answered_is_an_error() -> None:
    with pytest.raises(RedisError, match="failing over"):
        lost_leases([1, 2], [FAILED, RedisConnectionError("down")])
