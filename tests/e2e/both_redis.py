"""Running a module's tests on a single Redis and on a Redis Cluster: import `cluster`
from here into a test module; `keys_of` and `command_on` read Redis either way."""

from __future__ import annotations

import pytest

from harness.processes import Cluster, RedisLike, RedisServer
from harness.redis_cluster import RedisCluster


@pytest.fixture(params=["redis_server", "redis_cluster"])
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """The shared gateways and relays on a single Redis, then on a Redis Cluster of 3
    masters with a replica each (the services find out which from REDIS_URL alone)."""
    services: Cluster = request.getfixturevalue(f"cluster_on_{request.param}")
    return services


def keys_of(redis: RedisLike, pattern: str = "*") -> list[str]:
    """Every key matching `pattern`, of every master of a cluster."""
    if isinstance(redis, RedisCluster):
        return [line for port in redis.masters()
                for line in redis.cli(port, "--no-raw", "keys", pattern).splitlines() if line]
    assert isinstance(redis, RedisServer)
    return [line for line in redis.cli("--no-raw", "keys", pattern).splitlines() if line]


def command_on(redis: RedisLike, *args: str, raw: bool = False) -> str:
    """A command on the key `args[1]`, on the master that serves it; its reply as
    redis-cli prints it (`--no-raw`: quoted strings), or `raw`."""
    options = [] if raw else ["--no-raw"]
    if isinstance(redis, RedisCluster):
        return redis.cli(redis.master_of_slot(redis.key_slot(args[1])), *options, *args)
    assert isinstance(redis, RedisServer)
    return redis.cli(*options, *args)
