"""Redis goes away and comes back empty ("Redis restarts"), or stops answering.

Required: gateways and relays survive and reconnect with backoff; while Redis is away, room
events get an `error` frame (`service unavailable`), `ping` still answers, `/readyz` reports
not ready; sockets whose subscriptions were lost are closed with 1012 so clients rejoin;
once Redis is back the service works again within 5 s with no restart of any process.

The test's redis-server runs with `--save ""` and no AOF: stopped (SIGTERM) and started
again on the same port, it comes back empty, as a Redis pod without a volume does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
import websockets
from redis.asyncio import Redis

from harness.processes import Cluster, RedisServer, eventually, start_redis
from shared import keys
from shared.close_codes import CloseCode
from tests.faults.support import processes, record
from tests.peers import Peer

pytestmark = pytest.mark.timeout(90)

OUTAGE_S = 3.0  # how long Redis stays away
REQUIRED_S = 5.0  # the service works again within 5 s


@dataclass
class Setup:
    cluster: Cluster
    restarts: int = 0

    def stop_redis(self) -> float:
        """SIGTERM the current redis-server and wait for it; return when it was gone."""
        process = self.cluster.redis.process
        assert process.stop() == 0, process.log()
        return time.monotonic()

    def start_redis_again(self) -> RedisServer:
        """A new, empty redis-server on the same port (its own directory, beside the
        processes' logs); the cluster's fixture stops it."""
        workdir = self.cluster.workdir / f"redis-{self.restarts}"
        workdir.mkdir()
        self.restarts += 1
        redis = start_redis(workdir, port=self.cluster.redis.port)
        self.cluster.redis = redis
        return redis


@pytest.fixture
def setup(own_cluster: Cluster) -> Setup:
    """2 relays + 2 gateways on a redis-server of this test's own: it stops that Redis."""
    return Setup(own_cluster)


def _http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


def _readyz_ports(cluster: Cluster) -> list[int]:
    """The /readyz ports of every gateway and relay of the cluster."""
    return [port for _, port in cluster.gateways] + [
        cluster.relay_health_ports[relay.pid] for relay in cluster.relays]


def _all_readyz(cluster: Cluster, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        replies = await asyncio.gather(*(asyncio.to_thread(_http_status, port, "/readyz")
                                         for port in _readyz_ports(cluster)))
        return all(reply == status for reply in replies)
    return check


async def _pair_exchanges(cluster: Cluster, room: str, timeout: float) -> tuple[Peer, Peer]:
    """Two new clients, one on each gateway, join `room` and send each other a message."""
    a = await Peer.connect(cluster.url(0))
    b = await Peer.connect(cluster.url(1))
    try:
        await a.send(event="join_room", room_id=room)
        a.id = (await a.expect("joined_room", timeout))["own_id"]
        await b.send(event="join_room", room_id=room)
        b.id = (await b.expect("joined_room", timeout))["own_id"]
        assert (await a.expect("new_peer", timeout))["peer_id"] == b.id
        await a.send(event="send_to_peer", peer_id=b.id, data={"event": "message", "n": 1})
        assert (await b.expect("message", timeout))["n"] == 1
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 2})
        assert (await a.expect("message", timeout))["n"] == 2
    except BaseException:
        await a.close()
        await b.close()
        raise
    return a, b


