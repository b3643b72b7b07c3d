"""XADDs events to shard streams, pipelining whatever sockets sent meanwhile.

Every relayed message passes here, so the commands are written as RESP by hand, one
buffer per round trip, on a connection of the sink's own (shared.resp): redis-py's
pipeline costs tens of microseconds per command in packing and per-reply timeouts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from shared.resp import Reply, RespConnection, pack_argument, pack_start

log = logging.getLogger(__name__)

OnError = Callable[[RedisError], None]
# stream, payload, what to do if the XADD fails, what to do once it succeeded (rarely set)
_Pending = tuple[str, bytes, OnError, Callable[[], None] | None]

# A round trip that takes longer fails its events and the connection is made anew.
_ROUND_TRIP_S = 10.0
# Events waiting for their XADD, beyond which new ones are refused at once.
MAX_PENDING = 50_000
# Bytes waiting for their XADD beyond which the sink is `busy`: the gateway then stops
# reading from the sockets that write, until the next round trip is done.
BUSY_BYTES = 1024 * 1024


class EventSink:
    """One writer task; each Redis round trip carries every event queued during the last.

    `submit` is synchronous (a socket's frames are handled as they are read, in order);
    an event that does not reach Redis is reported to its `on_error`.
    """

    def __init__(self, redis_url: str, maxlen: int) -> None:
        self._url = redis_url
        self._conn: RespConnection | None = None
        self.maxlen = maxlen
        self._prefixes: dict[str, bytes] = {}
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self.drained: Callable[[], None] = lambda: None  # after each round trip
        self.connections = 0  # made so far (metrics: more than one is a reconnect)

    @property
    def busy(self) -> bool:
        return self._pending_bytes > BUSY_BYTES

    def submit(self, stream: str, payload: bytes, on_error: OnError,
               on_done: Callable[[], None] | None = None) -> None:
        if len(self._pending) >= MAX_PENDING:
            on_error(RedisError("too many events waiting for Redis"))
            return
        self._pending.append((stream, payload, on_error, on_done))
        self._pending_bytes += len(payload)
        self._wakeup.set()

    async def send(self, stream: str, payload: bytes) -> None:
        """Submit and wait until the event is in Redis; raises RedisError if it is not."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(stream, payload, done.set_exception, lambda: done.set_result(None))
        await done

    async def run(self) -> None:
        """Flush forever."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            buffer = b"".join([self._xadd(stream, payload) for stream, payload, _, _ in batch])
            replies: list[Reply]
            try:
                replies = await self._round_trip(buffer, len(batch))
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("XADD of %d events failed: %s", len(batch), exc)
                self._drop_connection()
                error = exc if isinstance(exc, RedisError) else RedisConnectionError(str(exc))
                replies = [error] * len(batch)
            for (_, _, on_error, on_done), reply in zip(batch, replies, strict=True):
                if isinstance(reply, RedisError):
                    on_error(reply)
                elif on_done is not None:
                    on_done()
            self.drained()

    def _xadd(self, stream: str, payload: bytes) -> bytes:
        """`XADD stream MAXLEN ~ maxlen * e payload` in RESP. MAXLEN ~ bounds a stream
        whose relay is gone (architecture.md, rule 6)."""
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = self._prefixes[stream] = pack_start(
                8, b"XADD", stream, b"MAXLEN", b"~", self.maxlen, b"*", b"e")
        return prefix + pack_argument(payload)

    async def _round_trip(self, buffer: bytes, count: int) -> list[Reply]:
        """Send the batch, read its `count` replies; an error reply fails its event only."""
        if self._conn is None or not self._conn.connected:
            self._conn = await RespConnection.open(self._url, timeout=_ROUND_TRIP_S)
            self.connections += 1
        return await self._conn.request(buffer, count, _ROUND_TRIP_S)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        self._drop_connection()
