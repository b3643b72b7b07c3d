"""XADDs events to shard streams, pipelining whatever sockets sent meanwhile."""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_Pending = tuple[str, bytes, asyncio.Future[None]]


class EventSink:
    """One writer task; `send` returns once the event is in Redis, or raises RedisError."""

    def __init__(self, redis: Redis, maxlen: int) -> None:
        self.redis = redis
        self.maxlen = maxlen
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()

    async def send(self, stream: str, payload: bytes) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((stream, payload, future))
        self._wakeup.set()
        await future

    async def run(self) -> None:
        """Flush forever: each round trip carries every event queued during the last."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            batch, self._pending = self._pending, []
            pipe = self.redis.pipeline(transaction=False)
            for stream, payload, _ in batch:
                # MAXLEN ~ bounds a stream whose relay is gone (architecture.md, rule 6).
                pipe.xadd(stream, {b"e": payload}, maxlen=self.maxlen, approximate=True)
            try:
                await pipe.execute()
            except RedisError as exc:
                log.warning("XADD of %d events failed: %s", len(batch), exc)
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)
