"""A leave (or detach) that Redis did not take is tried again in the background: if Redis
kept its data through the outage, the peer would otherwise stay a member of its room for
good (docs/architecture.md, rule 6)."""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from gateway.event_sink import EventSink
from gateway.session import Forward
from shared.backoff import Backoff
from shared.events import event_encoder

log = logging.getLogger(__name__)

LEAVE_RETRY_S = 300.0  # for as long as an outage may last


async def retry_leave(sink: EventSink, forward: Forward,
                      seconds: float = LEAVE_RETRY_S) -> None:
    """Send `forward` until Redis takes it or `seconds` have passed."""
    backoff = Backoff(first=0.5, most=5.0)
    deadline = time.monotonic() + seconds
    payload = event_encoder.encode(forward.event)
    while time.monotonic() < deadline:
        await asyncio.sleep(backoff.next())
        try:
            await sink.send(forward.stream, payload)
            return
        except RedisError:
            pass
    log.warning("gave up a leave after %.0f s: %s", seconds, forward.event)
