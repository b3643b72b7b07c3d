"""The relay's loop: tend leases, read shard streams in batches, apply, commit."""

from __future__ import annotations

import asyncio
import logging
import math
import time

import msgspec
from redis.exceptions import RedisError, ResponseError

from redis_io.clients import CALL_S, LOAD_S, PROBE_S, STOP_S, RedisClient, bounded, get_many
from redis_io.nodes import RedisNodes, cluster_error
from redis_io.replica_wait import ReplicaWait
from redis_io.resp import Reply, RespConnection, entry_field, pack
from relay.effects import Effect
from relay.gateway_watch import GatewayWatch
from relay.leases import RELEASE, RENEW, Leases
from relay.metrics import RelayMetrics
from relay.rooms import RoomBook
from relay.scripts import load_scripts
from relay.store import COMMIT, COMMITTED, ENTRIES_MISSED, Committer, Shard, load_shard
from shared import keys
from shared.events import AnyEvent, Detach, Leave, event_decoder, event_encoder
from shared.linger import Linger
from shared.process_id import process_id
from shared.settings import Settings

log = logging.getLogger(__name__)

# An XREADGROUP waits at most this long, so leases are tended and SIGTERM seen in time.
_BLOCK_MS = 200
# Free shards (a dead relay's, once its lease lapsed) are looked for this often, so a
# takeover follows the lease TTL closely; dead gateways are looked for every second.
_CLAIM_EVERY_S = 0.25
_SWEEP_EVERY_S = 1.0
# Sweeps further apart than this (a relay's loop held up) may have missed a failover.
_WATCH_GAP_S = 2.5 * _SWEEP_EVERY_S
# Reconnecting to Redis: first retry after the minimum, doubling up to the maximum. A
# refused connection costs next to nothing, and a promoted replica is used within a
# second of the election (the issue: service back within 10 s of a master's kill).
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.1, 1.0
# A read or a batch of commits whose replies take longer gives the connection up.
_ROUND_TRIP_S = 10.0


