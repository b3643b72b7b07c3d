"""The app's control through faults (docs/protocol.md, "Admin API", "Deadlines",
"Identities and roles"): a deadline that passes while no relay holds the room's shard is
applied by the relay that takes it; identities and grants outlive the relay; the admin API
says 503 when no relay or no Redis is there, and 504 when its action was not applied in
time (and the action still happens once a relay is back)."""

from __future__ import annotations

import signal
import time

import pytest
from redis.asyncio import Redis

from harness.processes import Cluster, eventually
from shared import keys
from tests.e2e.admin_support import (
    ADMIN_KEY,
    JOIN_SECRET,
    Admin,
    expect_removed,
    joined,
    minted,
    room_path,
)
from tests.faults.support import (
    SHARDS,
    holders,
    kill_after_renewal,
    pid_of,
    relays_hold_every_shard,
    rooms_held_by,
    tracebacks,
)

pytestmark = pytest.mark.timeout(120)

ADMIN_ENV = {"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY, "SWITCHBOARD_JOIN_SECRET": JOIN_SECRET}


@pytest.mark.parametrize("own_cluster", [ADMIN_ENV], indirect=True)
async def test_a_deadline_passing_while_no_relay_holds_the_shard_is_applied_after(
        own_cluster: Cluster) -> None:
    cluster = own_cluster
    redis = Redis.from_url(cluster.redis.url)
    admin = Admin(cluster.gateways[1][1])
    peers = []
    try:
        await eventually(lambda: relays_hold_every_shard(redis, 2), 20,
                         "both relays to hold shards")
        lease_of = await holders(redis)
        victim = cluster.relays[0]
        victim_id = next(h for h in lease_of if h and pid_of(h) == victim.pid)
        ending, lasting = rooms_held_by(lease_of, victim_id, 2, "deadline")

        # A room that ends by its token's deadline, and a class whose teacher holds the grant.
        ends_at = time.time() + 30  # moved closer below, once the relay is dead
        a, _ = await joined(cluster.url(0), ending,
                            token=minted(ending, room_ends_at=ends_at), resumable=True)
        b, _ = await joined(cluster.url(1), ending, token=minted(ending, sub="b"))
        student, _ = await joined(cluster.url(0), lasting, topology="star",
                                  token=minted(lasting, sub="student"))
        info = {"name": "Ms Tee"}
        teacher, _ = await joined(cluster.url(1), lasting, resumable=True,
                                  token=minted(lasting, sub="teacher", info=info, host=True))
        peers += [a, b, student, teacher]
        assert (await student.expect("host_changed"))["host_id"] == teacher.id
        soon = round(time.time() + 3, 3)
        assert await admin.call("PUT", room_path(ending, "deadline"), {"ends_at": soon}) == (
            200, {"ends_at": soon})

        # Killed right after renewing its lease: the shard has no relay for ~4 s, and the
        # deadline passes meanwhile.
        shard = keys.shard_of(keys.room_digest(ending), SHARDS)
        await kill_after_renewal(victim, redis, keys.shard_lease(shard), 10, "a lease renewal")
        await expect_removed(a, "expired")
        await expect_removed(b, "expired")
        assert time.time() >= soon
        assert (await admin.call("GET", room_path(ending)))[0] == 404
        assert [k for k in await redis.keys("*") if a.id.encode() in k or b.id.encode() in k
                ] == []

        # The class lives on under the relay that took it: same host, same identities.
        status, details = await admin.call("GET", room_path(lasting))
        assert status == 200 and details["host_id"] == teacher.id
        assert [(m["user"], m["info"]) for m in details["members"]] == [
            ("student", None), ("teacher", info)]
        late, frame = await joined(cluster.url(0), lasting, token=minted(lasting))
        peers.append(late)
        assert frame["host_id"] == teacher.id
        assert frame["peers"] == [{"peer_id": teacher.id, "status": {}, "user": "teacher",
                                   "info": info}]
        assert tracebacks(cluster) == {}
    finally:
        for peer in peers:
            await peer.close()
        await redis.aclose()


@pytest.mark.parametrize("own_cluster", [ADMIN_ENV], indirect=True)
async def test_no_relay_is_503_a_stalled_relay_is_504_and_no_redis_is_503(
        own_cluster: Cluster) -> None:
    cluster = own_cluster
    admin = Admin(cluster.gateways[0][1])
    room = f"stalled-{cluster.relays[0].pid}"
    peer, _ = await joined(cluster.url(1), room, token=minted(room))
    try:
        # Relays that hold their leases but apply nothing: the action times out...
        for relay in cluster.relays:
            relay.signal(signal.SIGSTOP)
        started = time.monotonic()
        status, body = await admin.call("POST", room_path(room, "remove"),
                                        {"peer_id": peer.id})
        assert (status, body) == (504, {"error": "not applied within 5 s"})
        assert 4.5 < time.monotonic() - started < 10
        # ...and is applied once they run again: 504 says "not yet", not "never".
        for relay in cluster.relays:
            relay.signal(signal.SIGCONT)
        await expect_removed(peer, "removed")

        # Stopped relays give their shards back: an action finds no relay (503), a read
        # still answers from what Redis holds.
        for relay in cluster.relays:
            assert relay.stop() == 0
        status, body = await admin.call("POST", room_path(room, "close"))
        shard = keys.shard_of(keys.room_digest(room), SHARDS)
        assert (status, body) == (503, {"error": "service unavailable",
                                        "reasons": [f"no relay holds shard {shard}"]})
        assert (await admin.call("GET", "/admin/rooms"))[0] == 200

        cluster.redis.process.stop()
        status, body = await admin.call("GET", "/admin/rooms")
        assert status == 503 and body["error"] == "service unavailable", body
        assert body["reasons"][0].startswith("redis: "), body
        assert (await admin.call("POST", room_path(room, "close")))[0] == 503
    finally:
        for relay in cluster.relays:
            relay.signal(signal.SIGCONT)
        await peer.close()
