"""A Redis connection for the hot paths: commands as ready-made RESP, replies by hiredis.

redis-py costs microseconds per command argument to pack and a chain of coroutines per
reply to read; on the paths every relayed message takes (the gateway's XADDs and pub/sub,
the relay's XREADGROUP and commits) that was a third of the CPU. Here a batch of commands
is one buffer, written without awaiting, and replies are read by hiredis in C as they
arrive: handed to `on_push` (pub/sub) or, in order, to the batches waiting for them.

Everything else (leases, health, set-up) keeps using redis-py.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from typing import cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

# A reply: bytes, int, None, a list of replies, or a ResponseError for an error reply
# (an error is that command's result, not the connection's).
Reply = object


def pack(*args: bytes | str | int) -> bytes:
    """One command in RESP."""
    return pack_start(len(args), *args)


def pack_start(count: int, *args: bytes | str | int) -> bytes:
    """The start of a command of `count` arguments, the first of them `args`: a hot path
    packs its fixed arguments once and appends the rest with `pack_argument`."""
    return b"*%d\r\n" % count + b"".join([pack_argument(arg) for arg in args])


def pack_argument(arg: bytes | str | int) -> bytes:
    if isinstance(arg, str):
        arg = arg.encode()
    elif isinstance(arg, int):
        arg = b"%d" % arg
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


def entry_field(fields: list[Reply], name: bytes) -> bytes:
    """A stream entry's field, from its flat [field, value, ...] list."""
    for index in range(0, len(fields) - 1, 2):
        if fields[index] == name:
            value = fields[index + 1]
            if isinstance(value, bytes):
                return value
    raise KeyError(name)


def tls_context(options: Mapping[str, object]) -> ssl.SSLContext:
    """TLS as redis-py does it for the same URL: the system's CA certificates, or
    `ssl_ca_certs`; `ssl_cert_reqs=none` takes any certificate (Heroku Redis serves
    self-signed ones), `optional` checks one if given."""
    context = ssl.create_default_context()
    ca_certs = options.get("ssl_ca_certs")
    if isinstance(ca_certs, str):
        context.load_verify_locations(ca_certs)
    cert_reqs = options.get("ssl_cert_reqs")
    if cert_reqs in ("none", ssl.CERT_NONE):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cert_reqs in ("optional", ssl.CERT_OPTIONAL):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


# A round trip on one of these connections (a batch of XADDs, an XREADGROUP past its
# BLOCK, a batch of commits) whose replies take longer than this gives the connection up:
# its callers fail what it carried (rule 5) and connect anew.
ROUND_TRIP_S = 10.0

class _Batch:
    __slots__ = ("count", "replies", "done")

    def __init__(self, count: int, done: asyncio.Future[list[Reply]]) -> None:
        self.count = count
        self.replies: list[Reply] = []
        self.done = done


class RespConnection(asyncio.Protocol):
    """One TCP (or unix socket) connection to Redis.

    Requests: `call` writes a batch of commands and returns their replies in order.
    Pub/sub: with `on_push`, every reply goes there instead, and `after_replies` runs
    once each chunk read from the socket has been dispatched (to flush what the pushes
    queued). `lost` resolves when the connection is gone; everything waiting then fails
    with a redis ConnectionError.
    """

    def __init__(self, on_push: Callable[[Reply], None] | None = None,
                 after_replies: Callable[[], None] | None = None) -> None:
        self._reader = hiredis.Reader(replyError=ResponseError)
        self._transport: asyncio.Transport | None = None
        self._waiting: deque[_Batch] = deque()
        self._on_push = on_push
        self._after_replies = after_replies
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._why = "closed"

    @classmethod
    async def open(cls, url: str, on_push: Callable[[Reply], None] | None = None,
                   after_replies: Callable[[], None] | None = None,
                   timeout: float = 5.0) -> RespConnection:
        """Connect to the Redis of `url` (redis://, rediss:// with the system's CA
        certificates, or unix://; with its user, password and db). Failing to connect
        within `timeout` raises redis's ConnectionError, like every other failure here."""
        try:
            async with asyncio.timeout(timeout):
                return await cls._open(url, on_push, after_replies)
        except TimeoutError as exc:
            raise RedisConnectionError(f"no answer from Redis within {timeout} s") from exc

    @classmethod
    async def _open(cls, url: str, on_push: Callable[[Reply], None] | None,
                    after_replies: Callable[[], None] | None) -> RespConnection:
        options = parse_url(url)
        loop = asyncio.get_running_loop()
        connection = cls(None, None)  # pushes start once AUTH and SELECT are answered
        try:
            if "path" in options:
                await loop.create_unix_connection(lambda: connection, options["path"])
            else:
                host = options.get("host", "localhost")
                tls = tls_context(options) if url.startswith("rediss://") else None
                await loop.create_connection(lambda: connection, host,
                                             options.get("port", 6379), ssl=tls)
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        setup = []
        if options.get("password"):
            setup.append(pack("AUTH", *([options["username"]] if options.get("username")
                                        else []), options["password"]))
        if options.get("db"):
            setup.append(pack("SELECT", options["db"]))
        if setup:
            for reply in await connection.call(b"".join(setup), len(setup)):
                if isinstance(reply, ResponseError):
                    connection.close()
                    raise reply
        connection._on_push = on_push
        connection._after_replies = after_replies
        return connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        reader.feed(data)
        push = self._on_push
        try:
            reply = reader.gets()
            while reply is not False:
                if push is not None:
                    push(reply)
                else:
                    self._answer(reply)
                reply = reader.gets()
        except hiredis.ProtocolError as exc:
            self.abort(f"protocol error: {exc}")
            return
        if self._after_replies is not None:
            self._after_replies()

    def _answer(self, reply: Reply) -> None:
        if not self._waiting:
            self.abort(f"unexpected reply {reply!r}")
            return
        batch = self._waiting[0]
        batch.replies.append(reply)
        if len(batch.replies) == batch.count:
            self._waiting.popleft()
            if not batch.done.done():
                batch.done.set_result(batch.replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        error = RedisConnectionError(f"connection to Redis lost: {exc or self._why}")
        while self._waiting:
            done = self._waiting.popleft().done
            if not done.done():
                done.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def write(self, commands: bytes) -> None:
        """Send commands whose replies go to `on_push` (pub/sub)."""
        if self._transport is None:
            raise RedisConnectionError("not connected to Redis")
        self._transport.write(commands)

    def call(self, commands: bytes, count: int) -> asyncio.Future[list[Reply]]:
        """Send `count` commands (one buffer); the future gets their `count` replies."""
        done: asyncio.Future[list[Reply]] = asyncio.get_running_loop().create_future()
        if self._transport is None:
            done.set_exception(RedisConnectionError("not connected to Redis"))
            return done
        self._waiting.append(_Batch(count, done))
        self._transport.write(commands)
        return done

    async def request(self, commands: bytes, count: int, timeout: float) -> list[Reply]:
        """`call`, and give the connection up if the replies take over `timeout` s (a
        timer, not a task: this runs per round trip)."""
        done = self.call(commands, count)
        timer = asyncio.get_running_loop().call_later(
            timeout, self.abort, f"no reply within {timeout} s")
        try:
            return await done
        finally:
            timer.cancel()

    def abort(self, why: str) -> None:
        """Drop the connection at once; whatever waits fails with `why`."""
        self._why = why
        if self._transport is not None:
            self._transport.abort()  # connection_lost fails whatever waits

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    async def wait_closed(self) -> None:
        await asyncio.shield(self.lost)
