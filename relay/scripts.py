"""Lua scripts run by EVALSHA inside pipelines, reloaded when Redis has forgotten them."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from redis.asyncio import RedisCluster
from redis.exceptions import RedisError

from redis_io.clients import CALL_S, RedisClient, bounded
from redis_io.nodes import Node
from redis_io.resp import RespConnection, pack

# A master that died must not hold back the renewal of every other master's leases.
_CLUSTER_CALL_S = 1.0


class LuaScript:
    """A script known by its SHA1; `run_each` calls it through redis-py, `command` packs
    one call for a RespConnection.

    A restarted Redis, or a promoted replica (SCRIPT LOAD is not replicated), has an
    empty script cache: calls then fail with NOSCRIPT, which the worker treats like any
    Redis error, calling `load_scripts` before it resumes.
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
        """The EVALSHA call as RESP, for the relay's hot path (redis_io.resp)."""
        return pack(b"EVALSHA", self.sha, len(keys), *keys, *args)


async def load_scripts(scripts: list[LuaScript], masters: list[Node]) -> None:
    """SCRIPT LOAD each script into each master of the relay's own slot map: where the
    hot path sends its EVALSHA. (Through redis-py, a cluster's SCRIPT LOAD goes to the
    masters of redis-py's own map, which can lag a failover: with redis-py 7.4, NOSCRIPT
    went on for seconds after a replica's promotion.)
    Raises the first RedisError; each master is bounded by CALL_S."""
    load = b"".join(pack(b"SCRIPT", b"LOAD", script.source) for script in scripts)

    async def into(node: Node) -> None:
        connection = await RespConnection.open(node.url, timeout=CALL_S)
        try:
            replies = await connection.request(load, len(scripts), CALL_S)
        finally:
            connection.close()
        for reply in replies:
            if isinstance(reply, RedisError):
                raise reply

    await asyncio.gather(*(into(node) for node in masters))
