"""redis-py clients for everything off the hot paths (leases, health, heartbeats,
set-up): a `Redis` for a standalone server, a `RedisCluster` (which routes by slot and
follows redirects itself) for a cluster; and `bounded`, the one way to await them.

Every call through redis-py is awaited with `bounded`, for two reasons:
- Time. A Redis that accepts connections but does not answer (stopped with SIGSTOP, a
  network partition) would hold a call, and with it a heartbeat, a lease renewal, a
  readiness probe or a shutdown, for as long as TCP lives.
- One kind of failure. A cluster none of whose nodes answers fails in redis-py with a
  `RedisClusterException`, which is no `RedisError`: up to redis-py 8.1 from
  `RedisCluster.initialize`, which every command and pipeline goes through; from 8.2 on
  as `RedisClusterUnreachableError`, raised by the command or pipeline itself, while
  `initialize` keeps the old slot map and only logs. Uncaught, it ended the gateway's
  heartbeat task and its SIGTERM handler, and the relay's loop. `bounded` turns it, and
  an expired bound, into the `RedisError` every caller handles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ClusterError, RedisClusterException, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_io.nodes import RedisNodes
from shared.backoff import Backoff

log = logging.getLogger(__name__)

RedisClient = Redis | RedisCluster
T = TypeVar("T")

# How long an off-path call may wait for Redis before Redis counts as not answering.
PROBE_S = 0.8  # /readyz and /metrics: Kubernetes gives a probe 1 s
CALL_S = 2.0  # heartbeats, leases, sweeps: well within a heartbeat's or a lease's TTL
STOP_S = 2.0  # each call of a process that is stopping (SIGTERM must end it)
LOAD_S = 10.0  # a shard read back whole on takeover, which may hold many rooms

# What redis-py says when no node of a cluster answers ("Redis Cluster cannot be
# connected. Please provide at least one reachable node: ..."), in every version; 8.2's
# RedisClusterUnreachableError is the only other sign, and older versions lack it.
_UNREACHABLE = "cannot be connected"


async def bounded(call: Awaitable[T], seconds: float) -> T:
    """Await a redis-py call for at most `seconds`. A Redis that did not answer in time
    raises redis's TimeoutError; a cluster none of whose nodes answered, redis's
    ConnectionError; any other cluster error, ClusterError: each a RedisError."""
    try:
        async with asyncio.timeout(seconds):
            return await call
    except TimeoutError as exc:
        raise RedisTimeoutError(f"Redis did not answer within {seconds:g} s") from exc
    except RedisClusterException as exc:
        unreachable = _UNREACHABLE in str(exc)
        raise (RedisConnectionError if unreachable else ClusterError)(str(exc)) from exc




async def discover(url: str) -> RedisNodes:
    """The nodes of REDIS_URL (a cluster's slot map); waits (with backoff) while Redis
    cannot be reached, so that a process started before its Redis serves once Redis is up."""
    backoff = Backoff(most=2.0)
    while True:
        try:
            return await RedisNodes.discover(url)
        except RedisError as exc:
            delay = backoff.next()
            log.warning("cannot reach Redis yet, retrying in %.1f s: %s", delay, exc)
        await asyncio.sleep(delay)


def redis_client(nodes: RedisNodes) -> RedisClient:
    if nodes.cluster:
        # Few, short retries: a master failing over must not stall a relay's other work
        # (its leases on the other masters) for longer than a lease lasts.
        backoff = ExponentialWithJitterBackoff(cap=0.5, base=0.05)
        return RedisCluster.from_url(nodes.url, health_check_interval=10,
                                     socket_timeout=2, socket_connect_timeout=1,
                                     retry=Retry(backoff, 3))
    # `bounded` limits each call; the socket timeout only backs it up.
    return Redis.from_url(nodes.url, health_check_interval=10, socket_timeout=LOAD_S,
                          socket_connect_timeout=CALL_S)


async def get_many(redis: RedisClient, keys: list[str], seconds: float) -> list[bytes | None]:
    """GET each key in one round trip per node, within `seconds`. (MGET cannot span a
    cluster's slots.)"""
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.get(key)
    return list(await bounded(pipe.execute(), seconds))


async def close_client(redis: RedisClient) -> None:
    """Close a client at shutdown, within STOP_S whether or not Redis answers."""
    try:
        await bounded(redis.aclose(), STOP_S)
    except RedisError as exc:
        log.warning("could not close the Redis client: %s", exc)
