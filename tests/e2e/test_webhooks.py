"""Webhooks end to end (docs/protocol.md, "Webhooks"): 2 gateways and 2 relays of the
module's own, on a single Redis and on a Redis Cluster, POST every room's life to a
receiver of the test's own (a real HTTP server checking every signature); each event is
produced by real traffic, and every `peer.left` reason is shown."""

from __future__ import annotations

import asyncio
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from harness.processes import Cluster, Process, eventually, http_get, start_cluster, start_redis
from harness.redis_cluster import running_redis_cluster
from tests.e2e.admin_support import ADMIN_KEY, JOIN_SECRET, Admin, joined, minted, room_path
from tests.e2e.hook_receiver import SECRET, HookReceiver
from tests.peers import Peer
from tests.resume_support import ResumablePeer

SETTINGS = {
    "SWITCHBOARD_WEBHOOK_SECRET": SECRET, "SWITCHBOARD_ADMIN_KEY": ADMIN_KEY,
    "SWITCHBOARD_RESUME_GRACE_S": "1", "SWITCHBOARD_RESUME_BUFFER_FRAMES": "3",
    "SWITCHBOARD_GATEWAY_TTL_MS": "1500", "SWITCHBOARD_SHUTDOWN_SECONDS": "0",
}


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[HookReceiver]:
    async with HookReceiver() as started:
        yield started


@pytest.fixture(scope="module", params=["redis_server", "redis_cluster"])
def hooked(request: pytest.FixtureRequest, receiver: HookReceiver) -> Iterator[Cluster]:
    """Relays and gateways that POST webhooks to the receiver; a third gateway requires
    join tokens (identities)."""
    with ExitStack() as stack:
        if request.param == "redis_cluster":
            redis: Any = stack.enter_context(running_redis_cluster())
        else:
            workdir = Path(tempfile.mkdtemp(prefix="switchboard-webhooks-"))
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
            redis = start_redis(workdir)
            stack.callback(redis.process.stop)
        cluster = start_cluster(redis, gateways=2, relays=2, **SETTINGS,
                                SWITCHBOARD_WEBHOOK_URL=receiver.url)
        stack.callback(cluster.stop)
        cluster.start_gateway(SWITCHBOARD_JOIN_SECRET=JOIN_SECRET)
        yield cluster
        for process in cluster.relays:
            assert SECRET.removeprefix("whsec_") not in process.log()


async def life_of(receiver: HookReceiver, room: str, timeout: float = 10.0
                  ) -> list[dict[str, Any]]:
    """The room's webhooks up to its `room.finished`, checked as a receiver would: signed
    (the receiver refuses any other), numbered 1, 2, 3... with ids of their own, the id
    also in the `webhook-id` header."""
    await receiver.until(lambda: any(b["type"] == "room.finished"
                                     for b in receiver.bodies(room)), timeout)
    received = [r for r in receiver.received if r.body.get("room") == room]
    bodies = [r.body for r in received]
    assert [b["room_seq"] for b in bodies] == list(range(1, len(bodies) + 1)), bodies
    assert len({b["id"] for b in bodies}) == len(bodies)
    assert all(r.headers["webhook-id"] == r.body["id"] for r in received)
    assert bodies[0]["type"] == "room.started" and bodies[-1]["type"] == "room.finished"
    assert [b["at"] for b in bodies] == sorted(b["at"] for b in bodies)
    assert receiver.bad_signatures == 0
    return bodies


