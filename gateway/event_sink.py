"""XADDs events to shard streams, pipelining whatever sockets sent meanwhile."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

OnError = Callable[[RedisError], None]
# stream, payload, what to do if the XADD fails, what to do once it succeeded (rarely set)
_Pending = tuple[str, bytes, OnError, Callable[[], None] | None]

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

    def __init__(self, redis: Redis, maxlen: int) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self.drained: Callable[[], None] = lambda: None  # after each round trip

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
            pipe = self.redis.pipeline(transaction=False)
            for stream, payload, _, _ in batch:
                # MAXLEN ~ bounds a stream whose relay is gone (rule 6).
                pipe.xadd(stream, {b"e": payload}, maxlen=self.maxlen, approximate=True)
            try:
                await pipe.execute()
            except RedisError as exc:
                log.warning("XADD of %d events failed: %s", len(batch), exc)
                for _, _, on_error, _ in batch:
                    on_error(exc)
            else:
                for _, _, _, on_done in batch:
                    if on_done is not None:
                        on_done()
            self.drained()
