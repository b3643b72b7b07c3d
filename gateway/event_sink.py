"""XADDs events to shard streams, pipelining whatever sockets sent meanwhile.

Every relayed message passes here, so the commands are written as RESP by hand, one
buffer per round trip, on connections of the sink's own (redis_io.resp): redis-py's
pipeline costs tens of microseconds per command in packing and per-reply timeouts.

On a Redis Cluster there is one writer per master, each with its own round trips, so a
master failing over stalls only the streams it serves. A redirect (MOVED, ASK) hands the
event to the right writer, a cluster in flux (TRYAGAIN, CLUSTERDOWN, a lost master) is
waited out for up to `FAILOVER_WAIT_S`; and a stream's events stay with the writer that
has some of them outstanding, so that a socket's events reach Redis in the order sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from redis_io.nodes import Node, RedisNodes, cluster_error, redirect_node
from redis_io.replica_wait import ReplicaWait
from redis_io.resp import (
    ROUND_TRIP_S,
    Reply,
    RespConnection,
    entry_field,
    pack,
    pack_argument,
    pack_start,
)
from shared import keys
from shared.linger import Linger
from shared.stream_ids import stream_order

log = logging.getLogger(__name__)

OnError = Callable[[RedisError], None]

# Events waiting for their XADD, beyond which new ones are refused at once.
MAX_PENDING = 50_000
# Bytes waiting for one master's XADDs beyond which the sink is busy for the sockets
# writing there: the gateway stops reading from them until the next round trip is done.
BUSY_BYTES = 1024 * 1024
# How long an event waits for a cluster to settle (a replica promoted: node timeout plus
# an election) before it fails; the client is then told `service unavailable`.
FAILOVER_WAIT_S = 8.0
_RETRY_MIN_S, _RETRY_MAX_S = 0.02, 0.5
_ASKING = pack(b"ASKING")
# A round trip that carried this many events is not followed by a wait: the load batches
# them well enough, and waiting would only add latency.
_FULL_BATCH = 64
_CHECK_PAGE = 1000  # entries per XRANGE when checking what a broken round trip wrote


class _Pending:
    __slots__ = ("stream", "payload", "on_error", "on_done", "deadline", "asking",
                 "written_after")

    def __init__(self, stream: str, payload: bytes, on_error: OnError,
                 on_done: Callable[[], None] | None) -> None:
        self.stream = stream
        self.payload = payload
        self.on_error = on_error
        self.on_done = on_done
        self.deadline = 0.0  # set at the first failure that is worth waiting out
        self.asking = False  # send ASKING first (an ASK redirect during a slot migration)
        # Set when a round trip carrying the event broke after it was sent: Redis may have
        # written it, after this entry id of its stream. Checked before it is sent again.
        self.written_after: bytes | None = None


class EventSink:
    """Writers per Redis master; `submit` is synchronous (a socket's frames are handled
    as they are read, in order); an event that does not reach Redis is reported to its
    `on_error`."""

    def __init__(self, nodes: RedisNodes, maxlen: int, wait_replicas: int = 0,
                 linger_s: float = 0.0) -> None:
        self.nodes = nodes
        self.maxlen = maxlen
        self.wait_replicas = wait_replicas
        self.linger_s = linger_s  # see shared/linger.py
        self._prefixes: dict[str, bytes] = {}
        self._writers: dict[Node, _Writer] = {}
        # Stream -> the writer holding some of its events (cluster only).
        self._outstanding: dict[str, _Holding] = {}
        # Stream -> the id of the last entry Redis said it wrote there (cluster only).
        self.last_ids: dict[str, bytes] = {}
        self.drained: Callable[[], None] = lambda: None  # after each round trip
        self.connections = 0  # made so far (metrics: more than one is a reconnect)
        self._closed = asyncio.Event()
        # A standalone Redis: its one writer, without routing per event.
        self._only = None if nodes.cluster else self._writer(nodes.node_of(""))

    def submit(self, stream: str, payload: bytes, on_error: OnError,
               on_done: Callable[[], None] | None = None) -> bool:
        """Queue an XADD; True when the writer it went to is busy (backpressure)."""
        pending = _Pending(stream, payload, on_error, on_done)
        if self._only is not None:
            return self._only.add(pending)
        held = self._outstanding.get(stream)
        if held is None:
            held = self._outstanding[stream] = _Holding(
                self._writer(self.nodes.node_of(stream)))
        held.count += 1
        return held.writer.add(pending)

    async def send(self, stream: str, payload: bytes) -> None:
        """Submit and wait until the event is in Redis; raises RedisError if it is not."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(stream, payload, done.set_exception, lambda: done.set_result(None))
        await done

    async def run(self) -> None:
        """The writers run as tasks of their own; this waits until `close`."""
        await self._closed.wait()

    def xadd(self, stream: str, payload: bytes) -> bytes:
        """`XADD stream MAXLEN ~ maxlen * e payload` in RESP. MAXLEN ~ bounds a stream
        whose relay is gone (docs/architecture.md, rule 6)."""
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = self._prefixes[stream] = pack_start(
                8, b"XADD", stream, b"MAXLEN", b"~", self.maxlen, b"*", keys.EVENT_FIELD)
        return prefix + pack_argument(payload)

    @property
    def wait_shortfalls(self) -> int:
        """WAITs that returned fewer replicas than asked (metrics)."""
        return sum(writer.wait.shortfalls for writer in self._writers.values())

    def _writer(self, node: Node) -> _Writer:
        writer = self._writers.get(node)
        if writer is None:
            writer = self._writers[node] = _Writer(self, node)
        return writer

    def settled(self, pending: _Pending) -> None:
        """An event is written or failed: its stream may go to another writer now."""
        if not self.nodes.cluster:
            return
        held = self._outstanding.get(pending.stream)
        if held is not None:
            held.count -= 1
            if not held.count:
                del self._outstanding[pending.stream]

    def move(self, events: list[_Pending], source: _Writer,
             node: Node | None = None) -> list[_Pending]:
        """Hand each event to the writer of `node`, or of the master the slot map says
        serves its stream now, ahead of what that writer has queued; return those that
        stay with `source`. The stream's later events follow them there."""
        staying: list[_Pending] = []
        moved: dict[_Writer, list[_Pending]] = {}
        for pending in events:
            writer = self._writer(node or self.nodes.node_of(pending.stream))
            if writer is source:
                staying.append(pending)
                continue
            moved.setdefault(writer, []).append(pending)
            held = self._outstanding.get(pending.stream)
            if held is not None:
                held.writer = writer
        for writer, batch in moved.items():
            writer.add_moved(batch)
        return staying

    async def close(self) -> None:
        self._closed.set()
        for writer in self._writers.values():
            writer.close()


