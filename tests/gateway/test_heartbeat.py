"""The gateway's heartbeat (gateway/heartbeat.py) against a real redis-server: a key
merely missing (a failover lost it) is set again and closes nothing; a relay's verdict in
it closes every socket, once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from gateway.heartbeat import Heartbeat
from harness.processes import RedisServer
from shared import keys

TTL_MS = 3000


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    # A database of its own: the session's gateways and relays use database 0.
    client = Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/6")
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


async def test_a_missing_key_is_set_again_and_closes_nothing(redis: Redis) -> None:
    closed: list[str] = []
    heartbeat = Heartbeat(redis, "gw-1", TTL_MS, lambda: closed.append("all"))
    await heartbeat.register()
    assert 0 < await redis.pttl(heartbeat.key) <= TTL_MS
    await redis.delete(heartbeat.key)  # expired on a replica promoted after a failover
    await heartbeat.register()
    assert closed == []
    assert await redis.get(heartbeat.key) not in (None, keys.GATEWAY_DEAD)


async def test_a_relays_verdict_closes_every_socket_once(redis: Redis) -> None:
    closed: list[str] = []
    heartbeat = Heartbeat(redis, "gw-2", TTL_MS, lambda: closed.append("all"))
    await heartbeat.register()
    await redis.delete(heartbeat.key)
    # What a relay does (relay/worker.py, _declare_dead) before it removes the peers.
    assert await declare(redis, heartbeat.key) is None
    await heartbeat.register()
    assert closed == ["all"]
    value = await redis.get(heartbeat.key)
    assert value not in (None, keys.GATEWAY_DEAD)
    assert 0 < await redis.pttl(heartbeat.key) <= TTL_MS
    await heartbeat.register()
    assert closed == ["all"]


async def test_a_relay_cannot_declare_a_gateway_whose_key_is_there(redis: Redis) -> None:
    heartbeat = Heartbeat(redis, "gw-3", TTL_MS, lambda: None)
    await heartbeat.register()
    value = await redis.get(heartbeat.key)
    assert await declare(redis, heartbeat.key) == value  # the gateway's: alive
    assert await redis.get(heartbeat.key) == value


async def declare(redis: Redis, key: str) -> bytes | None:
    """relay/worker.py's verdict: SET NX GET, what the key held (None: written now)."""
    previous: bytes | None = await redis.set(key, keys.GATEWAY_DEAD, nx=True, get=True,
                                             px=keys.GATEWAY_DEAD_KEPT_MS)
    return previous
