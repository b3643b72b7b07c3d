"""The tasks that read the relay's shards: the loop around the hot path (relay.batches).

Both kinds of Redis are read the same way, and differ only in what a reader reads and
where it connects (`reader_of`): on a single Redis one reader reads every owned shard in
one XREADGROUP; on a cluster, where one command cannot span slots, each shard has a
reader of its own, connected to its slot's master. Each reader is a task with its own
connection for its XREADGROUP and its commits (redis_io.resp).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from redis_io.nodes import RedisNodes, cluster_error
from relay.batches import BLOCK_MS, Batches, ShardReader
from relay.store import Shard
from shared.backoff import Backoff

log = logging.getLogger(__name__)

# The one reader of a single Redis's shards (a cluster's are keyed by shard number).
ALL_SHARDS = -1
# On SIGTERM the readers finish their batch (an XREADGROUP blocks for BLOCK_MS) within
# this long, or are cancelled: what they read and did not commit is read again by the
# next holder (docs/architecture.md, rule 2).
_FINISH_BATCH_S = BLOCK_MS / 1000 + 0.8


class Readers:
    """One task per reader of the owned shards, started with the first shard it reads
    and ended with the last (or at once, for a cluster's shard given up)."""

    def __init__(self, owned: dict[int, Shard], batches: Batches, nodes: RedisNodes,
                 stopping: asyncio.Event, connection: Callable[[], ShardReader],
                 read_back: Callable[[int], Awaitable[None]],
                 load_scripts: Callable[[], Awaitable[None]],
                 redis_failed: Callable[[], None]) -> None:
        self.owned = owned
        self.batches = batches
        self.nodes = nodes
        self.stopping = stopping
        self.connection = connection  # a new, unconnected one
        self.read_back = read_back  # one owned shard, from Redis, in place
        self.load_scripts = load_scripts
        self.redis_failed = redis_failed
        # Set when a reader failed on something other than Redis (a bug): the relay then
        # stops, so that its shards go to other relays rather than stay unread.
        self.failure: BaseException | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # Set (and replaced) each time a reader's XREADGROUP and its commits are done.
        self._round_done = asyncio.Event()

    def start(self, number: int) -> None:
        """The owned shard `number` is read from now on."""
        reader = reader_of(number, self.nodes.cluster)
        if reader not in self._tasks:
            task = asyncio.get_running_loop().create_task(self._read(reader))
            task.add_done_callback(self._ended)
            self._tasks[reader] = task

    def stop(self, number: int) -> None:
        """The shard `number` was given up: a reader of it alone stops at once (one of
        every shard reads only the owned ones, and stops with the last)."""
        task = self._tasks.pop(number, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def between_reads(self) -> None:
        """Wait (within a read's bound) until a read that may be in flight now is done.

        A shard given up (`stop`) may still be in an XREADGROUP sent before: on a single
        Redis the one reader reads every owned shard at once. Entries that read hands over
        stay pending under this relay, unapplied. Its lease must be released only after
        that read returned, so that the next holder's takeover, which claims whatever
        former holders left pending, sees them; released before, the next holder would
        find them only at its next commit of the shard, and a quiet room would wait."""
        if self._tasks:
            try:
                await asyncio.wait_for(self._round_done.wait(), _FINISH_BATCH_S)
            except TimeoutError:
                log.warning("no read ended within %.1f s before releasing shards",
                            _FINISH_BATCH_S)

    def _read_ended(self) -> None:
        done, self._round_done = self._round_done, asyncio.Event()
        done.set()

    async def finish(self) -> None:
        """Let the readers finish their batch (they stop once `stopping` is set)."""
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks.values()), timeout=_FINISH_BATCH_S)
            for task in late:
                task.cancel()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (failure := task.exception()) is not None:
            log.error("a shard reader failed: stopping the relay", exc_info=failure)
            self.failure = failure
            self.stopping.set()

    def _shards(self, reader: int) -> list[Shard]:
        """The owned shards that `reader` reads."""
        if reader == ALL_SHARDS:
            return list(self.owned.values())
        shard = self.owned.get(reader)
        return [shard] if shard is not None else []

    async def _read(self, reader: int) -> None:
        """Read and commit the shards of `reader` until it has none left or the relay
        stops. A failure (the master restarted or failed over, the slot moved) reads its
        shards back from Redis, as a takeover does, and it carries on there."""
        connection = self.connection()
        backoff = relay_backoff()
        try:
            while not self.stopping.is_set() and (shards := self._shards(reader)):
                try:
                    await self.batches.process(connection, shards)
                    backoff.reset()
                    self._read_ended()
                except RedisError as exc:
                    self._read_ended()
                    connection.close()
                    redirected = is_redirect(cluster_error(exc))
                    delay = 0.0 if redirected else backoff.next()
                    log.warning("%s: %s; reading back in %.2f s", _named(shards), exc, delay)
                    if not redirected:
                        # A master may be failing over: a heartbeat key found missing soon
                        # after is no proof that its gateway stopped (relay.gateway_watch).
                        self.redis_failed()
                        await pause(self.stopping, delay)
                    await self._recover(reader, exc)
        finally:
            connection.close()
            if self._tasks.get(reader) is asyncio.current_task():
                del self._tasks[reader]

    async def _recover(self, reader: int, error: RedisError) -> None:
        """Read the shards of `reader` back after `error` (rule 2: nothing half done
        survives); they stay owned, to be fenced off by their lease if another took them."""
        try:
            await self.nodes.refresh()
            if "NOSCRIPT" in str(error):
                await self.load_scripts()
            for shard in self._shards(reader):
                await self.read_back(shard.number)
        except RedisError as exc:
            log.warning("%s cannot be read back yet: %s", _named(self._shards(reader)), exc)


def reader_of(number: int, cluster: bool) -> int:
    """Which reader reads a shard: on a single Redis the one of all (ALL_SHARDS), in one
    XREADGROUP over every owned stream; on a cluster, where one command cannot span
    slots, the shard's own, on a connection to its slot's master."""
    return number if cluster else ALL_SHARDS


def is_redirect(error: str | None) -> bool:
    """Whether a Redis error (`cluster_error`'s kind) names where the slot is now: then a
    reader reads its shards back from there at once. After anything else (a master
    failing over or restarting, a lost connection) it waits first, `relay_backoff`."""
    return error in ("MOVED", "ASK")


def relay_backoff() -> Backoff:
    """The relay's retries: a refused connection costs next to nothing, and a promoted
    replica is used within a second of the election (service back within 10 s of a
    master's kill)."""
    return Backoff(first=0.1, most=1.0)


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep, unless `stopping` is set meanwhile. (Not asyncio.wait_for: on Python 3.11 it
    swallows a cancel that comes in the iteration the event is set, and a task stopped so
    would go on.)"""
    try:
        async with asyncio.timeout(seconds):
            await stopping.wait()
    except TimeoutError:
        pass


def _named(shards: list[Shard]) -> str:
    return "shards " + ",".join(str(shard.number) for shard in shards)