async def test_redis_restart_sockets_closed_1012_unready_then_service_back_within_5s(
    setup: Setup,
) -> None:
    cluster = setup.cluster
    running = processes(cluster)
    pids = [process.pid for process in running]
    base = f"redis-restart-{os.getpid()}"
    await eventually(_all_readyz(cluster, 200), 10, "every gateway and relay to be ready")

    # Before: a pair in a room, across the gateways, and an idle socket in no room.
    a, b = await _pair_exchanges(cluster, f"{base}-before", 5)
    idle = await Peer.connect(cluster.url(0))
    await idle.send(event="ping")
    await idle.expect("pong")

    down_at = setup.stop_redis()

    # Every socket in a room was subscribed to its channel on a pub/sub connection that
    # broke: it cannot know what it missed, so it is closed with 1012 (rule 5). The one in
    # no room had nothing to miss: it stays, served without Redis.
    codes = await asyncio.gather(*(p.closed_with(timeout=5) for p in (a, b)))
    closed_s = time.monotonic() - down_at
    assert codes == [CloseCode.SERVICE_RESTART] * 2, codes
    await idle.send(event="ping")
    await idle.expect("pong")
    # Not ready, on every gateway and every relay.
    unready_from = time.monotonic()
    await eventually(_all_readyz(cluster, 503), 5, "every /readyz to say 503")
    unready_s = time.monotonic() - unready_from
    # So "ping still answers" and "room events get an error" are seen on a socket opened
    # during the outage (as a palava client reconnects after a 1012): it is served
    # without Redis, and its join, which could reach no relay, is refused, not dropped.
    newcomer = await Peer.connect(cluster.url(1))
    await newcomer.send(event="ping")
    await newcomer.expect("pong")
    await newcomer.send(event="join_room", room_id=f"{base}-during")
    await newcomer.expect_error("service unavailable", "join_room")
    await newcomer.send(event="ping")
    await newcomer.expect("pong")
    await newcomer.close()

    # And nobody exits while Redis stays away.
    async def outage_over() -> bool:
        assert all(process.alive() for process in running), [
            (process.name, process.popen.returncode) for process in running]
        return time.monotonic() - down_at >= OUTAGE_S

    await eventually(outage_over, OUTAGE_S + 5, "the outage to last its time")

    setup.start_redis_again()
    up_at = time.monotonic()

    # Recovery: new clients try, as palava clients rejoin, until a pair exchanges messages.
    attempts: list[str] = []
    pair = None
    while pair is None:
        assert time.monotonic() - up_at < 3 * REQUIRED_S, attempts
        try:
            pair = await _pair_exchanges(cluster, f"{base}-after-{len(attempts)}", 2)
        except (AssertionError, TimeoutError, websockets.ConnectionClosed) as exc:
            attempts.append(f"{time.monotonic() - up_at:.2f}s: {type(exc).__name__} {exc}")
    recovery_s = time.monotonic() - up_at
    for peer in pair:
        await peer.close()
    ready_from = time.monotonic()
    await eventually(_all_readyz(cluster, 200), 10, "every /readyz to say 200 again")
    ready_s = time.monotonic() - ready_from

    record("test_redis_restart", fault="redis restart (empty)", outage_s=OUTAGE_S,
           sockets_open_at_outage=3, closed_1012=codes.count(CloseCode.SERVICE_RESTART),
           closed_after_s=round(closed_s, 3), unready_after_s=round(unready_s, 3),
           recovery_s=round(recovery_s, 3), failed_attempts=attempts,
           all_ready_after_s=round(recovery_s + ready_s, 3),
           # Messages of the pair before the outage and of the first pair after it.
           frames_sent=4, frames_delivered=4, frames_lost=0, frames_duplicated=0)

    assert recovery_s <= REQUIRED_S, (recovery_s, attempts)
    assert [process.pid for process in running] == pids
    assert all(process.alive() for process in running)


