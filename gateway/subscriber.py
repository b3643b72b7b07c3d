"""One pub/sub connection per gateway, dispatching each socket's channel to its socket.

redis-py's PubSub re-subscribes silently after a reconnect, which would hide lost frames;
here a lost connection is reported (architecture.md, rule 5) so that sockets are closed
and their clients rejoin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from shared.resp import Reply, RespConnection, pack

log = logging.getLogger(__name__)

Sink = Callable[[bytes], None]

_SUBSCRIBE_TIMEOUT_S = 5.0
# How long a new socket waits for a pub/sub connection being made before it is served
# without one (its room events then answered `service unavailable`).
_CONNECT_WAIT_S = 1.0
# Reconnecting: first retry after the minimum, doubling up to the maximum, so that a
# Redis that comes back is used again within seconds (issue: "within 5 s").
_BACKOFF_MIN_S, _BACKOFF_MAX_S = 0.1, 2.0


class Subscriber:
    """Each socket's channel, routed to its sink.

    A channel is *live* once Redis confirmed the SUBSCRIBE on the current connection:
    only then can nothing published to it be missed. Channels registered while Redis is
    away wait and are subscribed on reconnection (they had nothing to miss). When the
    connection breaks, the live channels are reported to `on_lost` and forgotten.
    """

    def __init__(self, redis_url: str, on_lost: Callable[[list[bytes]], None],
                 on_connected: Callable[[], Awaitable[None]]) -> None:
        self._url = redis_url
        self._conn: RespConnection | None = None
        self._sinks: dict[bytes, Sink] = {}
        self._live: set[bytes] = set()
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        # SUBSCRIBE and UNSUBSCRIBE commands for one write at the end of the loop's turn:
        # a join storm opens hundreds of sockets per read, and each write is a syscall.
        self._outgoing: list[bytes] = []
        self._connected = False
        self._connected_event = asyncio.Event()
        self._on_lost = on_lost
        self._on_connected = on_connected
        # Counts connections made: a change tells that everything live before was lost.
        self.generation = 0
        # Runs once every chunk of messages read from Redis has been dispatched.
        self.after_deliveries: Callable[[], None] = lambda: None

    @property
    def connected(self) -> bool:
        return self._connected

    def is_live(self, channel: bytes) -> bool:
        return channel in self._live

    async def subscribe(self, channel: bytes, sink: Sink) -> bool:
        """Route `channel` to `sink`. True once Redis confirmed the subscription; False
        when Redis is away (the channel is subscribed as soon as it is back)."""
        self._sinks[channel] = sink
        if not self._connected:
            # A gateway just started, or Redis blinked: worth a moment's wait.
            try:
                async with asyncio.timeout(_CONNECT_WAIT_S):
                    await self._connected_event.wait()
            except TimeoutError:
                return False
        if self._conn is None:
            return False
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmations[channel] = confirmed
        try:
            self._write_soon(pack(b"SUBSCRIBE", channel))
            async with asyncio.timeout(_SUBSCRIBE_TIMEOUT_S):
                await confirmed
        except TimeoutError as exc:
            log.debug("subscribe %r not confirmed: %s", channel, exc)
        finally:
            self._confirmations.pop(channel, None)
        return channel in self._live

    def unsubscribe(self, channel: bytes) -> None:
        self._sinks.pop(channel, None)
        if channel not in self._live:
            return
        self._live.discard(channel)
        if self._conn is not None and self._connected:
            self._write_soon(pack(b"UNSUBSCRIBE", channel))

    def _write_soon(self, command: bytes) -> None:
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._write_outgoing)
        self._outgoing.append(command)

    def _write_outgoing(self) -> None:
        commands, self._outgoing = self._outgoing, []
        if self._conn is None or not self._connected:
            return  # reconnecting subscribes every channel still wanted
        try:
            self._conn.write(b"".join(commands))
        except (RedisError, OSError) as exc:
            log.debug("pub/sub write failed: %s", exc)

    async def run(self) -> None:
        """Read and dispatch forever; reconnect with backoff when the connection breaks."""
        backoff = _BACKOFF_MIN_S
        while True:
            try:
                self._conn = await RespConnection.open(self._url, self._on_reply,
                                                       self._after_replies)
                # Before any channel goes live, so that no socket joins a room before the
                # gateway is known to be alive (relays would remove its peers).
                await self._on_connected()
                self.generation += 1
                self._connected = True
                self._connected_event.set()
                backoff = _BACKOFF_MIN_S
                waiting = list(self._sinks)
                for start in range(0, len(waiting), 1000):
                    self._conn.write(pack(b"SUBSCRIBE", *waiting[start:start + 1000]))
                await self._conn.wait_closed()
                log.warning("pub/sub connection lost")
            except (RedisError, OSError) as exc:
                log.warning("pub/sub connection lost: %s", exc)
            finally:
                self._connected = False
                self._connected_event.clear()
                if self._conn is not None:
                    self._conn.close()
                lost = list(self._live)
                self._live.clear()
                for channel in lost:
                    self._sinks.pop(channel, None)
                if lost:
                    self._on_lost(lost)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    def _on_reply(self, reply: Reply) -> None:
        """A message for a channel, or Redis confirming a subscription."""
        if not isinstance(reply, list):
            if self._conn is not None:
                self._conn.abort(f"unexpected pub/sub reply {reply!r}")
            return
        kind = reply[0]
        if kind == b"message":
            sink = self._sinks.get(reply[1])
            if sink is not None:
                try:
                    sink(reply[2])
                except Exception:
                    # A bug of ours for one socket: the connection and everyone else's
                    # channels carry on (raising here would drop the pub/sub connection).
                    log.exception("delivering on %r failed", reply[1])
        elif kind == b"subscribe":
            channel = reply[1]
            if channel in self._sinks:
                self._live.add(channel)
            confirmed = self._confirmations.get(channel)
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)

    def _after_replies(self) -> None:
        self.after_deliveries()

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
