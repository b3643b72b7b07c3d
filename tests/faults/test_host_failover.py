"""The host of a room survives its relay: a kill -9, then a graceful takeover.

The host is the longest-present member, decided by the relay that holds the room's shard.
A relay that takes the shard over reads the members back from Redis with their join order,
so it must name the same host, show star clients the same one, and pass the role on to the
same member when the host leaves.
"""

from __future__ import annotations

import asyncio
import signal

import pytest
from redis.asyncio import Redis

from harness.processes import Cluster, eventually
from shared import keys
from tests.faults.support import (
    SHARDS,
    holders,
    kill_after_renewal,
    pid_of,
    relays_hold_every_shard,
    rooms_held_by,
)
from tests.peers import Peer

pytestmark = pytest.mark.timeout(90)

LEASE_TTL_S = 4.0  # the default SWITCHBOARD_LEASE_TTL_MS


async def join(peer: Peer, room: str, topology: str | None = None) -> dict[str, object]:
    fields = {} if topology is None else {"topology": topology}
    await peer.send(event="join_room", room_id=room, **fields)
    joined = await peer.expect("joined_room", timeout=15)
    peer.id = joined["own_id"]
    return joined


async def test_the_host_is_unchanged_across_a_relay_kill_and_a_takeover(
        own_cluster: Cluster) -> None:
    cluster = own_cluster
    redis = Redis.from_url(cluster.redis.url)
    sockets: list[Peer] = []

    async def connect(n: int) -> list[Peer]:
        more = [await Peer.connect(cluster.url(i % 2)) for i in range(n)]
        sockets.extend(more)
        return more

    try:
        await eventually(lambda: relays_hold_every_shard(redis, 2), 20,
                         "both relays to hold shards")
        lease_of = await holders(redis)
        victim = cluster.relays[0]
        victim_id = next(h for h in lease_of if h and pid_of(h) == victim.pid)
        mesh_room, star_room = rooms_held_by(lease_of, victim_id, 2)

        # Each room: a host and two more members, on both gateways.
        mesh = await connect(3)
        star = await connect(3)
        for peer in mesh:
            await join(peer, mesh_room)
        await join(star[0], star_room, "star")
        for peer in star[1:]:
            await join(peer, star_room)
        hosts = {mesh_room: mesh[0].id, star_room: star[0].id}

        await kill_after_renewal(victim, redis, keys.all_leases(SHARDS)[lease_of.index(
            victim_id)], LEASE_TTL_S, "the victim to renew its leases")
        # Joins while the rooms' shards have no relay: applied by the next holder.
        mesh_late, star_late = await connect(2)
        await mesh_late.send(event="join_room", room_id=mesh_room)
        await star_late.send(event="join_room", room_id=star_room)
        for late, room in ((mesh_late, mesh_room), (star_late, star_room)):
            joined = await late.expect("joined_room", timeout=15)
            late.id = joined["own_id"]
            assert joined["host_id"] == hosts[room], room
        assert joined["peers"] == [{"peer_id": star[0].id, "status": {}}]  # the star one

        # A graceful takeover next: a third relay comes, the survivor stops (SIGTERM).
        survivor = cluster.relays[1]
        newcomer = cluster.start_relay()

        async def all_held_by_newcomer() -> bool:
            now = await holders(redis)
            return all(h is not None and pid_of(h) == newcomer.pid for h in now)

        survivor.signal(signal.SIGTERM)
        assert await asyncio.to_thread(survivor.wait, 15) == 0
        await eventually(all_held_by_newcomer, 15, "the third relay to hold every shard")
        checks = await connect(2)
        for peer, room in zip(checks, (mesh_room, star_room), strict=True):
            joined = await join(peer, room)
            assert joined["host_id"] == hosts[room], room

        # The role passes on as before the faults: to the longest-present member.
        for peer in (mesh[0], star[0]):
            await peer.send(event="leave_room")
        later = [mesh[2], mesh_late, checks[0]]
        assert [f["peer_id"] for f in [await mesh[1].expect("new_peer") for _ in later]] == [
            p.id for p in later]
        assert await mesh[1].recv() == {"event": "peer_left", "sender_id": mesh[0].id}
        changed = await mesh[1].expect("host_changed")
        assert (changed["host_id"], [p["peer_id"] for p in changed["peers"]]) == (
            mesh[1].id, [p.id for p in later])
        for client in star[1:]:  # star clients heard nothing of the joins
            assert await client.recv() == {"event": "peer_left", "sender_id": star[0].id}
        changed = await star[1].expect("host_changed")
        assert (changed["host_id"], [p["peer_id"] for p in changed["peers"]]) == (
            star[1].id, [star[2].id, star_late.id, checks[1].id])
        assert await star[2].expect("host_changed") == {
            "event": "host_changed", "host_id": star[1].id,
            "peers": [{"peer_id": star[1].id, "status": {}}]}
    finally:
        for peer in sockets:
            await peer.close()
        await redis.aclose()
