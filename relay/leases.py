"""Shard leases: one relay per shard at a time (docs/architecture.md, rule 1)."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable

from redis.exceptions import RedisError

from redis_io.clients import CALL_S, RedisClient, bounded, get_many
from relay.scripts import LuaScript
from shared import keys

RENEW = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
""")

RELEASE = LuaScript("""
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
""")


class Leases:
    """Acquire, renew and release this relay's shard leases; count live relays."""

    def __init__(self, redis: RedisClient, relay_id: str, shards: int, ttl_ms: int) -> None:
        self.redis = redis
        self.relay_id = relay_id
        self.shards = shards
        self.ttl_ms = ttl_ms

    async def fair_share(self) -> int:
        """Announce this relay and return how many shards each live relay should hold."""
        now_ms = int(time.time() * 1000)
        # Not a transaction (redis-py's cluster transactions fail on ZADD): a count off by
        # one relay for a moment only moves a shard once more.
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(keys.RELAYS, {self.relay_id: now_ms + self.ttl_ms})
        pipe.zremrangebyscore(keys.RELAYS, "-inf", now_ms)
        pipe.zcard(keys.RELAYS)
        *_, relays = await bounded(pipe.execute(), CALL_S)
        return shards_per_relay(self.shards, int(relays))

    async def renew(self, owned: list[int]) -> list[int]:
        """Extend the leases in `owned`; return those that were lost."""
        if not owned:
            return []
        return lost_leases(owned, await RENEW.run_each(self.redis, [
            ([keys.shard_lease(shard)], [self.relay_id, self.ttl_ms]) for shard in owned]))

    async def acquire(self, wanted: int) -> list[int]:
        """Take up to `wanted` unheld shards, in random order so that relays spread out."""
        if wanted <= 0:
            return []
        holders = await get_many(self.redis, keys.all_leases(self.shards), CALL_S)
        free = [shard for shard, holder in enumerate(holders) if holder is None]
        random.shuffle(free)
        won: list[int] = []
        for shard in free:
            if len(won) == wanted:
                break
            if await bounded(self.redis.set(keys.shard_lease(shard), self.relay_id, nx=True,
                                            px=self.ttl_ms), CALL_S):
                won.append(shard)
        return won

    async def release(self, shards: list[int]) -> None:
        """Give shards up at once so another relay need not wait for the TTL."""
        # One that fails lapses with its TTL.
        await RELEASE.run_each(self.redis, [([keys.shard_lease(shard)], [self.relay_id])
                                            for shard in shards])

    async def leave(self, shards: list[int]) -> None:
        """Release everything and stop counting as a live relay."""
        if shards:
            await self.release(shards)
        await bounded(self.redis.zrem(keys.RELAYS, self.relay_id), CALL_S)


def shards_per_relay(shards: int, relays: int) -> int:
    """Each live relay's fair share: the shards over the relays, rounded up."""
    return math.ceil(shards / max(1, relays))


def rebalance(owned: Iterable[int], share: int) -> tuple[list[int], int]:
    """What a relay holding `owned` does to hold its fair `share`: the shards it gives back
    (its highest numbered beyond the share), and how many free ones it may take."""
    held = sorted(owned)
    return held[share:], max(0, share - len(held))


def lost_leases(owned: list[int], renewals: list[object]) -> list[int]:
    """The shards whose lease a renewal (RENEW's reply, or its RedisError, per shard of
    `owned`) found held by another relay or by none. When no renewal got an answer, Redis
    is unreachable: its first error is raised."""
    errors = [result for result in renewals if isinstance(result, RedisError)]
    if errors and len(errors) == len(renewals):
        raise errors[0]
    # A lease whose master could not be asked (failing over) is kept for now: if it
    # lapsed meanwhile, the shard's next commit is fenced off and drops it.
    return [shard for shard, kept in zip(owned, renewals, strict=True) if kept == 0]
