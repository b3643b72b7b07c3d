"""The hot paths' Redis connection (redis_io/resp.py), against a real redis-server."""

from __future__ import annotations

import asyncio

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from harness.processes import RedisServer, free_port
from redis_io.resp import RespConnection, pack


def _url(server: RedisServer, db: int, user: str = "") -> str:
    credentials = f"{user}@" if user else ""
    return f"redis://{credentials}127.0.0.1:{server.port}/{db}"


async def test_a_batch_gets_its_replies_in_order_and_an_error_is_that_command_s_only(
    redis_server: RedisServer,
) -> None:
    conn = await RespConnection.open(_url(redis_server, 6))
    try:
        replies = await conn.request(b"".join([
            pack("SET", "resp-test", "v"), pack("INCR", "resp-test"), pack("GET", "resp-test"),
            pack("DEL", "resp-test"), pack("GET", "resp-test"),
        ]), 5, 5.0)
        assert replies[0] == b"OK"
        assert isinstance(replies[1], ResponseError)  # not an integer
        assert replies[2:] == [b"v", 1, None]
        # The connection carries on after the error.
        assert await conn.request(pack("PING"), 1, 5.0) == [b"PONG"]
    finally:
        conn.close()


async def test_the_url_s_database_user_and_password_are_used(redis_server: RedisServer) -> None:
    redis_server.cli("acl", "setuser", "resp-user", "on", ">s3cret", "~*", "&*", "+@all")
    try:
        conn = await RespConnection.open(_url(redis_server, 7, "resp-user:s3cret"))
        try:
            assert await conn.request(pack("SET", "resp-db", "seven"), 1, 5.0) == [b"OK"]
        finally:
            conn.close()
        assert redis_server.cli("-n", "7", "get", "resp-db").strip() == "seven"
        assert redis_server.cli("-n", "0", "exists", "resp-db").strip() == "0"
        redis_server.cli("-n", "7", "del", "resp-db")
        with pytest.raises(ResponseError, match="WRONGPASS"):
            await RespConnection.open(_url(redis_server, 7, "resp-user:wrong"))
    finally:
        redis_server.cli("acl", "deluser", "resp-user")


async def test_pushes_go_to_the_callback_and_after_replies_runs_per_read(
    redis_server: RedisServer,
) -> None:
    pushes: asyncio.Queue[object] = asyncio.Queue()
    reads = 0

    def after() -> None:
        nonlocal reads
        reads += 1

    conn = await RespConnection.open(_url(redis_server, 0), pushes.put_nowait, after)
    publisher = await RespConnection.open(_url(redis_server, 0))
    try:
        conn.write(pack("SUBSCRIBE", "resp-channel"))
        assert await asyncio.wait_for(pushes.get(), 5.0) == [b"subscribe", b"resp-channel", 1]
        await publisher.request(pack("PUBLISH", "resp-channel", "hello"), 1, 5.0)
        assert await asyncio.wait_for(pushes.get(), 5.0) == [b"message", b"resp-channel",
                                                             b"hello"]
        assert reads >= 2
    finally:
        publisher.close()
        conn.close()


async def test_no_answer_fails_the_waiting_batch_and_the_connection() -> None:
    """A Redis that stops answering: the round trip fails within its bound."""
    silent = await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        conn = await RespConnection.open(f"redis://127.0.0.1:{port}/0")
        with pytest.raises(RedisConnectionError, match="no reply within 0.2 s"):
            await conn.request(pack("PING"), 1, 0.2)
        assert not conn.connected
        await asyncio.wait_for(conn.wait_closed(), 5.0)
    finally:
        silent.close()


async def test_nothing_listening_is_a_redis_connection_error() -> None:
    with pytest.raises(RedisConnectionError, match="cannot connect"):
        await RespConnection.open(f"redis://127.0.0.1:{free_port()}/0")
