"""After a round trip broke, the gateway asks the stream what Redis wrote of it, so that
a retry after a failover does not relay an event twice."""

from __future__ import annotations

import pytest
import redis

from gateway.event_sink import _entries_after, written_prefix
from harness.processes import RedisServer


@pytest.mark.parametrize(("sent", "entries", "found"), [
    ([b"a", b"b", b"c"], [], 0),  # nothing reached Redis
    ([b"a", b"b", b"c"], [b"a", b"b", b"c"], 3),  # all of it did; only the reply was lost
    ([b"a", b"b", b"c"], [b"a"], 1),  # a prefix was written (and replicated)
    # Other gateways' entries come between; their payloads name other peers.
    ([b"a", b"b"], [b"x", b"a", b"y", b"b"], 2),
    ([b"a", b"b"], [b"x", b"y"], 0),
    # The same payload twice (a client may send one message twice): counted in order.
    ([b"a", b"a", b"b"], [b"a"], 1),
    ([b"a", b"a", b"b"], [b"a", b"a"], 2),
])
def test_what_a_broken_round_trip_wrote(sent: list[bytes], entries: list[bytes],
                                        found: int) -> None:
    assert written_prefix(sent, entries) == found


async def test_entries_after_reads_the_stream_past_an_id(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    stream = "sig:test:written-after"
    client.delete(stream)
    before = client.xadd(stream, {b"e": b"old"})
    # More than one page of XRANGE, with another field the reader must skip.
    for n in range(2_500):
        client.xadd(stream, {b"x": b"-", b"e": b"%d" % n})
    try:
        payloads = await _entries_after(redis_server.url, stream, before)
        assert payloads == [b"%d" % n for n in range(2_500)]
        assert (await _entries_after(redis_server.url, stream, b"0-0"))[0] == b"old"
    finally:
        client.delete(stream)
        client.close()
