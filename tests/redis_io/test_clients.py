"""The redis-py clients off the hot path: every call is bounded in time, and a Redis that
cannot be reached fails with a RedisError, whichever redis-py version is installed."""

from __future__ import annotations

import ast
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from harness.processes import ROOT, start_redis
from harness.redis_cluster import running_redis_cluster
from redis_io.clients import bounded, close_client, discover, get_many, redis_client

PACKAGES = ("gateway", "relay", "shared", "redis_io")
# Names under which the services hold a redis-py client or one of its pipelines.
_CLIENT_NAMES = frozenset({"redis", "pipe", "pipeline", "client"})


def _unbounded_awaits(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """`await redis.x(...)`, `await self.redis.x(...)`, `await pipe.execute()`...: a
    redis-py call awaited other than through `bounded`."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Await) or not isinstance(node.value, ast.Call):
            continue
        func = node.value.func
        if not isinstance(func, ast.Attribute):
            continue
        owner = func.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
        if name in _CLIENT_NAMES or func.attr == "execute":
            yield node.lineno, ast.unparse(node)


def test_every_redis_py_call_is_awaited_through_bounded() -> None:
    found = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             for line, text in _unbounded_awaits(ast.parse(path.read_text()))]
    assert found == [], "await these through redis_io.clients.bounded:\n" + "\n".join(found)


def test_the_check_finds_an_unbounded_call() -> None:
    source = "async def f(self):\n    await self.redis.set('k', 1)\n    await pipe.execute()\n"
    assert [line for line, _ in _unbounded_awaits(ast.parse(source))] == [2, 3]


async def test_a_redis_that_does_not_answer_fails_within_the_bound(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    try:
        client = redis_client(await discover(server.url))
        await bounded(client.set("k", 1), 2.0)
        server.process.signal(signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(RedisTimeoutError):
            await bounded(client.get("k"), 0.5)
        with pytest.raises(RedisTimeoutError):
            await get_many(client, ["k", "l"], 0.5)
        # Well within the test's timeout: the bound ended the calls, not the socket.
        assert time.monotonic() - started < 5
        await close_client(client)
    finally:
        server.process.signal(signal.SIGCONT)
        server.process.stop()


async def test_a_cluster_with_no_node_up_fails_with_a_connection_error() -> None:
    """redis-py raises its RedisClusterException here (8.2: RedisClusterUnreachableError,
    from the command or the pipeline), which is no RedisError."""
    with running_redis_cluster(masters=3, replicas_per_master=0) as cluster:
        client = redis_client(await discover(cluster.url))
        await bounded(client.set("k", 1), 2.0)
        cluster.stop()
        for _ in range(3):  # the first failure, and those after the slot map is kept
            with pytest.raises(RedisConnectionError):
                await bounded(client.set("k", 2), 5.0)
            with pytest.raises(RedisConnectionError):
                await get_many(client, ["k", "{k}l"], 5.0)
        await close_client(client)
