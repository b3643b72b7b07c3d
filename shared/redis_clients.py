"""redis-py clients for everything off the hot paths (leases, health, heartbeats, set-up):
a `Redis` for a standalone server, a `RedisCluster` (which routes by slot and follows
redirects itself) for a cluster."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from shared.topology import Topology

log = logging.getLogger(__name__)

RedisClient = Redis | RedisCluster


class _Cluster(RedisCluster):
    """redis-py's cluster client, but a cluster none of whose nodes answers fails with a
    RedisError, as every other unreachable Redis does. redis-py raises its
    RedisClusterException there (from `initialize`, which every command and pipeline
    goes through), which is no RedisError: uncaught, it ended the gateway's heartbeat
    task for good, and its SIGTERM hung, while the whole cluster was down."""

    async def initialize(self, *args: Any, **kwargs: Any) -> _Cluster:
        try:
            await super().initialize(*args, **kwargs)
        except RedisClusterException as exc:
            raise RedisConnectionError(str(exc)) from exc
        return self


_DISCOVER_BACKOFF_MAX_S = 2.0


async def discover(url: str) -> Topology:
    """The topology of REDIS_URL; waits (with backoff) while Redis cannot be reached, so
    that a process started before its Redis serves once Redis is up."""
    backoff = 0.1
    while True:
        try:
            return await Topology.discover(url)
        except RedisError as exc:
            log.warning("cannot reach Redis yet, retrying in %.1f s: %s", backoff, exc)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, _DISCOVER_BACKOFF_MAX_S)


def redis_client(topology: Topology) -> RedisClient:
    if topology.cluster:
        # Few, short retries: a master failing over must not stall a relay's other work
        # (its leases on the other masters) for longer than a lease lasts.
        return _Cluster.from_url(topology.url, health_check_interval=10,
                                 socket_timeout=2, socket_connect_timeout=1,
                                 cluster_error_retry_attempts=3)
    return Redis.from_url(topology.url, health_check_interval=10)


async def get_many(redis: RedisClient, keys: list[str]) -> list[bytes | None]:
    """GET each key in one round trip per node. (MGET cannot span a cluster's slots.)"""
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return list(await pipe.execute())
