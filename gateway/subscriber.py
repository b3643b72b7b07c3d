"""One pub/sub connection per gateway, dispatching each socket's channel to its socket.

redis-py's PubSub re-subscribes silently after a reconnect, which would hide lost frames;
here a lost connection is reported (architecture.md, rule 5) so that sockets are closed
and their clients rejoin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

Sink = Callable[[bytes], None]

_SUBSCRIBE_TIMEOUT_S = 5.0


class SubscriptionLost(RedisError):
    """The pub/sub connection broke; whatever was published meanwhile is gone."""


class Subscriber:
    def __init__(self, redis_url: str, on_lost: Callable[[list[bytes]], None]) -> None:
        # No read timeout: a quiet channel is not a broken one (health checks catch those).
        self._pool = ConnectionPool.from_url(redis_url, socket_timeout=None,
                                             health_check_interval=0)
        self._conn: AbstractConnection | None = None
        self._sinks: dict[bytes, Sink] = {}
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._on_lost = on_lost

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def subscribe(self, channel: bytes, sink: Sink) -> None:
        """Route `channel` to `sink`; returns once Redis confirms, so nothing is missed.

        Raises SubscriptionLost or TimeoutError when Redis cannot be reached in time.
        """
        if not self._connected.is_set():
            await asyncio.wait_for(self._connected.wait(), _SUBSCRIBE_TIMEOUT_S)
        if self._conn is None:
            raise SubscriptionLost("not connected to redis")
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = confirmed
        self._sinks[channel] = sink
        try:
            await self._conn.send_command("SUBSCRIBE", channel)
            await asyncio.wait_for(confirmed, _SUBSCRIBE_TIMEOUT_S)
        except BaseException:
            self._sinks.pop(channel, None)
            raise
        finally:
            self._confirmations.pop(channel, None)

    async def unsubscribe(self, channel: bytes) -> None:
        if self._sinks.pop(channel, None) is None or self._conn is None:
            return
        try:
            await self._conn.send_command("UNSUBSCRIBE", channel)
        except (RedisError, OSError) as exc:
            log.debug("unsubscribe %r failed: %s", channel, exc)

    async def run(self) -> None:
        """Read and dispatch forever; reconnect with backoff when the connection breaks."""
        backoff = 0.1
        while True:
            try:
                self._conn = self._pool.make_connection()  # type: ignore[no-untyped-call]
                await self._conn.connect()
                # hiredis reports pub/sub replies as push messages; have them returned
                # to us by read_response instead of logged and dropped.
                self._conn._parser.set_pubsub_push_handler(_as_is)  # type: ignore[union-attr]
                self._connected.set()
                backoff = 0.1
                await self._read(self._conn)
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection lost: %s", exc)
            finally:
                self._connected.clear()
                if self._conn is not None:
                    await self._conn.disconnect()
                lost = list(self._sinks)
                self._sinks.clear()
                for confirmed in self._confirmations.values():
                    if not confirmed.done():
                        confirmed.set_exception(SubscriptionLost("pub/sub connection lost"))
                if lost:
                    self._on_lost(lost)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _read(self, conn: AbstractConnection) -> None:
        sinks = self._sinks
        while True:
            reply = await conn.read_response(push_request=True, timeout=None)
            if not isinstance(reply, list):
                raise RedisConnectionError(f"unexpected pub/sub reply {reply!r}")
            kind = reply[0]
            if kind == b"message":
                sink = sinks.get(reply[1])
                if sink is not None:
                    sink(reply[2])
            elif kind == b"subscribe":
                confirmed = self._confirmations.get(reply[1])
                if confirmed is not None and not confirmed.done():
                    confirmed.set_result(None)

    async def close(self) -> None:
        await self._pool.disconnect()


async def _as_is(reply: object) -> object:
    return reply