class _Reader:
    """A connection that reads shard streams and commits their batches, and its
    XREADGROUP command, packed again only when the shards it reads change."""

    __slots__ = ("conn", "reading", "command", "wait", "linger")

    def __init__(self, wait: ReplicaWait, linger: Linger) -> None:
        self.wait = wait
        self.linger = linger
        self.conn: RespConnection | None = None
        self.reading: tuple[tuple[str, bool], ...] = ()
        self.command = b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


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
        self.committer = Committer(self.id, settings.resume_buffer_frames, kept_ttl_ms)
        self.owned: dict[int, Shard] = {}
        self.metrics = RelayMetrics(lambda: [shard.book for shard in self.owned.values()])
        self.by_stream: dict[bytes, int] = {
            keys.shard_stream(s).encode(): s for s in range(settings.shards)
        }
        self.stopping = asyncio.Event()
        # A live gateway sets its key again within one beat (ttl/3) and one failing call
        # (CALL_S) of its master answering again; a sweep may come a second later.
        self.gateway_watch = GatewayWatch(
            settle_s=settings.gateway_ttl_ms / 3000 + CALL_S + _SWEEP_EVERY_S,
            max_gap_s=_WATCH_GAP_S)
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
        backoff = _BACKOFF_MIN_S
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
                    await self.remove_dead_gateways()
                    await self.expire_detached()
                    next_sweep = now + _SWEEP_EVERY_S
                if cluster or not self.owned:
                    # (On a cluster the shards are read by tasks of their own.)
                    await self._pause(max(0.0, min(next_claim, next_sweep, next_renew)
                                          - time.monotonic()))
                    continue
                await self.process_batch(self._reader, list(self.owned.values()))
                backoff = _BACKOFF_MIN_S
            except RedisError as exc:
                log.warning("redis error, retrying in %.1f s: %s", backoff, exc)
                # A master may be failing over: a heartbeat key found missing soon after
                # is no proof that its gateway stopped (relay.gateway_watch).
                self.gateway_watch.failed()
                await self._pause(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
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
                self.owned[number] = await self.take_over(number)
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
        surplus = sorted(self.owned)[share:]
        if surplus:
            for shard in surplus:
                self._forget(shard)
            await self.leases.release(surplus)
            log.info("released shards %s (fair share %d)", surplus, share)
        for shard in await self.leases.acquire(share - len(self.owned)):
            self._own(await self.take_over(shard))
            log.debug("took shard %d", shard)

    async def remove_dead_gateways(self) -> None:
        """Rule 4: peers of a gateway that stopped heartbeating leave their rooms.

        The leaves go through the shard streams like any other event, so they are applied
        in order and exactly once; sending one twice does no harm (leaving is idempotent).
        A gateway is dead when a relay declared it so (its key holds GATEWAY_DEAD), or when
        its key is missing while `GatewayWatch` says that cannot be a failover's doing:
        then this relay declares it first, so that the gateway, should it be alive after
        all, knows on its next beat that its sockets must rejoin.

        What each gateway's death means is taken before its key is read: a socket that
        joins or resumes through it afterwards may do so after the gateway's beat that
        reads the verdict, and would not be closed, so it must not be removed.
        """
        departures: dict[str, list[tuple[str, Leave | Detach]]] = {}
        for shard in self.owned.values():
            for gateway, events in shard.book.departures().items():
                departures.setdefault(gateway, []).extend((shard.stream, e) for e in events)
        watch = self.gateway_watch
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
            if value == keys.GATEWAY_DEAD or value is None and watch.may_declare(
                    gateway, now) and await self._declare_dead(gateway):
                dead.append(gateway)
        if not dead:
            return
        pipe = self.redis.pipeline(transaction=False)
        for gateway in dead:
            for stream, leave in departures[gateway]:
                pipe.xadd(stream, {b"e": event_encoder.encode(leave)},
                          maxlen=self.settings.stream_maxlen, approximate=True)
        log.info("gateways gone: %s; removing or detaching %d peers", dead, len(pipe))
        await bounded(pipe.execute(), CALL_S)

    async def _declare_dead(self, gateway: str) -> bool:
        """Write the verdict where the gateway's key is still missing (SET NX GET, one
        command): True if this relay wrote it or another relay's verdict is there, False
        if the gateway beat meanwhile."""
        previous = await bounded(self.redis.set(
            keys.gateway_alive(gateway), keys.GATEWAY_DEAD, nx=True, get=True,
            px=keys.GATEWAY_DEAD_KEPT_MS), CALL_S)
        return previous is None or previous == keys.GATEWAY_DEAD

    async def expire_detached(self) -> None:
        """Detached peers whose grace period is over leave (protocol.md, "Resume").

        As a leave, the expiry goes through the shard stream; one that a resume overtook
        changes nothing (it names the deadline it was sent for)."""
        now_ms = int(time.time() * 1000)
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.owned.values():
            for expire in shard.book.expired(now_ms):
                pipe.xadd(shard.stream, {b"e": event_encoder.encode(expire)},
                          maxlen=self.settings.stream_maxlen, approximate=True)
        if len(pipe):
            log.info("grace over for %d detached peers", len(pipe))
            await bounded(pipe.execute(), CALL_S)

    async def readiness_problems(self) -> list[str]:
        """Why the service cannot serve rooms now (for /readyz); empty when it can."""
        try:
            holders = await get_many(self.redis, keys.all_leases(self.settings.shards),
                                     PROBE_S)
        except RedisError as exc:
            return [f"redis unreachable: {exc}"]
        unowned = sum(holder is None for holder in holders)
        return [f"{unowned} of {self.settings.shards} shards have no relay"] if unowned else []

    async def take_over(self, number: int) -> Shard:
        """Read the shard back and claim what its previous holder left unacknowledged."""
        stream = keys.shard_stream(number)
        try:
            await bounded(self.redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True),
                          CALL_S)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        start = "0-0"
        while True:
            reply = await bounded(self.redis.xautoclaim(
                stream, keys.GROUP, self.id, min_idle_time=0, start_id=start, count=1000,
            ), LOAD_S)
            start = reply[0]
            if start in (b"0-0", "0-0"):
                break
        settings = self.settings
        book = RoomBook(settings.room_capacity, settings.star_room_capacity,
                        settings.resume_buffer_frames, int(settings.resume_grace_s * 1000))
        return await load_shard(self.redis, number, book)

    def _new_reader(self) -> _Reader:
        return _Reader(ReplicaWait(self.settings.redis_wait_replicas, "commits"),
                       Linger(self.settings.relay_linger_ms / 1000))

    async def _read_shard(self, number: int) -> None:
        """A cluster's shard: read and commit on a connection to the master of its slot,
        until the shard is given up. A failure (the slot moved, the master failed over)
        reads the shard back from Redis, as a takeover does, and carries on there."""
        reader = self._new_reader()
        backoff = _BACKOFF_MIN_S
        try:
            while not self.stopping.is_set() and number in self.owned:
                try:
                    await self.process_batch(reader, [self.owned[number]])
                    backoff = _BACKOFF_MIN_S
                except RedisError as exc:
                    reader.close()
                    kind = cluster_error(exc)
                    log.warning("shard %d: %s; reading it back in %.2f s", number, exc,
                                0 if kind in ("MOVED", "ASK") else backoff)
                    if kind not in ("MOVED", "ASK"):
                        await self._pause(backoff)
                        backoff = min(backoff * 2, _BACKOFF_MAX_S)
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
                self.owned[number] = await self.take_over(number)
        except RedisError as exc:
            log.warning("shard %d cannot be read back yet: %s", number, exc)

    async def _connect(self, reader: _Reader, shard: Shard) -> RespConnection:
        if reader.conn is None or not reader.conn.connected:
            reader.conn = await RespConnection.open(self.topology.node_of(shard.stream).url)
        return reader.conn

    def _xreadgroup(self, reader: _Reader, shards: list[Shard]) -> bytes:
        """XREADGROUP over `shards`: new entries, or after a takeover the shard's
        pending ones first. Packed again only when that changes."""
        reading = tuple((s.stream, s.reading_pending) for s in shards)
        if reading != reader.reading:
            reader.command = pack(b"XREADGROUP", b"GROUP", keys.GROUP, self.id,
                                  b"COUNT", self.settings.batch_size, b"BLOCK", _BLOCK_MS,
                                  b"STREAMS", *(stream for stream, _ in reading),
                                  *(b"0" if pending else b">" for _, pending in reading))
            reader.reading = reading
        return reader.command

    async def process_batch(self, reader: _Reader, shards: list[Shard]) -> None:
        """One XREADGROUP over `shards` (every owned one on a standalone Redis), applied
        and committed per shard."""
        conn = await self._connect(reader, shards[0])
        (response,) = _checked(await conn.request(self._xreadgroup(reader, shards), 1,
                                                  _BLOCK_MS / 1000 + _ROUND_TRIP_S))
        if not response:
            reader.linger.after_read(0, False, time.monotonic())
            return
        assert isinstance(response, list)
        commands: list[bytes] = []
        queued: list[tuple[Shard, str, dict[type[AnyEvent], int], int]] = []
        # COUNT is per stream: a full one means more are waiting there.
        full = False
        for stream, entries in response:
            full = full or len(entries) >= self.settings.batch_size
            shard = self.owned.get(self.by_stream[stream])
            if shard is None:
                continue
            if not entries:
                shard.reading_pending = False
                continue
            command, new_checkpoint, applied = self._apply(shard, entries)
            commands.append(command)
            queued.append((shard, new_checkpoint, applied, len(entries)))
        if not queued:
            return
        wait = reader.wait.command()
        if wait is not None:
            commands.append(wait)
        started = time.perf_counter()
        results = _checked(await conn.request(b"".join(commands), len(commands),
                                              _ROUND_TRIP_S))
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        if wait is not None:
            before = reader.wait.shortfalls
            reader.wait.answered(results.pop(), len(queued))
            self.metrics.wait_shortfalls += reader.wait.shortfalls - before
        committed = 0
        for (shard, new_checkpoint, applied, events), result in zip(queued, results,
                                                                      strict=True):
            if result == COMMITTED:
                shard.checkpoint = new_checkpoint
                committed += events
                self.metrics.committed(applied, shard.book.take_stats())
                continue
            if result == ENTRIES_MISSED:
                log.warning("shard %d: entries read by a former holder, reclaiming",
                            shard.number)
                self.owned[shard.number] = await self.take_over(shard.number)
            else:
                # Another relay moved on with this shard: our in-memory rooms are stale.
                log.warning("shard %d fenced off (%s), dropping it", shard.number, result)
                self._forget(shard.number)
        if committed:
            self.metrics.batch_events.observe(committed)
        pause = reader.linger.after_read(sum(len(entries) for _, entries in response),
                                         full, time.monotonic())
        if pause:
            await asyncio.sleep(pause)

    def _apply(self, shard: Shard, entries: list[list[Reply]]
               ) -> tuple[bytes, str, dict[type[AnyEvent], int]]:
        """Apply the shard's entries (XREADGROUP's [id, [field, value...] or nil]) to its
        rooms; return their commit, the new checkpoint, and the events by kind."""
        effects: list[Effect] = []
        applied: dict[type[AnyEvent], int] = {}
        ids: list[bytes] = []
        first_new = ""
        book = shard.book
        # Entries come in stream order: once one is past the checkpoint, all that follow are.
        maybe_applied = bool(shard.checkpoint)
        for raw_id, fields in entries:
            assert isinstance(raw_id, bytes)
            ids.append(raw_id)
            entry_id = raw_id.decode()
            if maybe_applied:
                if shard.is_applied(entry_id):
                    continue  # applied before a crash: ack only
                maybe_applied = False
            if not isinstance(fields, list):
                continue  # trimmed away: ack only
            first_new = first_new or entry_id
            try:
                event = event_decoder.decode(entry_field(fields, b"e"))
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
                log.error("skipping undecodable event %s on %s: %s", entry_id, shard.stream, exc)
                continue
            book.apply(event, entry_id, effects)
            kind = type(event)
            applied[kind] = applied.get(kind, 0) + 1
        last = ids[-1].decode()
        new_checkpoint = last if not shard.is_applied(last) else shard.checkpoint
        return (self.committer.command(shard, first_new, new_checkpoint, ids, effects),
                new_checkpoint, applied)

    async def stream_lag(self) -> int:
        """Events in this relay's shard streams that are not applied yet: not read by any
        relay (XINFO GROUPS `lag`) or read and not acknowledged (`pending`)."""
        if not self.owned:
            return 0
        pipe = self.redis.pipeline(transaction=False)
        for shard in self.owned.values():
            pipe.xinfo_groups(shard.stream)
        lag = 0
        for groups in await bounded(pipe.execute(raise_on_error=False), PROBE_S):
            if isinstance(groups, Exception):
                continue  # a stream that went meanwhile
            for group in groups:
                if group.get("name") in (keys.GROUP, keys.GROUP.encode()):
                    lag += int(group.get("lag") or 0) + int(group.get("pending") or 0)
        return lag


def _checked(replies: list[Reply]) -> list[Reply]:
    """Replies, unless one is an error (NOSCRIPT after a Redis restart...): raised then,
    for the worker to start over from what Redis holds."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
