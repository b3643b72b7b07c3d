"""Hosts and star rooms (docs/protocol.md, "Host" and "Star rooms"), end to end: real gateways
and relays on a private Redis, real WebSocket clients on both gateways.

The shared cluster has mesh capacity 3 and star capacity `STAR_CAPACITY` (120). As in
test_protocol.py, nothing sleeps: "nothing else arrived" is shown by the next frame on a
socket being the answer to a later request (`Peer.assert_alive`, `assert_star_intact`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from harness.processes import Cluster
from tests.conftest import STAR_CAPACITY
from tests.e2e import both_redis
from tests.peers import Peer

# Every test here on a single Redis and on a Redis Cluster.
cluster = both_redis.cluster

ANN = {"name": "Ann", "user_agent": "chrome"}
BOB = {"name": "Bob"}
OFFER = {"event": "offer", "sdp": {"type": "offer", "sdp": "v=0"}}


@pytest.fixture
async def crowd(cluster: Cluster) -> AsyncIterator[list[Peer]]:
    """Six connected peers, alternating between the two gateways."""
    connected = await asyncio.gather(*(Peer.connect(cluster.url(i % 2)) for i in range(6)))
    yield list(connected)
    for peer in connected:
        await peer.close()


def ids(peer: Peer) -> str:
    assert peer.id is not None
    return peer.id


def entry(peer: Peer, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"peer_id": ids(peer), "status": status or {}}


async def join_star(host: Peer, clients: list[Peer], room: str) -> None:
    """`host` opens a star room, then `clients` join it one by one (naming no topology:
    a join that names none takes the room's); the host hears of each."""
    joined = await join(host, room, topology="star")
    assert joined == {"event": "joined_room", "own_id": host.id, "peers": [],
                      "host_id": host.id, "topology": "star"}
    for client in clients:
        joined = await join(client, room)
        assert joined == {"event": "joined_room", "own_id": client.id, "peers": [entry(host)],
                          "host_id": host.id, "topology": "star"}
        assert await host.recv() == {"event": "new_peer", "peer_id": client.id, "status": {}}


async def join(peer: Peer, room: str, status: dict[str, Any] | None = None,
               **fields: Any) -> dict[str, Any]:
    await peer.send(event="join_room", room_id=room, status=status or {}, **fields)
    joined = await peer.expect("joined_room")
    peer.id = joined["own_id"]
    return joined


async def assert_star_intact(host: Peer, clients: list[Peer]) -> None:
    """Nothing else is pending anywhere, and the host still hears every client: each client
    sends an empty status update, which reaches the host and that client only."""
    for client in clients:
        await client.send(event="update_status", status={})
        update = await client.expect("peer_updated_status")
        assert update["sender_id"] == client.id
        assert await host.recv() == update
    for client in clients:
        await client.assert_alive()


# --- the host, in mesh rooms -----------------------------------------------------------


async def test_joined_room_names_the_host_and_the_topology(peers: list[Peer], room: str) -> None:
    a, b, c = peers[0], peers[1], peers[2]
    first = await join(a, room)
    assert (first["host_id"], first["topology"]) == (a.id, "mesh")
    assert (await join(b, room))["host_id"] == a.id
    await a.expect("new_peer")
    assert (await join(c, room, topology="mesh"))["host_id"] == a.id


@pytest.mark.parametrize("how", ["leave_room", "close"])
async def test_when_the_host_goes_the_longest_present_member_is_host(
        peers: list[Peer], room: str, how: str) -> None:
    a, b, c, d = peers
    await join(a, room, ANN)
    await join(b, room, BOB)
    await a.expect("new_peer")
    await join(c, room)
    await a.expect("new_peer")
    await b.expect("new_peer")
    if how == "close":
        await a.close()
    else:
        await a.send(event="leave_room")
    for member, others in ((b, [c]), (c, [b])):
        assert await member.recv() == {"event": "peer_left", "sender_id": a.id}
        assert await member.recv() == {
            "event": "host_changed", "host_id": b.id,
            "peers": [entry(o, BOB if o is b else None) for o in others]}
    # A later joiner is told the same host; the old one has a place free (capacity 3).
    joined = await join(d, room)
    assert joined["host_id"] == b.id
    assert joined["peers"] == [entry(b, BOB), entry(c)]
    if how == "leave_room":
        await a.assert_alive()  # the old host hears nothing of the room any more


async def test_a_non_host_leaving_changes_no_host(peers: list[Peer], room: str) -> None:
    a, b, c, _ = peers
    await join(a, room)
    await join(b, room)
    await a.expect("new_peer")
    await join(c, room)
    await a.expect("new_peer")
    await b.expect("new_peer")
    await b.send(event="leave_room")
    assert await a.recv() == {"event": "peer_left", "sender_id": b.id}
    assert await c.recv() == {"event": "peer_left", "sender_id": b.id}
    await a.assert_alive()
    await c.assert_alive()
    # And the host is still the first: it leaving makes c host.
    await a.send(event="leave_room")
    assert await c.recv() == {"event": "peer_left", "sender_id": a.id}
    assert await c.recv() == {"event": "host_changed", "host_id": c.id, "peers": []}


# --- star rooms -----------------------------------------------------------------------------


async def test_clients_see_only_the_host_and_only_the_host_hears_of_them(
        crowd: list[Peer], room: str) -> None:
    host, c1, c2, c3 = crowd[:4]
    await join_star(host, [c1, c2], room)
    # A third client: only the host hears of it, with its status.
    joined = await join(c3, room, BOB, topology="star")
    assert joined["peers"] == [entry(host)]
    assert await host.recv() == {"event": "new_peer", "peer_id": c3.id, "status": BOB}
    await assert_star_intact(host, [c1, c2, c3])


async def test_a_clients_leave_and_close_reach_the_host_only(crowd: list[Peer], room: str
                                                             ) -> None:
    host, c1, c2, c3 = crowd[:4]
    await join_star(host, [c1, c2, c3], room)
    await c1.send(event="leave_room")
    assert await host.recv() == {"event": "peer_left", "sender_id": c1.id}
    await c2.close()
    assert await host.recv() == {"event": "peer_left", "sender_id": c2.id}
    await assert_star_intact(host, [c3])
    await c1.assert_alive()


async def test_statuses_in_a_star_room(crowd: list[Peer], room: str) -> None:
    host, c1, c2 = crowd[:3]
    await join_star(host, [c1, c2], room)
    # A client's update: the host and the client itself.
    await c1.send(event="update_status", status={"name": "Cy"})
    update = {"event": "peer_updated_status", "status": {"name": "Cy"}, "sender_id": c1.id}
    assert await c1.recv() == update
    assert await host.recv() == update
    await c2.assert_alive()
    # The host's update: everyone.
    await host.send(event="update_status", status={"name": "Hal"})
    update = {"event": "peer_updated_status", "status": {"name": "Hal"}, "sender_id": host.id}
    for member in (host, c1, c2):
        assert await member.recv() == update
    # A later client sees the host's current status, and nothing of c1.
    late = crowd[3]
    assert (await join(late, room))["peers"] == [entry(host, {"name": "Hal"})]


async def test_who_may_address_whom(crowd: list[Peer], room: str) -> None:
    host, c1, c2 = crowd[:3]
    await join_star(host, [c1, c2], room)
    for sender, target in ((c1, host), (host, c2), (c1, c1), (host, host)):
        await sender.send(event="send_to_peer", peer_id=target.id, data=OFFER)
        assert await target.recv() == {**OFFER, "sender_id": sender.id}
    # Clients cannot reach each other through the server, whichever gateway they are on.
    for sender, target in ((c1, c2), (c2, c1)):
        await sender.send(event="send_to_peer", peer_id=target.id, data=OFFER)
        await sender.expect_error("unknown peer", "send_to_peer")
    await assert_star_intact(host, [c1, c2])


@pytest.mark.parametrize("how", ["leave_room", "close"])
async def test_handover_in_a_star_room(crowd: list[Peer], room: str, how: str) -> None:
    host, c1, c2, c3, late = crowd[:5]
    await join(host, room, ANN, topology="star")
    for client, status in ((c1, BOB), (c2, None), (c3, {"user_agent": "firefox"})):
        await join(client, room, status)
        await host.expect("new_peer")
    if how == "close":
        await host.close()
    else:
        await host.send(event="leave_room")
    for member in (c1, c2, c3):
        assert await member.recv() == {"event": "peer_left", "sender_id": host.id}
    # The new host (the longest present) sees every other member; the rest see it alone.
    assert await c1.recv() == {"event": "host_changed", "host_id": c1.id,
                               "peers": [entry(c2), entry(c3, {"user_agent": "firefox"})]}
    for member in (c2, c3):
        assert await member.recv() == {"event": "host_changed", "host_id": c1.id,
                                       "peers": [entry(c1, BOB)]}
    # From here the room works around the new host, as a fresh join shows it.
    await c2.send(event="send_to_peer", peer_id=c1.id, data=OFFER)
    assert await c1.recv() == {**OFFER, "sender_id": c2.id}
    await c2.send(event="send_to_peer", peer_id=c3.id, data=OFFER)
    await c2.expect_error("unknown peer", "send_to_peer")
    joined = await join(late, room)
    assert (joined["host_id"], joined["peers"]) == (c1.id, [entry(c1, BOB)])
    assert await c1.recv() == {"event": "new_peer", "peer_id": late.id, "status": {}}
    await assert_star_intact(c1, [c2, c3, late])


@pytest.mark.parametrize("opened, named", [("star", "mesh"), ("mesh", "star"), ("star", "ring"),
                                           ("mesh", 5), ("star", "")])
async def test_wrong_topology_is_refused_and_the_socket_carries_on(
        crowd: list[Peer], room: str, opened: str, named: Any) -> None:
    first, second, third = crowd[:3]
    await join(first, room, topology=opened)
    await second.send(event="join_room", room_id=room, topology=named)
    await second.expect_error("wrong topology", "join_room")
    # Refused: in no room, the socket open, the room unchanged.
    await second.send(event="update_status", status={})
    await second.expect_error("currently not in any room", "update_status")
    await first.assert_alive()
    joined = await join(third, room)
    assert (joined["topology"], joined["peers"]) == (opened, [entry(first)])
    await first.expect("new_peer")
    # And the refused socket may join what fits.
    assert (await join(second, room + "-x", topology=named if named in ("mesh", "star")
                       else None))["peers"] == []


async def test_a_star_room_past_the_mesh_limit(cluster: Cluster, room: str) -> None:
    """STAR_CAPACITY (> 100) members on both gateways: each client's join costs two frames
    (its joined_room, the host's new_peer) whatever the size, and one more is refused."""
    sockets = await asyncio.gather(*(Peer.connect(cluster.url(i % 2))
                                     for i in range(STAR_CAPACITY + 1)))
    host, clients, extra = sockets[0], list(sockets[1:-1]), sockets[-1]
    try:
        await join(host, room, topology="star")
        for client in clients:  # in turn, so that the join order is known
            joined = await join(client, room)
            assert joined["peers"] == [entry(host)] and joined["host_id"] == host.id
            assert await host.recv() == {"event": "new_peer", "peer_id": client.id,
                                         "status": {}}
        await extra.send(event="join_room", room_id=room)
        await extra.expect_error("room is full", "join_room")
        # No client heard of any other: each one's next frame answers its ping.
        await asyncio.gather(*(client.assert_alive() for client in clients))
        # The host's own change reaches all of them, one frame each.
        await host.send(event="update_status", status={"name": "Hal"})
        update = {"event": "peer_updated_status", "status": {"name": "Hal"},
                  "sender_id": host.id}
        assert all(frame == update for frame in await asyncio.gather(
            *(member.recv() for member in [host, *clients])))
        # A handover in a room this size: the next host gets every other member.
        await host.send(event="leave_room")
        await clients[0].expect("peer_left")
        changed = await clients[0].expect("host_changed")
        assert [p["peer_id"] for p in changed["peers"]] == [ids(c) for c in clients[1:]]
        for client in clients[1:]:
            await client.expect("peer_left")
            assert (await client.expect("host_changed"))["peers"] == [entry(clients[0])]
    finally:
        await asyncio.gather(*(peer.close() for peer in sockets))