def brief(bodies: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event as (type, the fields that tell it apart)."""
    shown = {"room.started": ("topology",), "peer.joined": ("peer_id", "host"),
             "host.changed": ("host_id",), "peer.left": ("peer_id", "reason"),
             "room.finished": ("peak_members", "joins")}
    return [(b["type"], *(b[name] for name in shown[b["type"]])) for b in bodies]


async def test_a_room_life_reads_started_joins_host_change_leaves_finished(
        hooked: Cluster, receiver: HookReceiver, room: str) -> None:
    a = await Peer.connect(hooked.url(0))
    b = await Peer.connect(hooked.url(1))
    await a.join(room)
    await b.join(room, {"name": "Bob"})
    await a.expect("new_peer")
    await a.send(event="leave_room")
    await b.expect("peer_left")
    await b.close()
    bodies = await life_of(receiver, room)
    assert brief(bodies) == [
        ("room.started", "mesh"), ("peer.joined", a.id, True), ("peer.joined", b.id, False),
        ("peer.left", a.id, "left"), ("host.changed", b.id), ("peer.left", b.id, "closed"),
        ("room.finished", 2, 2)]
    joined_b = bodies[2]
    assert joined_b["status"] == {"name": "Bob"} and joined_b["user"] is None
    assert joined_b["info"] is None
    finished = bodies[-1]
    assert finished["started_at"] == bodies[0]["at"]
    assert finished["duration_s"] == pytest.approx((finished["at"] - bodies[0]["at"]) / 1000)
    await a.close()


async def test_identities_a_granted_host_and_the_apps_removals(
        hooked: Cluster, receiver: HookReceiver, room: str) -> None:
    tokens = hooked.url(2)
    ann, _ = await joined(tokens, room, token=minted(room, sub="u-ann",
                                                     info={"name": "Ann"}))
    host, _ = await joined(tokens, room, token=minted(room, sub="u-host", host=True))
    other, _ = await joined(tokens, room, token=minted(room, sub="u-other"))
    admin = Admin(hooked.gateways[0][1])
    assert await admin.call("POST", room_path(room, "remove"), {"user": "u-ann"}) == (
        200, {"removed": [ann.id]})
    assert await admin.call("POST", room_path(room, "close")) == (
        200, {"removed": [host.id, other.id]})
    bodies = await life_of(receiver, room)
    assert brief(bodies) == [
        ("room.started", "mesh"), ("peer.joined", ann.id, True),
        ("peer.joined", host.id, True), ("host.changed", host.id),
        ("peer.joined", other.id, False), ("peer.left", ann.id, "removed"),
        ("peer.left", host.id, "room_closed"), ("peer.left", other.id, "room_closed"),
        ("room.finished", 3, 3)]
    assert bodies[1]["user"] == "u-ann" and bodies[1]["info"] == {"name": "Ann"}
    assert bodies[3]["user"] == "u-host" and bodies[5]["user"] == "u-ann"
    for peer in (ann, host, other):
        await peer.close()


async def test_a_deadline_ends_the_room_and_a_new_life_starts_after(
        hooked: Cluster, receiver: HookReceiver, room: str) -> None:
    first, _ = await joined(hooked.url(0), room, topology="star")
    second, _ = await joined(hooked.url(1), room)
    admin = Admin(hooked.gateways[1][1])
    status, _ = await admin.call("PUT", room_path(room, "deadline"), {"ends_at": 1})
    assert status == 200
    bodies = await life_of(receiver, room)
    assert brief(bodies) == [
        ("room.started", "star"), ("peer.joined", first.id, True),
        ("peer.joined", second.id, False), ("peer.left", first.id, "expired"),
        ("peer.left", second.id, "expired"), ("room.finished", 2, 2)]
    receiver.received.clear()
    again, _ = await joined(hooked.url(0), room)
    await again.close()
    second_life = await life_of(receiver, room)
    assert brief(second_life) == [("room.started", "mesh"), ("peer.joined", again.id, True),
                                  ("peer.left", again.id, "closed"), ("room.finished", 1, 1)]
    assert second_life[0]["id"].rsplit("-", 1)[0] != bodies[0]["id"].rsplit("-", 1)[0]
    for peer in (first, second):
        await peer.close()


async def away(admin: Admin, room: str, peer: str, timeout: float = 5.0) -> None:
    """Until the relay has `peer` as away (its socket dropped), as the admin API shows."""
    async with asyncio.timeout(timeout):
        while True:
            _, body = await admin.call("GET", room_path(room))
            if any(m["peer_id"] == peer and m["away"] for m in body["members"]):
                return
            await asyncio.sleep(0.05)


async def test_a_resumable_peer_away_too_long_or_sent_too_much(
        hooked: Cluster, receiver: HookReceiver, room: str) -> None:
    staying = await Peer.connect(hooked.url(0))
    await staying.join(room)
    late = await ResumablePeer.join(hooked.url(1), room)
    flooded = await ResumablePeer.join(hooked.url(1), room)
    for _ in range(2):
        await staying.expect("new_peer")
    late.drop()
    flooded.drop()

    def left() -> dict[str, str]:
        return {b["peer_id"]: b["reason"] for b in receiver.bodies(room)
                if b["type"] == "peer.left"}

    # Frames sent to it once it is away count: at most SWITCHBOARD_RESUME_BUFFER_FRAMES (3)
    # are kept, so the fourth makes it leave (within its grace period of 1 s).
    await away(Admin(hooked.gateways[0][1]), room, flooded.id)
    for n in range(4):
        await staying.send(event="send_to_peer", peer_id=flooded.id,
                           data={"event": "message", "n": n})
    await receiver.until(lambda: len(left()) == 2)
    await staying.close()
    bodies = await life_of(receiver, room)
    assert left() == {flooded.id: "overflow", late.id: "grace_expired", staying.id: "closed"}
    assert brief(bodies)[-2:] == [("peer.left", staying.id, "closed"), ("room.finished", 3, 3)]


async def test_a_gateway_that_dies_loses_its_peers(
        hooked: Cluster, receiver: HookReceiver, room: str) -> None:
    doomed, port = hooked.start_gateway()
    hooked.gateways.remove((doomed, port))
    lost = await Peer.connect(f"ws://127.0.0.1:{port}/")
    await lost.join(room)
    staying = await Peer.connect(hooked.url(0))
    await staying.join(room)
    doomed.signal(signal.SIGKILL)
    await staying.expect("peer_left", timeout=15)
    await staying.close()
    bodies = await life_of(receiver, room)
    assert brief(bodies)[3:] == [("peer.left", lost.id, "gateway_lost"),
                                 ("host.changed", staying.id),
                                 ("peer.left", staying.id, "closed"), ("room.finished", 2, 2)]
    doomed.wait(10)


def relay_samples(cluster: Cluster, process: Process) -> dict[str, float]:
    status, _, text = http_get(cluster.relay_health_ports[process.pid], "/metrics")
    assert status == 200
    return {name: float(value) for name, value in (
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))}


async def test_the_relays_count_deliveries_and_keep_no_backlog(hooked: Cluster) -> None:
    # The last event's deletion from its outbox may follow its delivery by a moment.
    await eventually(lambda: all(relay_samples(hooked, p)["switchboard_webhook_backlog"] == 0
                                 for p in hooked.relays), 5, "empty outboxes")
    delivered = timed = 0.0
    for process in hooked.relays:
        samples = relay_samples(hooked, process)
        assert samples['switchboard_webhooks_dropped_total{reason="retry_window"}'] == 0
        delivered += samples['switchboard_webhook_deliveries_total{outcome="delivered"}']
        timed += samples["switchboard_webhook_delivery_seconds_count"]
    assert delivered == timed >= 30  # every event of the tests above, once