class _Writer:
    """One master's XADDs: one round trip at a time, each carrying what came meanwhile."""

    def __init__(self, sink: EventSink, node: Node) -> None:
        self.sink = sink
        self.node = node
        self._link: RespConnection | None = None
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self.wait = ReplicaWait(sink.wait_replicas, "XADDs")
        self.linger = Linger(sink.linger_s)
        self._task = asyncio.get_running_loop().create_task(self._run())

    def add(self, pending: _Pending) -> bool:
        if len(self._pending) >= MAX_PENDING:
            self.sink.settled(pending)
            pending.on_error(RedisError("too many events waiting for Redis"))
            return False
        self._pending.append(pending)
        self._pending_bytes += len(pending.payload)
        self._wakeup.set()
        return self._pending_bytes > BUSY_BYTES

    def add_moved(self, events: list[_Pending]) -> None:
        """Events handed over by another writer: ahead of what is queued here, but behind
        any event of the same stream handed over before (its order is the stream's)."""
        streams = {pending.stream for pending in events}
        last = max((index for index, pending in enumerate(self._pending)
                    if pending.stream in streams), default=-1)
        self._pending[last + 1:last + 1] = events
        self._pending_bytes += sum(len(pending.payload) for pending in events)
        self._wakeup.set()

    def add_first(self, events: list[_Pending]) -> None:
        self._pending[:0] = events
        self._pending_bytes += sum(len(pending.payload) for pending in events)
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            if batch:
                await self._write(batch)
            self.sink.drained()
            if batch:
                # A write and a read per round trip, in the gateway and in Redis, whatever
                # it carries: at moderate traffic, let the next one carry more.
                pause = self.linger.after_read(len(batch), len(batch) >= _FULL_BATCH,
                                               time.monotonic())
                if pause:
                    await asyncio.sleep(pause)

    async def _write(self, batch: list[_Pending]) -> None:
        sink = self.sink
        xadd = sink.xadd
        commands = [_ASKING + xadd(p.stream, p.payload) if p.asking
                    else xadd(p.stream, p.payload) for p in batch]
        count = len(batch) + sum(pending.asking for pending in batch)
        wait = self.wait.command()
        if wait is not None:
            commands.append(wait)
            count += 1
        replies: list[Reply]
        sent = False
        try:
            link = await self._connection()
            sent = True
            replies = await link.request(b"".join(commands), count, ROUND_TRIP_S)
        except (RedisError, OSError, TimeoutError) as exc:
            self._drop_connection()
            error = _as_redis_error(exc)
            if sink.nodes.cluster:
                if sent:
                    # Redis may have written (and replicated) some of these before the
                    # connection broke: sent again blindly, they would be relayed twice.
                    for pending in batch:
                        if pending.written_after is None:
                            pending.written_after = sink.last_ids.get(pending.stream, b"0-0")
                # A master lost: wait for its replica to be promoted, then write there.
                await self._retry([(pending, error) for pending in batch])
                return
            log.warning("XADD of %d events failed: %s", len(batch), exc)
            replies = [error] * count
        if wait is not None:
            self.wait.answered(replies.pop(), len(batch))
        again: list[tuple[_Pending, RedisError]] = []
        answers = iter(replies)
        last_ids = sink.last_ids if sink.nodes.cluster else None
        for pending in batch:
            if pending.asking:
                next(answers)  # ASKING's +OK
                pending.asking = False
            reply = next(answers)
            if not isinstance(reply, RedisError):
                if last_ids is not None and isinstance(reply, bytes):
                    last_ids[pending.stream] = reply
                sink.settled(pending)
                if pending.on_done is not None:
                    pending.on_done()
            elif sink.nodes.cluster and cluster_error(reply) is not None:
                again.append((pending, reply))
            else:
                sink.settled(pending)
                pending.on_error(reply)
        if again:
            await self._retry(again)

    async def _retry(self, failures: list[tuple[_Pending, RedisError]]) -> None:
        """Events the cluster turned away for now. A stream's events stay together and
        in order: the oldest failure of each stream decides where all of them go (with
        this writer's queued events of that stream behind them): to the node an ASK
        names; else, once the slot map was read again, to the master that serves them;
        failed once they waited past FAILOVER_WAIT_S."""
        sink = self.sink
        now = time.monotonic()
        oldest: dict[str, RedisError] = {}
        for pending, error in failures:
            pending.deadline = pending.deadline or now + FAILOVER_WAIT_S
            oldest.setdefault(pending.stream, error)
        events = [pending for pending, _ in failures] + self._take_queued(set(oldest))
        expired = {pending.stream for pending, _ in failures if pending.deadline < now}
        if expired:
            log.warning("XADD to %d streams failed: %s", len(expired),
                        oldest[next(iter(expired))])
            for pending in events:
                if pending.stream in expired:
                    sink.settled(pending)
                    pending.on_error(oldest[pending.stream])
        asked = {stream for stream, error in oldest.items()
                 if stream not in expired and cluster_error(error) == "ASK"}
        for stream in asked:
            # ASK names the importing node for this key alone while the slot migrates.
            moving = [pending for pending in events if pending.stream == stream]
            for pending in moving:
                pending.asking = True
            sink.move(moving, self, redirect_node(sink.nodes, oldest[stream]))
        waiting = {stream for stream in oldest if stream not in expired and stream not in asked}
        if not waiting:
            return
        # MOVED needs only the new map; a cluster in flux is given time, growing with
        # how long these events have waited already.
        if any(cluster_error(oldest[stream]) != "MOVED" for stream in waiting):
            waited = now - (min(p.deadline for p, _ in failures if p.stream in waiting)
                            - FAILOVER_WAIT_S)
            await asyncio.sleep(min(_RETRY_MAX_S, max(_RETRY_MIN_S, waited / 4)))
        await sink.nodes.refresh()
        # What was queued here for those streams meanwhile goes with them, after them;
        # the rest of the queue, for slots that moved too.
        events = [p for p in events if p.stream in waiting] + self._take_queued(waiting)
        if any(pending.written_after is not None for pending in events):
            try:
                events = await self._unwritten(events)
            except (RedisError, OSError, TimeoutError) as exc:
                # The master that can tell is not answering yet: ask again later.
                error = _as_redis_error(exc)
                await self._retry([(pending, error) for pending in events])
                return
        queued, self._pending, self._pending_bytes = self._pending, [], 0
        self.add_first(sink.move(events + queued, self))

    async def _unwritten(self, events: list[_Pending]) -> list[_Pending]:
        """Settle the events of a broken round trip that Redis did write, as its streams
        now show; return the rest, in order, to be sent."""
        sink = self.sink
        uncertain: dict[str, list[_Pending]] = {}
        for pending in events:
            if pending.written_after is not None:
                uncertain.setdefault(pending.stream, []).append(pending)
        written: set[int] = set()
        for stream, pendings in uncertain.items():
            after = min((p.written_after or b"0-0" for p in pendings), key=stream_order)
            entries = await _entries_after(sink.nodes.node_of(stream).url, stream, after)
            found = written_prefix([pending.payload for pending in pendings], entries)
            written.update(id(pending) for pending in pendings[:found])
        if written:
            log.info("%d events of a broken round trip were written already", len(written))
        rest: list[_Pending] = []
        for pending in events:
            pending.written_after = None
            if id(pending) not in written:
                rest.append(pending)
                continue
            sink.settled(pending)
            if pending.on_done is not None:
                pending.on_done()
        return rest

    def _take_queued(self, streams: set[str]) -> list[_Pending]:
        """Remove and return this writer's queued events of `streams`, in order."""
        taken = [pending for pending in self._pending if pending.stream in streams]
        if taken:
            self._pending = [p for p in self._pending if p.stream not in streams]
            self._pending_bytes = sum(len(p.payload) for p in self._pending)
        return taken

    async def _connection(self) -> RespConnection:
        if self._link is None or not self._link.connected:
            self._link = await RespConnection.open(self.node.url, timeout=ROUND_TRIP_S)
            self.sink.connections += 1
        return self._link

    def _drop_connection(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def close(self) -> None:
        self._task.cancel()
        self._drop_connection()


class _Holding:
    __slots__ = ("writer", "count")

    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        self.count = 0


def _as_redis_error(exc: RedisError | OSError | TimeoutError) -> RedisError:
    """A failed round trip's error as the RedisError the events' callers get."""
    return exc if isinstance(exc, RedisError) else RedisConnectionError(str(exc))


def written_prefix(sent: list[bytes], entries: list[bytes]) -> int:
    """How many of `sent` (one stream's events of a broken round trip, in order) Redis
    wrote, given the payloads of the stream's entries since before them. Redis applies a
    connection's commands in order and a replica holds a prefix of its master's writes,
    so what was written is a prefix of `sent`; other gateways' entries may come between."""
    found = 0
    for payload in entries:
        if found < len(sent) and payload == sent[found]:
            found += 1
    return found


async def _entries_after(url: str, stream: str, after: bytes) -> list[bytes]:
    """The `e` payloads of the stream's entries after the id `after` (a rare check, on a
    connection of its own)."""
    link = await RespConnection.open(url, timeout=ROUND_TRIP_S)
    payloads: list[bytes] = []
    try:
        start = b"(" + after
        while True:
            [reply] = await link.request(
                pack(b"XRANGE", stream, start, b"+", b"COUNT", _CHECK_PAGE), 1, ROUND_TRIP_S)
            if isinstance(reply, RedisError):
                raise reply
            if not isinstance(reply, list):
                raise RedisError(f"XRANGE answered {reply!r}")
            for entry in reply:
                match entry:
                    case [bytes() as entry_id, list() as fields]:
                        try:
                            payloads.append(entry_field(fields, keys.EVENT_FIELD))
                        except KeyError:
                            pass  # not an event of ours
                        start = b"(" + entry_id
                    case _:
                        raise RedisError(f"XRANGE answered an entry {entry!r}")
            if len(reply) < _CHECK_PAGE:
                return payloads
    finally:
        link.close()
