"""The gateway's heartbeat in Redis, by which relays know its peers are still there."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared import keys

log = logging.getLogger(__name__)


async def heartbeat(redis: Redis, gateway_id: str, ttl_ms: int,
                    lapsed: Callable[[], None]) -> None:
    """Keep `sig:gw:<id>` alive; call `lapsed` if it ever expired under us.

    An expired heartbeat means relays may already have removed this gateway's peers from
    their rooms (architecture.md, rule 4): the sockets must then rejoin, so `lapsed`
    closes them. Runs until cancelled.
    """
    key = keys.gateway_alive(gateway_id)
    registered = False
    while True:
        try:
            if not registered:
                await redis.set(key, int(time.time()), px=ttl_ms)
                registered = True
            elif not await redis.set(key, int(time.time()), px=ttl_ms, xx=True):
                log.warning("heartbeat %s had expired: closing sockets so they rejoin", key)
                lapsed()
                registered = False
                continue
        except RedisError as exc:
            log.warning("heartbeat failed: %s", exc)
        await asyncio.sleep(ttl_ms / 3000)


async def stop_heartbeat(redis: Redis, gateway_id: str) -> None:
    """Say at once that this gateway is gone (after its sockets have left)."""
    try:
        await redis.delete(keys.gateway_alive(gateway_id))
    except RedisError as exc:
        log.warning("could not remove heartbeat (it lapses by itself): %s", exc)
