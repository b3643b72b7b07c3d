"""The relay's commit script and shard loading, against a real redis-server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from harness.processes import RedisServer
from redis_io.resp import RespConnection
from relay.effects import Effect
from relay.rooms import RoomBook
from relay.store import (
    CHECKPOINT_MOVED,
    COMMIT,
    COMMITTED,
    ENTRIES_MISSED,
    LEASE_LOST,
    Committer,
    Shard,
    load_shard,
)
from shared import keys
from shared.events import Join, Status, event_decoder, event_encoder

SHARD = 7
ME, OTHER = "relay-me", "relay-other"


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    # A database of its own: the session's gateways and relays use database 0.
    client = Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/5")
    await client.flushdb()
    await client.set(keys.shard_lease(SHARD), ME)
    await client.xgroup_create(keys.shard_stream(SHARD), keys.GROUP, id="0", mkstream=True)
    await client.script_load(COMMIT.source)
    yield client
    await client.flushdb()
    await client.aclose()


async def _add_joins(redis: Redis, *conns: str) -> list[str]:
    ids = []
    for conn in conns:
        event = Join(conn=conn, room="d1", gateway="gw", seq=1, status=Status(name=conn))
        ids.append((await redis.xadd(keys.shard_stream(SHARD), {"e": event_encoder.encode(event)})).decode())
    return ids


async def _read(redis: Redis, consumer: str, count: int) -> list[str]:
    reply = await redis.xreadgroup(keys.GROUP, consumer, {keys.shard_stream(SHARD): ">"}, count=count)
    return [raw.decode() for raw, _ in reply[0][1]]


async def _commit(redis: Redis, shard: Shard, ids: list[str], relay: str = ME) -> int:
    book_effects: list[Effect] = []
    events = await redis.xrange(keys.shard_stream(SHARD), ids[0], ids[-1])
    for raw, fields in events:
        shard.book.apply(event_decoder.decode(fields[b"e"]), raw.decode(), book_effects)
    where = redis.connection_pool.connection_kwargs
    conn = await RespConnection.open(f"redis://{where['host']}:{where['port']}/{where['db']}")
    try:
        command = Committer(relay, keep_frames=10, kept_ttl_ms=60_000).command(shard, ids[0], ids[-1],
                                           [i.encode() for i in ids], book_effects)
        (result,) = await conn.request(command, 1, 5.0)
    finally:
        conn.close()
    assert isinstance(result, int), result
    return result


async def test_a_batch_commits_state_frames_checkpoint_and_ack_together(redis: Redis) -> None:
    ids = await _add_joins(redis, "a", "b")
    assert await _read(redis, ME, 10) == ids
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint="")
    assert await _commit(redis, shard, ids) == COMMITTED
    assert (await redis.get(keys.shard_checkpoint(SHARD))).decode() == ids[-1]
    assert (await redis.xpending(keys.shard_stream(SHARD), keys.GROUP))["pending"] == 0
    reloaded = await load_shard(redis, SHARD, RoomBook(capacity=10, star_capacity=10))
    assert list(reloaded.book.rooms["d1"].members) == ["a", "b"]
    assert reloaded.checkpoint == ids[-1]


async def test_a_relay_without_the_lease_changes_nothing(redis: Redis) -> None:
    ids = await _add_joins(redis, "a")
    await _read(redis, OTHER, 10)
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint="")
    assert await _commit(redis, shard, ids, relay=OTHER) == LEASE_LOST
    assert await redis.get(keys.shard_checkpoint(SHARD)) is None
    assert await redis.smembers(keys.shard_rooms(SHARD)) == set()


async def test_a_stale_checkpoint_is_refused(redis: Redis) -> None:
    ids = await _add_joins(redis, "a")
    await _read(redis, ME, 10)
    await redis.set(keys.shard_checkpoint(SHARD), "99999999999999-0")
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint="")
    assert await _commit(redis, shard, ids) == CHECKPOINT_MOVED


async def test_entries_a_former_holder_read_are_not_skipped(redis: Redis) -> None:
    """Split brain: a relay that lost the lease still read entry 1 with '>'; our batch
    starts at entry 2. Committing it would skip entry 1 for ever, so it is refused."""
    ids = await _add_joins(redis, "a", "b", "c")
    assert await _read(redis, OTHER, 1) == ids[:1]
    assert await _read(redis, ME, 10) == ids[1:]
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint="")
    assert await _commit(redis, shard, ids[1:]) == ENTRIES_MISSED
    assert await redis.get(keys.shard_checkpoint(SHARD)) is None


async def test_applied_entries_leave_the_stream(redis: Redis) -> None:
    """Nothing of an applied event (peer ids, SDP) stays in Redis once committed."""
    ids = await _add_joins(redis, "a", "b", "c")
    assert await _read(redis, ME, 10) == ids
    shard = Shard(SHARD, RoomBook(capacity=10, star_capacity=10), checkpoint="")
    assert await _commit(redis, shard, ids[:2]) == COMMITTED
    remaining = await redis.xrange(keys.shard_stream(SHARD))
    assert [raw.decode() for raw, _ in remaining] == ids[2:]