async def test_redis_restart_clients_that_came_during_or_after_it_keep_working(
    setup: Setup,
) -> None:
    # Sockets opened during the outage had no subscription to lose and no room to be
    # removed from: once Redis is back they join and must go on working, as must the
    # rooms they join, once the cluster has settled (every gateway heartbeats again and
    # every /readyz says 200). A socket open during the outage is certainly open when
    # the gateways' heartbeats first run after the return, which makes this deterministic.
    cluster = setup.cluster
    room = f"redis-return-{os.getpid()}"
    await eventually(_all_readyz(cluster, 200), 10, "every gateway and relay to be ready")
    down_at = setup.stop_redis()
    await eventually(_all_readyz(cluster, 503), 5, "every /readyz to say 503")
    p = await Peer.connect(cluster.url(0))
    q = await Peer.connect(cluster.url(1))
    for peer in (p, q):
        await peer.send(event="ping")
        await peer.expect("pong")
    await eventually(lambda: time.monotonic() - down_at >= OUTAGE_S, OUTAGE_S + 1,
                     "the outage to last its time")
    setup.start_redis_again()
    up_at = time.monotonic()
    events: list[str] = []
    try:
        # Join as soon as the gateway takes room events again (`service unavailable` until
        # its subscriptions are back), then exchange messages.
        for peer in (p, q):
            while True:
                assert time.monotonic() - up_at < REQUIRED_S, "no join within 5 s"
                await peer.send(event="join_room", room_id=room)
                frame = await peer.recv()
                if frame.get("event") == "joined_room":
                    peer.id = frame["own_id"]
                    break
                assert frame.get("description") == "service unavailable", frame
                # A client's retry pace: unpaced, 200 refusals in a few ms would use up
                # the socket's frame burst (docs/protocol.md, "Limits") before the gateway's
                # pub/sub is back, which can take its reconnect backoff (up to 1 s).
                await asyncio.sleep(0.05)
        assert (await p.expect("new_peer"))["peer_id"] == q.id
        joined_s = time.monotonic() - up_at
        events.append(f"joined {joined_s:.2f} s after the return")
        await p.send(event="send_to_peer", peer_id=q.id, data={"event": "message", "n": 1})
        assert (await q.expect("message"))["n"] == 1
        # The cluster settles: every gateway heartbeats again, everything says ready.
        redis = Redis.from_url(cluster.redis.url)
        try:
            async def heartbeats() -> bool:
                return len(await redis.keys(keys.gateway_alive("*"))) == len(cluster.gateways)

            await eventually(heartbeats, 10, "every gateway to heartbeat again")
        finally:
            await redis.aclose()
        await eventually(_all_readyz(cluster, 200), 10, "every /readyz to say 200 again")
        events.append(f"settled {time.monotonic() - up_at:.2f} s after the return")
        # The room still works, both ways, and nobody was told anyone left.
        await p.send(event="send_to_peer", peer_id=q.id, data={"event": "message", "n": 2})
        await q.send(event="send_to_peer", peer_id=p.id, data={"event": "message", "n": 3})
        got_q, got_p = await q.recv(), await p.recv()
        assert (got_q.get("n"), got_p.get("n")) == (2, 3), (got_q, got_p)
    except (AssertionError, TimeoutError, websockets.ConnectionClosed) as exc:
        closed = [f"{name} closed {peer.ws.close_code} {peer.ws.close_reason!r}"
                  for name, peer in (("p", p), ("q", q)) if peer.ws.close_code is not None]
        record("test_redis_restart", fault="redis restart: clients of the outage afterwards",
               kept_working=False, after_s=round(time.monotonic() - up_at, 3),
               events=events, closed=closed, failure=f"{type(exc).__name__}: {exc}"[:300])
        raise AssertionError(f"{events}; {closed}; {type(exc).__name__}: {exc}") from exc
    finally:
        await p.close()
        await q.close()
    record("test_redis_restart", fault="redis restart: clients of the outage afterwards",
           kept_working=True, events=events)


async def test_redis_that_does_not_answer_probes_answer_and_sigterm_ends_every_process(
    setup: Setup,
) -> None:
    """A Redis that accepts connections and answers nothing (SIGSTOP: a frozen server, a
    partition). Every call off the hot path is bounded in time, so the gateways'
    heartbeats fail rather than hang, every /readyz answers 503 rather than time out, and
    SIGTERM ends every gateway and relay within their drain bound."""
    cluster = setup.cluster
    await eventually(_all_readyz(cluster, 200), 10, "every gateway and relay to be ready")
    a, b = await _pair_exchanges(cluster, f"redis-frozen-{os.getpid()}", 5)
    frozen = cluster.redis.process
    frozen.signal(signal.SIGSTOP)
    try:
        await eventually(lambda: all(process.log().count("heartbeat failed") >= 2
                                     for process, _ in cluster.gateways), 15,
                         "every gateway's heartbeat to fail twice (bounded, not hung)")
        statuses = await asyncio.gather(*(asyncio.to_thread(_http_status, port, "/readyz")
                                          for port in _readyz_ports(cluster)))
        assert statuses == [503] * len(statuses), statuses
        took = {}
        for process in processes(cluster):
            started = time.monotonic()
            process.signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 15)
            took[process.name] = round(time.monotonic() - started, 2)
        record("test_redis_frozen", fault="redis SIGSTOP", stop_after_sigterm_s=took)
        # The gateways' notice is 0 s here (tests.faults.support): what is left of their
        # drain is closing the sockets and removing the heartbeat, each bounded.
        assert max(took.values()) < 5, took
    finally:
        frozen.signal(signal.SIGCONT)
        await a.close()
        await b.close()
