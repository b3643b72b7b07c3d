"""The gateway's heartbeat in Redis, by which relays know its peers are still there."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from shared import keys
from shared.redis_clients import CALL_S, STOP_S, RedisClient, bounded

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps `sig:gw:<id>` alive while the gateway runs (architecture.md, rule 4)."""

    def __init__(self, redis: RedisClient, gateway_id: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = keys.gateway_alive(gateway_id)
        self.ttl_ms = ttl_ms

    async def register(self) -> None:
        """Say the gateway is alive (on every pub/sub connection, before sockets join)."""
        await bounded(self.redis.set(self.key, int(time.time()), px=self.ttl_ms), CALL_S)

    async def run(self, generation: Callable[[], int], lapsed: Callable[[], None]) -> None:
        """Renew every ttl/3 until cancelled; call `lapsed` if the key expired under us.

        An expired heartbeat means relays may already have removed this gateway's peers
        from their rooms, so `lapsed` closes the sockets and they rejoin. A key missing
        because Redis itself came back empty is not that: the pub/sub connection broke
        too (its `generation` moved on), its sockets were closed then, and the ones
        opened since are fine.
        """
        seen = generation()
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                renewed = await bounded(self.redis.set(
                    self.key, int(time.time()), px=self.ttl_ms, xx=True), CALL_S)
                if not renewed:
                    if generation() == seen:
                        log.warning("heartbeat %s had expired: sockets must rejoin", self.key)
                        lapsed()
                    await self.register()
                seen = generation()
            except RedisError as exc:
                log.warning("heartbeat failed: %s", exc)

    async def stop(self) -> None:
        """Say at once that this gateway is gone (after its sockets have left); within a
        bound, since SIGTERM must end the process even while Redis does not answer."""
        try:
            await bounded(self.redis.delete(self.key), STOP_S)
        except RedisError as exc:
            log.warning("could not remove heartbeat (it lapses by itself): %s", exc)
