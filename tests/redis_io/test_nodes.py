"""The slot map: which master serves a key, and the URLs that reach each master."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from redis_io.nodes import Node, RedisNodes, cluster_error, node_url, redirect_node, slot_of
from shared import keys


@pytest.mark.parametrize(("url", "host", "port", "expected"), [
    ("redis://127.0.0.1:7000/0", "10.0.0.2", 7001, "redis://10.0.0.2:7001/0"),
    ("rediss://:secret@cache.example:6380/0?ssl_cert_reqs=none", "10.0.0.3", 6390,
     "rediss://:secret@10.0.0.3:6390/0?ssl_cert_reqs=none"),
    ("redis://user:pw@a:1", "::1", 7002, "redis://user:pw@[::1]:7002"),
])
def test_node_urls_keep_credentials_and_options(url: str, host: str, port: int,
                                                expected: str) -> None:
    assert node_url(url, host, port) == expected


def _slots_reply(*ranges: tuple[int, int, int]) -> list[object]:
    return [[start, end, [b"127.0.0.1", port, b"id"]] for start, end, port in ranges]


def test_keys_go_to_the_master_of_their_slot() -> None:
    nodes = RedisNodes("redis://127.0.0.1:7000/0", True, Node("127.0.0.1", 7000, ""))
    # Out of order, as CLUSTER SLOTS may list them.
    nodes._take(_slots_reply((10923, 16383, 7002), (0, 5460, 7000), (5461, 10922, 7001)))
    for shard in range(64):
        slot = slot_of(keys.shard_stream(shard))
        port = 7000 if slot <= 5460 else 7001 if slot <= 10922 else 7002
        assert nodes.node_of(keys.shard_stream(shard)).port == port
        # The shard's channels and keys are served by the same master.
        assert nodes.node_of(keys.connection_channel(shard, "x")) == \
            nodes.node_of(keys.shard_lease(shard))
    assert [node.port for node in nodes.masters()] == [7000, 7001, 7002]
    assert nodes.node_of("anything").url.startswith("redis://127.0.0.1:")


def test_a_standalone_redis_serves_every_key() -> None:
    node = Node("127.0.0.1", 6390, "redis://127.0.0.1:6390/0")
    nodes = RedisNodes(node.url, False, node)
    assert {nodes.node_of(keys.shard_stream(s)) for s in range(64)} == {node}


@pytest.mark.parametrize(("error", "kind"), [
    (ResponseError("MOVED 3999 127.0.0.1:6381"), "MOVED"),
    (ResponseError("ASK 3999 127.0.0.1:6381"), "ASK"),
    (ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"), "TRYAGAIN"),
    (ResponseError("CLUSTERDOWN The cluster is down"), "CLUSTERDOWN"),
    (RedisConnectionError("connection to Redis lost"), "LOST"),
    (ResponseError("NOSCRIPT No matching script"), None),
    (ResponseError("WRONGTYPE Operation against a key"), None),
])
def test_cluster_errors_are_told_from_the_commands_own(error: Exception,
                                                       kind: str | None) -> None:
    assert cluster_error(error) == kind


def test_a_redirect_names_its_node() -> None:
    nodes = RedisNodes("redis://:pw@127.0.0.1:7000/0", True, Node("127.0.0.1", 7000, ""))
    node = redirect_node(nodes, ResponseError("ASK 3999 127.0.0.1:6381"))
    assert (node.host, node.port, node.url) == ("127.0.0.1", 6381, "redis://:pw@127.0.0.1:6381/0")
