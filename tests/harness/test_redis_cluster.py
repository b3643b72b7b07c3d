"""The Redis Cluster fixture (harness/redis_cluster.py) does what the cluster tests rely on:
redis-py's cluster client reads and writes on every master, sharded Pub/Sub delivers, a slot
moves with its keys, `redis-cli --cluster reshard` moves slots, and a killed master fails
over to its replica, keys included, within 10 s (node timeout 2 s)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.cluster

from harness.redis_cluster import RedisCliError, RedisCluster, running_redis_cluster

pytestmark = pytest.mark.timeout(90)

FAILOVER_LIMIT_S = 10.0  # node timeout 2 s: failure detection, then the replica's election


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[RedisCluster]:
    """A cluster for the tests that move slots and kill nodes, apart from the shared one."""
    with running_redis_cluster() as cluster:
        yield cluster


def key_on(cluster: RedisCluster, master: int, prefix: str) -> str:
    """A key that the master at `master` serves now."""
    return next(key for key in (f"{prefix}-{n}" for n in range(1000))
                if cluster.master_of_slot(cluster.key_slot(key)) == master)


def next_message(pubsub: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next message of type `kind` on a (cluster or node) PubSub, others skipped."""
    deadline = time.monotonic() + timeout
    read = getattr(pubsub, "get_sharded_message", pubsub.get_message)
    while time.monotonic() < deadline:
        message = read(timeout=0.1)
        if message is not None and message["type"] == kind:
            return dict(message)
    raise AssertionError(f"no {kind} message within {timeout}s")


def test_the_cluster_client_writes_and_reads_on_every_master(redis_cluster: RedisCluster) -> None:
    masters = redis_cluster.masters()
    assert len(masters) == 3
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    try:
        for master in masters:
            key = key_on(redis_cluster, master, "every-master")
            assert client.set(key, f"on {master}")
            assert client.get(key) == f"on {master}".encode()
            assert redis_cluster.cli(master, "get", key).strip() == f"on {master}"
    finally:
        client.close()


def test_a_shard_channel_delivers(redis_cluster: RedisCluster) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    pubsub = client.pubsub()
    try:
        pubsub.ssubscribe("{room-a}:frames")
        assert next_message(pubsub, "ssubscribe")["channel"] == b"{room-a}:frames"
        assert client.spublish("{room-a}:frames", "hello") == 1
        assert next_message(pubsub, "smessage")["data"] == b"hello"
    finally:
        pubsub.close()
        client.close()


def test_a_slot_moves_with_its_keys(own_cluster: RedisCluster) -> None:
    slot = own_cluster.key_slot("moving")
    source = own_cluster.master_of_slot(slot)
    target = next(port for port in own_cluster.masters() if port != source)
    own_cluster.cli(source, "set", "moving", "along")
    subscriber = redis.Redis(port=source).pubsub()
    subscriber.ssubscribe("moving")
    next_message(subscriber, "ssubscribe")

    own_cluster.move_slot(slot, target)

    assert own_cluster.master_of_slot(slot) == target
    assert own_cluster.cli(target, "get", "moving").strip() == "along"
    with pytest.raises(RedisCliError, match="MOVED"):
        own_cluster.cli(source, "get", "moving")
    # Redis 7 tells the slot's subscribers on the old owner that they are out: a
    # `sunsubscribe` with count 0, and the connection stays open.
    assert next_message(subscriber, "sunsubscribe")["channel"] == b"moving"
    subscriber.close()


def test_redis_cli_reshards_slots(own_cluster: RedisCluster) -> None:
    source, target = own_cluster.masters()[:2]
    before = own_cluster.slot_count(source), own_cluster.slot_count(target)
    own_cluster.reshard(source, target, 10)
    assert (own_cluster.slot_count(source), own_cluster.slot_count(target)) == (
        before[0] - 10, before[1] + 10)


def test_a_killed_master_fails_over_with_its_keys(own_cluster: RedisCluster) -> None:
    slot = own_cluster.key_slot("{failover}")
    master = own_cluster.master_of_slot(slot)
    replica = own_cluster.replica_of(master)
    own_cluster.cli(master, "set", "{failover}:key", "kept")
    # Replication is asynchronous: the replica must have the key before its master dies.
    assert own_cluster.cli(master, "wait", "1", "2000").strip() == "1"

    own_cluster.kill_master(master)
    new_master, seconds = own_cluster.wait_failover(master, timeout=FAILOVER_LIMIT_S + 5)
    print(f"failover took {seconds:.2f}s")

    assert new_master == replica and seconds < FAILOVER_LIMIT_S
    assert own_cluster.master_of_slot(slot) == new_master
    client = redis.cluster.RedisCluster(host="127.0.0.1", port=new_master)
    try:
        assert client.get("{failover}:key") == b"kept"
    finally:
        client.close()
    # Started again, the old master rejoins as its replica's replica.
    own_cluster.restart_node(master)
    assert own_cluster.replica_of(new_master) == master
    own_cluster.wait_healthy()
