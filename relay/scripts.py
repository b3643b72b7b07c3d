"""Lua scripts run by EVALSHA inside pipelines, reloaded when Redis has forgotten them."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from shared.redis_clients import CALL_S, RedisClient, bounded
from shared.resp import pack

# A master that died must not hold back the renewal of every other master's leases.
_CLUSTER_CALL_S = 1.0


class LuaScript:
    """A script known by its SHA1; `run_each` calls it through redis-py, `command` packs
    one call for a RespConnection.

    A restarted Redis has an empty script cache: calls then fail with NOSCRIPT, which the
    worker treats like any Redis error, calling `load` before it resumes.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def run_each(self, redis: RedisClient,
                       calls: list[tuple[list[str], list[str | bytes | int]]]) -> list[Any]:
        """One call per (keys, args), in one round trip: a pipeline on a standalone
        Redis; concurrent calls on a cluster (redis-py refuses EVALSHA in its cluster
        pipelines, and each call may go to another node anyway). A call that failed
        gives its RedisError, so that a master failing over spoils only its own."""
        if isinstance(redis, RedisCluster):
            results = await asyncio.gather(*(
                bounded(redis.evalsha(self.sha, len(keys), *keys, *args), _CLUSTER_CALL_S)
                for keys, args in calls), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException) and not isinstance(result, RedisError):
                    raise result
            return list(results)
        pipe = redis.pipeline(transaction=False)
        for keys, args in calls:
            pipe.evalsha(self.sha, len(keys), *keys, *args)
        return list(await bounded(pipe.execute(raise_on_error=False), CALL_S))

    def command(self, keys: list[str], args: list[str | bytes | int]) -> bytes:
        """The EVALSHA call as RESP, for the relay's hot path (shared.resp)."""
        return pack(b"EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self, redis: RedisClient) -> None:
        await bounded(redis.script_load(self.source), CALL_S)
