"""What the relay's /readyz and /metrics ask Redis: shards without a relay, and the
events its shards have not applied yet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from redis.exceptions import RedisError

from redis_io.clients import PROBE_S, RedisClient, bounded, get_many
from shared import keys
from shared.readiness import shards_without_relay


async def readiness_problems(redis: RedisClient, shards: int) -> list[str]:
    """Why the service cannot serve rooms now (for /readyz); empty when it can."""
    try:
        holders = await get_many(redis, keys.all_leases(shards), PROBE_S)
    except RedisError as exc:
        return [f"redis unreachable: {exc}"]
    return shards_without_relay(holders)


async def stream_lag(redis: RedisClient, streams: list[str]) -> int:
    """Events in these shard streams that are not applied yet (XINFO GROUPS)."""
    if not streams:
        return 0
    pipe = redis.pipeline(transaction=False)
    for stream in streams:
        pipe.xinfo_groups(stream)
    return sum(group_lag(groups) for groups in await bounded(
        pipe.execute(raise_on_error=False), PROBE_S)
        if not isinstance(groups, Exception))  # a stream that went meanwhile


def group_lag(groups: Iterable[Mapping[str, object]]) -> int:
    """A stream's events not applied yet, from its XINFO GROUPS: not read by any relay
    (the relays' group's `lag`) or read and not acknowledged (its `pending`)."""
    lag = 0
    for group in groups:
        if group.get("name") in (keys.GROUP, keys.GROUP.encode()):
            lag += _count(group.get("lag")) + _count(group.get("pending"))
    return lag


def _count(value: object) -> int:
    """XINFO's count, or 0 where Redis has none (`lag` is nil when it cannot tell)."""
    return int(value) if isinstance(value, int | str | bytes) else 0
