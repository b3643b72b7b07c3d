"""The relay's once-a-second sweeps of the rooms it holds: peers of dead gateways leave
(docs/architecture.md, rule 4), detached peers whose grace is over expire (rule 8), rooms
whose deadline passed end (docs/protocol.md, "Deadlines"). Each writes events to the
shard streams, where they are applied like any other, in order and exactly once."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from redis.exceptions import RedisError

from redis_io.clients import CALL_S, RedisClient, bounded, get_many
from relay.gateway_watch import GatewayWatch
from relay.store import Shard
from shared import keys
from shared.events import AnyEvent, Detach, Leave, event_encoder

log = logging.getLogger(__name__)


class Sweeps:
    """Finds the events that the passing of time calls for, and appends them."""

    def __init__(self, redis: RedisClient, stream_maxlen: int, watch: GatewayWatch) -> None:
        self.redis = redis
        self.stream_maxlen = stream_maxlen
        self.watch = watch

    async def remove_dead_gateways(self, shards: Iterable[Shard]) -> None:
        """Rule 4: peers of a gateway that stopped heartbeating leave their rooms.

        Sending a leave twice does no harm (leaving is idempotent). A gateway is dead when
        a relay declared it so (its key holds GATEWAY_DEAD), or when its key is missing
        while `GatewayWatch` says that cannot be a failover's doing: then this relay
        declares it first, so that the gateway, should it be alive after all, knows on its
        next beat that its sockets must rejoin.

        What each gateway's death means is taken before its key is read: a socket that
        joins or resumes through it afterwards may do so after the gateway's beat that
        reads the verdict, and would not be closed, so it must not be removed.
        """
        departures: dict[str, list[tuple[str, Leave | Detach]]] = {}
        for shard in shards:
            for gateway, events in shard.book.departures().items():
                departures.setdefault(gateway, []).extend((shard.stream, e) for e in events)
        watch = self.watch
        watch.keep_only(set(departures))
        if not departures:
            return
        gateways = sorted(departures)
        try:
            values = await get_many(self.redis, [keys.gateway_alive(g) for g in gateways],
                                    CALL_S)
        except RedisError:
            watch.failed()
            raise
        now = time.monotonic()
        watch.read(gateways, now)
        dead = []
        for gateway, value in zip(gateways, values, strict=True):
            verdict = watch.verdict(gateway, value, now)
            if verdict == "dead" or verdict == "declare" and await self._declare_dead(gateway):
                dead.append(gateway)
        if not dead:
            return
        leaving = [leave for gateway in dead for leave in departures[gateway]]
        log.info("gateways gone: %s; removing or detaching %d peers", dead, len(leaving))
        await append_events(self.redis, leaving, self.stream_maxlen)

    async def _declare_dead(self, gateway: str) -> bool:
        """Write the verdict where the gateway's key is still missing (SET NX GET, one
        command): True if this relay wrote it or another relay's verdict is there, False
        if the gateway beat meanwhile."""
        previous = await bounded(self.redis.set(
            keys.gateway_alive(gateway), keys.GATEWAY_DEAD, nx=True, get=True,
            px=keys.GATEWAY_DEAD_KEPT_MS), CALL_S)
        return previous is None or previous == keys.GATEWAY_DEAD

    async def expire_detached(self, shards: Iterable[Shard]) -> None:
        """Detached peers whose grace period is over leave (docs/protocol.md, "Resume").

        As a leave, the expiry goes through the shard stream; one that a resume overtook
        changes nothing (it names the deadline it was sent for)."""
        now_ms = int(time.time() * 1000)
        expiring = [(shard.stream, expire) for shard in shards
                    for expire in shard.book.expired(now_ms)]
        if expiring:
            log.info("grace over for %d detached peers", len(expiring))
            await append_events(self.redis, expiring, self.stream_maxlen)

    async def find_stranded(self, shards: Iterable[Shard], relay_id: str) -> None:
        """Mark the shards with entries pending under another relay (`Shard.stranded`).

        A relay that lost a shard without knowing it yet (its Redis restarted, a lease
        lapsed while it was held up) may read the shard's new entries, or claim them when
        it reads the shard back, before its commit is fenced off. They wait in its pending
        list, unapplied, where the holder's commit finds them only with its next batch of
        the shard: a quiet room would wait for its next event. One XPENDING per shard a
        second bounds that to the sweep."""
        owned = [shard for shard in shards if not shard.reading_pending]
        if not owned:
            return
        pipe = self.redis.pipeline(transaction=False)
        for shard in owned:
            pipe.xpending(shard.stream, keys.GROUP)
        for shard, pending in zip(owned, await bounded(pipe.execute(raise_on_error=False),
                                                          CALL_S), strict=True):
            if pending_elsewhere(pending, relay_id):
                shard.stranded = True

    async def end_rooms(self, shards: Iterable[Shard]) -> None:
        """Rooms whose deadline passed end. A deadline that passed while no relay held the
        shard is found by the first sweep of the relay that takes it; one that the app
        moved meanwhile changes nothing (the event names the deadline it was sent for)."""
        now_ms = int(time.time() * 1000)
        ending = [(shard.stream, end) for shard in shards for end in shard.book.ended(now_ms)]
        if ending:
            log.info("deadline passed for %d rooms", len(ending))
            await append_events(self.redis, ending, self.stream_maxlen)


async def append_events(redis: RedisClient, events: Sequence[tuple[str, AnyEvent]],
                        maxlen: int) -> None:
    """XADD each (stream, event), bounded as the gateways bound theirs (`MAXLEN ~`), in one
    round trip. (The gateways' hot path packs its own: gateway/event_sink.py.)"""
    pipe = redis.pipeline(transaction=False)
    for stream, event in events:
        pipe.xadd(stream, {keys.EVENT_FIELD: event_encoder.encode(event)}, maxlen=maxlen,
                  approximate=True)
    await bounded(pipe.execute(), CALL_S)


def pending_elsewhere(pending: object, relay_id: str) -> bool:
    """Whether an XPENDING summary (redis-py's dict; an error or anything else counts as
    not known, so not stranded) shows entries pending under another relay than this one."""
    if not isinstance(pending, dict):
        return False
    mine = (relay_id.encode(), relay_id)
    return any(consumer["name"] not in mine and consumer["pending"]
               for consumer in pending.get("consumers") or [])
