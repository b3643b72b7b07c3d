"""Shared fixtures: a private redis-server, and 2 gateways + 2 relays on it; a private
Redis Cluster."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.processes import Cluster, RedisServer, start_cluster, start_redis
from harness.redis_cluster import RedisCluster, running_redis_cluster
from tests.peers import Peer

# Star rooms in the shared cluster: above 100 members, so that a test can show one past
# the mesh limit of palava, and small enough to fill in a second.
STAR_CAPACITY = 120


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-redis-"))
    server = start_redis(workdir)
    yield server
    server.process.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """Three masters with a replica each (harness/redis_cluster.py). Shared: a test that
    kills or restarts nodes starts a cluster of its own."""
    with running_redis_cluster() as cluster:
        yield cluster


# Limits sized for tests that send hundreds of frames at once; the limits themselves are
# tested with their defaults on gateways of their own (tests/faults).
SHARED_SETTINGS = {
    "SWITCHBOARD_ROOM_CAPACITY": "3", "SWITCHBOARD_SHUTDOWN_SECONDS": "1",
    "SWITCHBOARD_STAR_ROOM_CAPACITY": str(STAR_CAPACITY),
    "SWITCHBOARD_FRAME_BURST": "2000", "SWITCHBOARD_FRAME_RATE": "2000",
    "SWITCHBOARD_WIRE_FRAME_BURST": "4000", "SWITCHBOARD_WIRE_FRAME_RATE": "4000",
}


@pytest.fixture(scope="session")
def cluster_on_redis_server(redis_server: RedisServer) -> Iterator[Cluster]:
    """Two gateways and two relays, shared by the protocol tests (each uses its own rooms)."""
    cluster = start_cluster(redis_server, gateways=2, relays=2, **SHARED_SETTINGS)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def cluster(cluster_on_redis_server: Cluster) -> Cluster:
    """The shared gateways and relays (a module may run its tests on others too)."""
    return cluster_on_redis_server


@pytest.fixture(scope="session")
def cluster_on_redis_cluster(redis_cluster: RedisCluster) -> Iterator[Cluster]:
    """The same on the shared Redis Cluster: REDIS_URL names one of its nodes."""
    cluster = start_cluster(redis_cluster, gateways=2, relays=2, **SHARED_SETTINGS)
    yield cluster
    cluster.stop()


@pytest.fixture
async def peers(cluster: Cluster) -> AsyncIterator[list[Peer]]:
    """Four connected peers, alternating between the two gateways."""
    connected = [await Peer.connect(cluster.url(i % 2)) for i in range(4)]
    yield connected
    for peer in connected:
        await peer.close()


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name of the test's own (room ids are at most 50 characters)."""
    return f"r{os.getpid()}-{abs(hash(request.node.nodeid)) % 10**12}"
