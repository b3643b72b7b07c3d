"""The relay's hot path: read a batch of shard stream entries, apply them to the rooms,
commit each shard's effects in one script call (docs/architecture.md, rule 2, "The hot path")."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import cast

import msgspec
from redis.exceptions import ResponseError

from redis_io.nodes import RedisNodes
from redis_io.replica_wait import ReplicaWait
from redis_io.resp import ROUND_TRIP_S, Reply, RespConnection, entry_field, pack
from relay.checkpoint import applied_prefix, checkpoint_after
from relay.effects import Effect
from relay.metrics import RelayMetrics
from relay.store import COMMITTED, ENTRIES_MISSED, Committer, Shard
from shared import keys
from shared.events import AnyEvent, event_decoder
from shared.linger import Linger

log = logging.getLogger(__name__)

# An XREADGROUP waits at most this long, so leases are tended and SIGTERM seen in time.
BLOCK_MS = 200


class ShardReader:
    """A connection that reads shard streams and commits their batches, and its
    XREADGROUP command, packed again only when the shards it reads change."""

    __slots__ = ("link", "reading", "command", "wait", "linger")

    def __init__(self, wait: ReplicaWait, linger: Linger) -> None:
        self.wait = wait
        self.linger = linger
        self.link: RespConnection | None = None
        self.reading: tuple[tuple[str, bool], ...] = ()
        self.command = b""

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None


class Batches:
    """Reads, applies and commits batches of the relay's owned shards.

    A commit that finds entries a former holder read (ENTRIES_MISSED) has the shard read
    back (`reclaim`); one that finds the lease or the checkpoint moved has it dropped
    (`drop`): another relay moved on with it, and our rooms are stale."""

    def __init__(self, relay_id: str, batch_size: int, nodes: RedisNodes,
                 owned: dict[int, Shard], committer: Committer, metrics: RelayMetrics,
                 reclaim: Callable[[int], Awaitable[None]], drop: Callable[[int], None],
                 shards: int, recorded: Callable[[int], None] = lambda _: None) -> None:
        self.relay_id = relay_id
        self.batch_size = batch_size
        self.nodes = nodes
        self.owned = owned
        self.committer = committer
        self.metrics = metrics
        self.reclaim = reclaim
        self.drop = drop
        self.recorded = recorded  # a commit recorded webhooks: the shard's number
        self.by_stream: dict[bytes, int] = {
            keys.shard_stream(s).encode(): s for s in range(shards)
        }

    async def _connect(self, reader: ShardReader, shard: Shard) -> RespConnection:
        if reader.link is None or not reader.link.connected:
            reader.link = await RespConnection.open(self.nodes.node_of(shard.stream).url)
        return reader.link

    def _xreadgroup(self, reader: ShardReader, shards: list[Shard]) -> bytes:
        """XREADGROUP over `shards`: new entries, or after a takeover the shard's
        pending ones first. Packed again only when that changes."""
        reading = tuple((s.stream, s.reading_pending) for s in shards)
        if reading != reader.reading:
            reader.command = pack(b"XREADGROUP", b"GROUP", keys.GROUP, self.relay_id,
                                  b"COUNT", self.batch_size, b"BLOCK", BLOCK_MS,
                                  b"STREAMS", *(stream for stream, _ in reading),
                                  *(b"0" if pending else b">" for _, pending in reading))
            reader.reading = reading
        return reader.command

    async def process(self, reader: ShardReader, shards: list[Shard]) -> None:
        """One XREADGROUP over `shards` (every owned one on a standalone Redis), applied
        and committed per shard."""
        stranded = [shard.number for shard in shards if shard.stranded]
        if stranded:
            # Entries another relay read after it lost these shards: claimed and applied
            # now (rule 2), not at the shard's next commit, which a quiet room may not have.
            log.warning("shards %s: entries pending under another relay, reclaiming",
                        stranded)
            for number in stranded:
                await self.reclaim(number)
            return
        link = await self._connect(reader, shards[0])
        (response,) = _checked(await link.request(self._xreadgroup(reader, shards), 1,
                                                  BLOCK_MS / 1000 + ROUND_TRIP_S))
        if not response:
            reader.linger.after_read(0, False, time.monotonic())
            return
        assert isinstance(response, list)
        commands: list[bytes] = []
        queued: list[tuple[Shard, str, dict[type[AnyEvent], int], int]] = []
        # COUNT is per stream: a full one means more are waiting there.
        full = False
        for stream, entries in response:
            full = full or len(entries) >= self.batch_size
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
        results = _checked(await link.request(b"".join(commands), len(commands),
                                              ROUND_TRIP_S))
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
                if shard.book.hooks.recorded:
                    shard.book.hooks.recorded = 0
                    self.recorded(shard.number)
                continue
            if result == ENTRIES_MISSED:
                log.warning("shard %d: entries read by a former holder, reclaiming",
                            shard.number)
                await self.reclaim(shard.number)
            else:
                log.warning("shard %d fenced off (%s), dropping it", shard.number, result)
                self.drop(shard.number)
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
        ids = cast("list[bytes]", [entry[0] for entry in entries])  # bulk strings
        first_new = ""
        book = shard.book
        # Those the checkpoint covers were applied before a crash: acknowledged only.
        skip = applied_prefix(ids, shard.checkpoint)
        for raw_id, fields in entries[skip:] if skip else entries:
            if not isinstance(fields, list):
                continue  # trimmed away: ack only
            assert isinstance(raw_id, bytes)
            entry_id = raw_id.decode()
            first_new = first_new or entry_id
            try:
                event = event_decoder.decode(entry_field(fields, keys.EVENT_FIELD))
            except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
                log.error("skipping undecodable event %s on %s: %s", entry_id, shard.stream, exc)
                continue
            book.apply(event, entry_id, effects)
            kind = type(event)
            applied[kind] = applied.get(kind, 0) + 1
        new_checkpoint = checkpoint_after(ids[-1].decode(), shard.checkpoint)
        return (self.committer.command(shard, first_new, new_checkpoint, ids, effects),
                new_checkpoint, applied)


def _checked(replies: list[Reply]) -> list[Reply]:
    """Replies, unless one is an error (NOSCRIPT after a Redis restart...): raised then,
    for the worker to start over from what Redis holds."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
    return replies
