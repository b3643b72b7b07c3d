"""Entries stranded under a relay that lost its shard (docs/architecture.md, rule 2).

A relay that no longer holds a shard but does not know it yet (its Redis restarted, a
lease lapsed while it was held up) may read the shard's new entries, or claim them when it
reads the shard back, before its commit is fenced off. They then wait in its pending
list. The holder must apply them within its sweep, not only at its next batch of that
shard: in a quiet room that may never come (seen in CI: a join waited past its timeout
after a Redis restart)."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from harness.processes import Cluster
from shared import keys
from shared.events import SendToPeer, event_encoder
from tests.faults.support import SHARDS, record
from tests.peers import Peer

pytestmark = pytest.mark.timeout(60)


async def test_an_entry_read_by_a_relay_that_lost_the_shard_is_applied_within_the_sweep(
        own_cluster: Cluster, room: str) -> None:
    redis = Redis.from_url(own_cluster.redis.url)
    peer = await Peer.connect(own_cluster.url(0))
    try:
        await peer.join(room)
        assert peer.id is not None
        digest = keys.room_digest(room)
        stream = keys.shard_stream(keys.shard_of(digest, SHARDS))
        event = SendToPeer(conn=peer.id, room=digest, peer=peer.id,
                           data=b'{"event":"message","n":1}')
        # A gateway's XADD, read at once by a relay that is not the holder: in one
        # transaction, so that the holder's blocked read never sees the entry.
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(stream, {b"e": event_encoder.encode(event)})
            pipe.xreadgroup(keys.GROUP, "relay-that-lost-it", {stream: ">"}, count=10)
            added, read = await pipe.execute()
        assert read and read[0][1][0][0] == added  # stranded under the other consumer
        stranded_at = time.monotonic()
        # Nothing else happens in the room: only the sweep can find it.
        message = await peer.expect("message", timeout=10)
        applied_after = time.monotonic() - stranded_at
        assert message == {"event": "message", "n": 1, "sender_id": peer.id}
        record("test_an_entry_read_by_a_relay_that_lost_the_shard_is_applied_within_the_sweep",
               fault="an entry stranded under a relay that lost the shard",
               applied_after_s=round(applied_after, 2))
        assert applied_after < 5
        await peer.assert_nothing_pending()  # once: not applied twice
    finally:
        await peer.close()
        await redis.aclose()
