"""The relay process's loops: tend leases, claim shards, sweep (the maintenance loop), and
read the shards it holds (through relay.batches)."""

from __future__ import annotations

import asyncio
import logging
import math
import time

from redis.exceptions import RedisError

from redis_io.clients import CALL_S, STOP_S, RedisClient, bounded
from redis_io.nodes import RedisNodes, cluster_error
from redis_io.replica_wait import ReplicaWait
from relay.batches import Batches, ShardReader
from relay.gateway_watch import GatewayWatch
from relay.leases import RELEASE, RENEW, Leases, rebalance
from relay.metrics import RelayMetrics
from relay.rooms import RoomBook
from relay.scripts import load_scripts
from relay.store import COMMIT, Committer, Shard, take_over
from relay.sweeps import Sweeps
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
# Reconnecting to Redis: first retry after the minimum, doubling up to the maximum. A
# refused connection costs next to nothing, and a promoted replica is used within a
# second of the election (service back within 10 s of a master's kill).
BACKOFF_MIN_S, BACKOFF_MAX_S = 0.1, 1.0


class Relay:
    """One relay process: holds its fair share of shards and applies their events."""

    def __init__(self, settings: Settings, redis: RedisClient, topology: RedisNodes,
                 relay_id: str | None = None) -> None:
        self.settings = settings
        self.redis = redis
        self.topology = topology
        self.id = relay_id or process_id("relay")
        self.leases = Leases(redis, self.id, settings.shards, settings.lease_ttl_ms)
        # A resumable peer's kept frames outlive its last one by this much at most: any
        # frame it may lack when its socket is found dead (idle timeout + a ping) plus
        # its grace period, and a margin.
        kept_ttl_ms = int(1000 * (settings.resume_grace_s + settings.idle_timeout_s
                                  + settings.ping_interval_s) + 60_000)
        committer = Committer(self.id, settings.resume_buffer_frames, kept_ttl_ms)
        self.owned: dict[int, Shard] = {}
        self.metrics = RelayMetrics(lambda: [shard.book for shard in self.owned.values()])
        self.stopping = asyncio.Event()
        # A live gateway sets its key again within one beat (ttl/3) and one failing call
        # (CALL_S) of its master answering again; a sweep may come a second later.
        self.sweeps = Sweeps(redis, settings.stream_maxlen, GatewayWatch(
            settle_s=settings.gateway_ttl_ms / 3000 + CALL_S + _SWEEP_EVERY_S,
            max_gap_s=_WATCH_GAP_S))
        self.batches = Batches(self.id, settings.batch_size, topology, self.owned, committer,
                               self.metrics, self._reclaim, self._forget, settings.shards)
        # The hot path's own connection (redis_io.resp): one XREADGROUP over every owned
        # shard, and the commits. On a cluster, where one command cannot span slots,
        # each shard has a reader task and connection of its own instead (_read_shard).
        self._reader = self._new_reader()
        self._shard_readers: dict[int, asyncio.Task[None]] = {}

    async def run(self) -> None:
        """Work until `stopping` is set, then finish the batch and give the shards back."""
        renew_every = self.settings.lease_ttl_ms / 3000
        next_claim = next_sweep = 0.0
        scripts_loaded = False
        backoff = BACKOFF_MIN_S
        cluster = self.topology.cluster
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
                    next_sweep = now + _SWEEP_EVERY_S
                if cluster or not self.owned:
                    # (On a cluster the shards are read by tasks of their own.)
                    await self._pause(max(0.0, min(next_claim, next_sweep, next_renew)
                                          - time.monotonic()))
                    continue
                await self.batches.process(self._reader, list(self.owned.values()))
                backoff = BACKOFF_MIN_S
            except RedisError as exc:
                log.warning("redis error, retrying in %.1f s: %s", backoff, exc)
                # A master may be failing over: a heartbeat key found missing soon after
                # is no proof that its gateway stopped (relay.gateway_watch).
                self.sweeps.watch.failed()
                await self._pause(backoff)
                backoff = next_backoff(backoff)
                scripts_loaded = False
                next_claim = 0.0
                next_renew = renew_due
                if not cluster:
                    # Nothing half done survives a failure (rule 2): start over from Redis.
                    self._reader.close()
                    await self._reload_owned()
        self._reader.close()
        if renewing is not None:
            renewing.cancel()
        for number in list(self._shard_readers):
            self._stop_reading(number)
        try:
            await bounded(self.leases.leave(list(self.owned)), STOP_S)
        except RedisError as exc:
            log.warning("could not release shards (they lapse with their TTL): %s", exc)
        log.info("relay %s stopped", self.id)

    async def load_scripts(self) -> None:
        """Into every master's script cache (a restarted Redis, or a promoted replica,
        starts with an empty one)."""
        await load_scripts([COMMIT, RENEW, RELEASE], self.topology.masters())

    async def _reload_owned(self) -> None:
        """After a failure mid-batch, trust only Redis: read every owned shard back."""
        try:
            for number in list(self.owned):
                await self._reclaim(number)
        except RedisError as exc:
            log.warning("cannot reload shards yet: %s", exc)
            # Our leases lapse; whoever takes the shards next reads them back from Redis.
            for number in list(self.owned):
                self._forget(number)

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            pass

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
        self._stop_reading(number)

    def _stop_reading(self, number: int) -> None:
        task = self._shard_readers.pop(number, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _own(self, shard: Shard) -> None:
        self.owned[shard.number] = shard
        if self.topology.cluster and shard.number not in self._shard_readers:
            self._shard_readers[shard.number] = asyncio.get_running_loop().create_task(
                self._read_shard(shard.number))

    async def claim_shards(self) -> None:
        """Take free shards up to our fair share, give back any surplus."""
        share = await self.leases.fair_share()
        surplus, wanted = rebalance(self.owned, share)
        if surplus:
            for shard in surplus:
                self._forget(shard)
            await self.leases.release(surplus)
            log.info("released shards %s (fair share %d)", surplus, share)
        for shard in await self.leases.acquire(wanted):
            self._own(await self.take_over(shard))
            log.debug("took shard %d", shard)

    async def take_over(self, number: int) -> Shard:
        """Read the shard back into new rooms, claiming what its previous holder left."""
        settings = self.settings
        book = RoomBook(settings.room_capacity, settings.star_room_capacity,
                        settings.resume_buffer_frames, int(settings.resume_grace_s * 1000))
        return await take_over(self.redis, self.id, number, book)

    async def _reclaim(self, number: int) -> None:
        """Read an owned shard back from Redis, in place (rule 2)."""
        self.owned[number] = await self.take_over(number)

    def _new_reader(self) -> ShardReader:
        return ShardReader(ReplicaWait(self.settings.redis_wait_replicas, "commits"),
                           Linger(self.settings.relay_linger_ms / 1000))

    async def _read_shard(self, number: int) -> None:
        """A cluster's shard: read and commit on a connection to the master of its slot,
        until the shard is given up. A failure (the slot moved, the master failed over)
        reads the shard back from Redis, as a takeover does, and carries on there."""
        reader = self._new_reader()
        backoff = BACKOFF_MIN_S
        try:
            while not self.stopping.is_set() and number in self.owned:
                try:
                    await self.batches.process(reader, [self.owned[number]])
                    backoff = BACKOFF_MIN_S
                except RedisError as exc:
                    reader.close()
                    delay = read_back_delay(cluster_error(exc), backoff)
                    log.warning("shard %d: %s; reading it back in %.2f s", number, exc, delay)
                    if delay:
                        await self._pause(delay)
                        backoff = next_backoff(backoff)
                    await self._recover(number, exc)
        finally:
            reader.close()
            if self._shard_readers.get(number) is asyncio.current_task():
                del self._shard_readers[number]

    async def _recover(self, number: int, error: RedisError) -> None:
        """Read a cluster's shard back after `error` (rule 2: nothing half done
        survives); it stays owned, to be fenced off by its lease if another took it."""
        try:
            await self.topology.refresh()
            if "NOSCRIPT" in str(error):
                await self.load_scripts()
            if number in self.owned:
                await self._reclaim(number)
        except RedisError as exc:
            log.warning("shard %d cannot be read back yet: %s", number, exc)


def next_backoff(backoff: float) -> float:
    """The wait before the next retry after one more failure: doubled, up to the most."""
    return min(backoff * 2, BACKOFF_MAX_S)


def read_back_delay(error: str | None, backoff: float) -> float:
    """How long a cluster's shard reader waits before reading its shard back after a
    Redis error (`cluster_error`'s kind): a redirect names where the slot is now, so at
    once; anything else (a master failing over, a lost connection) after `backoff`."""
    return 0.0 if error in ("MOVED", "ASK") else backoff
