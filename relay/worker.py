"""The relay process: the shards it holds, and its maintenance loop (tend leases, claim
shards, sweep) beside the readers of those shards (relay.readers)."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from redis.exceptions import RedisError

from redis_io.clients import CALL_S, STOP_S, RedisClient, bounded
from redis_io.nodes import RedisNodes
from redis_io.replica_wait import ReplicaWait
from relay.batches import Batches, ShardReader
from relay.gateway_watch import GatewayWatch
from relay.leases import RELEASE, RENEW, Leases, rebalance
from relay.metrics import RelayMetrics
from relay.readers import Readers, pause, relay_backoff
from relay.rooms import RoomBook
from relay.scripts import load_scripts
from relay.store import COMMIT, Committer, Shard, take_over
from relay.sweeps import Sweeps
from relay.webhook_sender import WebhookSender
from shared.linger import Linger
from shared.process_id import process_id
from shared.settings import Settings

log = logging.getLogger(__name__)

# Free shards (a dead relay's, once its lease lapsed) are looked for this often, so a
# takeover follows the lease TTL closely; dead gateways are looked for every second.
_CLAIM_EVERY_S = 0.25
_SWEEP_EVERY_S = 1.0
# Sweeps further apart than this (a relay's loop held up) may have missed a failover.
_WATCH_GAP_S = 2.5 * _SWEEP_EVERY_S

class Relay:
    """One relay process: holds its fair share of shards and applies their events."""

    def __init__(self, settings: Settings, redis: RedisClient, nodes: RedisNodes,
                 relay_id: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.nodes = nodes
        self.id = relay_id or process_id("relay")
        self.leases = Leases(redis, self.id, settings.shards, settings.lease_ttl_ms)
        # A resumable peer's kept frames outlive its last one by this much at most: any
        # frame it may lack when its socket is found dead (idle timeout + a ping) plus
        # its grace period, and a margin.
        kept_ttl_ms = int(1000 * (settings.resume_grace_s + settings.idle_timeout_s
                                  + settings.ping_interval_s) + 60_000)
        committer = Committer(self.id, settings.resume_buffer_frames, kept_ttl_ms,
                              settings.webhook_backlog)
        self.owned: dict[int, Shard] = {}
        self.metrics = RelayMetrics(lambda: [shard.book for shard in self.owned.values()])
        # Delivery of the held shards' webhooks, off the hot path (rule 11).
        self.webhooks = (WebhookSender(settings, redis, self.metrics.registry)
                         if settings.webhook_url_list else None)
        self.stopping = asyncio.Event()
        # A live gateway sets its key again within one beat (ttl/3) and one failing call
        # (CALL_S) of its master answering again; a sweep may come a second later.
        self.sweeps = Sweeps(redis, settings.stream_maxlen, GatewayWatch(
            settle_s=settings.gateway_ttl_ms / 3000 + CALL_S + _SWEEP_EVERY_S,
            max_gap_s=_WATCH_GAP_S))
        self.batches = Batches(self.id, settings.batch_size, nodes, self.owned, committer,
                               self.metrics, self._reclaim, self._forget, settings.shards,
                               self.webhooks.wake if self.webhooks is not None
                               else lambda _: None)
        self.readers = Readers(self.owned, self.batches, nodes, self.stopping,
                               self._new_reader, self._reclaim, self.load_scripts,
                               self.sweeps.watch.failed)

    async def run(self) -> None:
        """Work until `stopping` is set, then finish the batch and give the shards back."""
        renew_every = self.settings.lease_ttl_ms / 3000
        next_claim = next_sweep = 0.0
        scripts_loaded = False
        backoff = relay_backoff()
        cluster = self.nodes.cluster
        renewing = asyncio.get_running_loop().create_task(self._renew_forever()) \
            if cluster else None
        # Due at once, or on a cluster never: that task renews the leases there.
        renew_due = math.inf if cluster else 0.0
        next_renew = renew_due
        log.info("relay %s started", self.id)
        while not self.stopping.is_set():
            try:
                if not scripts_loaded:
                    await self.load_scripts()
                    scripts_loaded = True
                now = time.monotonic()
                if now >= next_renew:
                    await self.renew_leases()
                    next_renew = now + renew_every
                if now >= next_claim:
                    await self.claim_shards()
                    next_claim = now + _CLAIM_EVERY_S
                if now >= next_sweep:
                    await self.sweeps.remove_dead_gateways(self.owned.values())
                    await self.sweeps.expire_detached(self.owned.values())
                    await self.sweeps.end_rooms(self.owned.values())
                    await self.sweeps.find_stranded(self.owned.values(), self.id)
                    next_sweep = now + _SWEEP_EVERY_S
                backoff.reset()
                await pause(self.stopping, max(0.0, min(next_claim, next_sweep, next_renew)
                                      - time.monotonic()))
            except RedisError as exc:
                delay = backoff.next()
                log.warning("redis error, retrying in %.1f s: %s", delay, exc)
                # A master may be failing over: a heartbeat key found missing soon after
                # is no proof that its gateway stopped (relay.gateway_watch).
                self.sweeps.watch.failed()
                await pause(self.stopping, delay)
                scripts_loaded = False
                next_claim = 0.0
                next_renew = renew_due
        if renewing is not None:
            renewing.cancel()
        await self.readers.finish()
        if self.webhooks is not None:
            await self.webhooks.close()
        try:
            await bounded(self.leases.leave(list(self.owned)), STOP_S)
        except RedisError as exc:
            log.warning("could not release shards (they lapse with their TTL): %s", exc)
        log.info("relay %s stopped", self.id)
        if self.readers.failure is not None:
            raise self.readers.failure

    async def load_scripts(self) -> None:
        """Into every master's script cache (a restarted Redis, or a promoted replica,
        starts with an empty one)."""
        await load_scripts([COMMIT, RENEW, RELEASE], self.nodes.masters())

    async def renew_leases(self) -> None:
        """Extend what we hold; forget what we lost (its commits would be fenced off)."""
        for shard in await self.leases.renew(list(self.owned)):
            log.warning("lost the lease of shard %d", shard)
            self._forget(shard)

    async def _renew_forever(self) -> None:
        """On a cluster, leases are renewed by a task of their own: a master failing over
        can make the other maintenance calls wait for seconds, longer than a lease."""
        while True:
            await asyncio.sleep(self.settings.lease_ttl_ms / 3000)
            try:
                await self.renew_leases()
            except RedisError as exc:
                log.warning("renewing leases failed: %s", exc)

    def _forget(self, number: int) -> None:
        self.owned.pop(number, None)
        self.readers.stop(number)
        if self.webhooks is not None:
            self.webhooks.stop(number)

    def _own(self, shard: Shard) -> None:
        self.owned[shard.number] = shard
        self.readers.start(shard.number)
        if self.webhooks is not None:
            self.webhooks.start(shard.number)

    async def claim_shards(self) -> None:
        """Take free shards up to our fair share, give back any surplus."""
        share = await self.leases.fair_share()
        surplus, wanted = rebalance(self.owned, share)
        if surplus:
            if self.webhooks is not None:
                await self.webhooks.release(surplus)
            for shard in surplus:
                self._forget(shard)
            await self.readers.between_reads()
            await self.leases.release(surplus)
            log.info("released shards %s (fair share %d)", surplus, share)
        for shard in await self.leases.acquire(wanted):
            self._own(await self.take_over(shard))
            log.debug("took shard %d", shard)

    async def take_over(self, number: int) -> Shard:
        """Read the shard back into new rooms, claiming what its previous holder left."""
        settings = self.settings
        book = RoomBook(settings.room_capacity, settings.star_room_capacity,
                        settings.resume_buffer_frames, int(settings.resume_grace_s * 1000),
                        webhooks=bool(settings.webhook_url_list))
        return await take_over(self.redis, self.id, number, book)

    async def _reclaim(self, number: int) -> None:
        """Read an owned shard back from Redis, in place (rule 2), unless it was given up
        meanwhile."""
        shard = await self.take_over(number)
        if number in self.owned:
            self.owned[number] = shard

    def _new_reader(self) -> ShardReader:
        return ShardReader(ReplicaWait(self.settings.redis_wait_replicas, "commits"),
                           Linger(self.settings.relay_linger_ms / 1000))
