"""rediss://: Heroku Redis serves TLS with a self-signed certificate, and its
URLs end in `?ssl_cert_reqs=none`. The whole service runs on such a Redis: the hot paths'
own connections (redis_io.resp) and redis-py's alike."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from harness.processes import Cluster, TlsRedisServer, start_cluster, start_tls_redis
from redis_io.resp import RespConnection, pack
from tests.peers import Peer


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[TlsRedisServer]:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-tls-"))
    server = start_tls_redis(workdir)
    yield server
    server.process.stop()
    shutil.rmtree(workdir, ignore_errors=True)


async def test_the_hot_path_connection_speaks_tls(tls_redis: TlsRedisServer) -> None:
    conn = await RespConnection.open(tls_redis.url)
    try:
        assert await conn.request(pack("PING"), 1, 5.0) == [b"PONG"]
    finally:
        conn.close()
    # Without ssl_cert_reqs=none the self-signed certificate is refused, as it should be.
    with pytest.raises(RedisConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await RespConnection.open(tls_redis.url.split("?")[0])


async def test_the_service_runs_on_a_tls_redis(tls_redis: TlsRedisServer, room: str) -> None:
    cluster: Cluster = start_cluster(tls_redis, gateways=1, relays=1,
                                     SWITCHBOARD_SHUTDOWN_SECONDS="0")
    try:
        a = await Peer.connect(cluster.url(0))
        b = await Peer.connect(cluster.url(0))
        await a.send(event="join_room", room_id=room, resumable=True)
        joined = await a.expect("joined_room")
        a.id = joined["own_id"]
        await b.join(room)
        await a.expect("new_peer")
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 1})
        assert (await a.expect("message"))["n"] == 1
        # A resume replays kept frames from the TLS Redis too.
        a.ws.transport.abort()
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 2})
        again = await Peer.connect(cluster.url(0))
        await again.send(event="resume", resume_token=joined["resume_token"], last_frame_seq=2)
        assert (await again.expect("joined_room"))["resumed"]
        assert (await again.expect("message"))["n"] == 2
        for peer in (a, b, again):
            await peer.close()
    finally:
        cluster.stop()
