"""Where the gateway sends a client's event next (gateway/routing.py)."""

from __future__ import annotations

import pytest

from gateway.routing import Route, route

A, B = b"sig:out:{s1}:x", b"sig:out:{s2}:x"

# (joining, leaving, waiting, channel, channel live, target, target live) -> route
TABLE = [
    # A subscription being made: everything waits behind it, a leave too (order).
    ((True, False, True, None, False, A, False), Route.WAIT),
    ((False, True, True, A, True, None, False), Route.WAIT),
    ((False, False, True, A, True, None, False), Route.WAIT),
    # A first join: its room's channel must be subscribed first.
    ((True, False, False, None, False, A, False), Route.SUBSCRIBE_FIRST),
    # A join into a room of another shard: that shard's channel first.
    ((True, False, False, A, True, B, False), Route.SUBSCRIBE_FIRST),
    ((True, False, False, A, True, B, True), Route.SUBSCRIBE_FIRST),
    # The same shard's channel, live: the join goes out at once.
    ((True, False, False, A, True, A, True), Route.SEND),
    # Its channel was lost (pub/sub broke): subscribed again before the join.
    ((True, False, False, A, False, A, False), Route.SUBSCRIBE_FIRST),
    # In a room, channel live: messages and statuses go out.
    ((False, False, False, A, True, None, False), Route.SEND),
    # Channel down: a message could not get its reply, so it is refused...
    ((False, False, False, A, False, None, False), Route.REFUSE),
    ((False, False, False, None, False, None, False), Route.REFUSE),
    # ...but a leave still goes out, so that the peer leaves its room.
    ((False, True, False, A, False, None, False), Route.SEND),
    ((False, True, False, None, False, None, False), Route.SEND),
]


@pytest.mark.parametrize(("case", "expected"), TABLE)
def test_route(case: tuple[bool, bool, bool, bytes | None, bool, bytes | None, bool],
               expected: Route) -> None:
    joining, leaving, waiting, channel, channel_live, target, target_live = case
    assert route(joining=joining, leaving=leaving, waiting=waiting, channel=channel,
                 channel_live=channel_live, target=target, target_live=target_live) \
        is expected
