"""The gateway's heartbeat in Redis, by which relays know its peers are still there."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import RedisError

from redis_io.clients import CALL_S, STOP_S, RedisClient, bounded
from shared import keys

log = logging.getLogger(__name__)


class Heartbeat:
    """Keeps `sig:gw:<id>` alive while the gateway runs (docs/architecture.md, rule 4).

    Closing every socket is the gateway's most drastic act, so it is done only when a
    relay really declared this gateway dead: a relay that does so first writes
    `keys.GATEWAY_DEAD` into the key (relay.gateway_watch), and each beat reads what the
    key held in the same command that renews it. A key that is merely missing (expired
    on a replica promoted after a failover that outlasted its TTL, or lost with a Redis
    that came back empty) was not acted on by any relay: the beat sets it again and the
    sockets stay, also those in rooms on healthy masters.
    """

    def __init__(self, redis: RedisClient, gateway_id: str, ttl_ms: int,
                 declared_dead: Callable[[], None]) -> None:
        self.redis = redis
        self.key = keys.gateway_alive(gateway_id)
        self.ttl_ms = ttl_ms
        self.declared_dead = declared_dead
        # When the last beat that Redis took was sent (monotonic seconds).
        self._last_beat: float | None = None

    async def beat(self) -> None:
        """Renew the key and act on what it held: one SET ... GET, so that no relay's
        verdict can fall between the read and the write unseen."""
        sent = time.monotonic()
        previous = await bounded(self.redis.set(
            self.key, int(time.time()), px=self.ttl_ms, get=True), CALL_S)
        last, self._last_beat = self._last_beat, sent
        if previous == keys.GATEWAY_DEAD:
            log.warning("relays declared this gateway dead (%s had lapsed) and removed its "
                        "peers: its sockets must rejoin", self.key)
            self.declared_dead()
        elif previous is None and last is not None:
            if sent - last >= keys.GATEWAY_DEAD_KEPT_MS / 1000:
                # So long without a beat that a relay's verdict may have come and gone.
                log.warning("no heartbeat for %.0f s: its sockets must rejoin", sent - last)
                self.declared_dead()
            else:
                log.warning("heartbeat %s was missing (lost or expired in a failover), "
                            "no relay had acted on it: set again", self.key)

    async def register(self) -> None:
        """A beat on every new pub/sub connection, before its channels go live. A failure
        is only logged: the link to a healthy master must not fail because the master
        of this key fails over (the next beat is due in ttl/3)."""
        try:
            await self.beat()
        except RedisError as exc:
            log.warning("heartbeat failed: %s", exc)

    async def run(self) -> None:
        """Beat every ttl/3 until cancelled."""
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            await self.register()

    async def stop(self) -> None:
        """Say at once that this gateway is gone (after its sockets have left); within a
        bound, since SIGTERM must end the process even while Redis does not answer."""
        try:
            await bounded(self.redis.delete(self.key), STOP_S)
        except RedisError as exc:
            log.warning("could not remove heartbeat (it lapses by itself): %s", exc)
