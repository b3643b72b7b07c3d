"""Resume (docs/protocol.md, "Resume") end to end over the shared cluster's 2 gateways and 2
relays: a dropped socket resumes on the other gateway and gets every frame it lacks,
exactly once and in order, and the other members see nothing. Each test reports what it
sent, replayed, lost and duplicated (`record`). The faults (a gateway or relay killed, the
grace period, the bound) are in tests/faults/test_resume_faults.py.
"""

from __future__ import annotations

import pytest

from harness.processes import Cluster, eventually
from shared import keys
from tests.e2e import both_redis
from tests.e2e.both_redis import command_on, keys_of
from tests.faults.support import record
from tests.peers import Peer
from tests.resume_support import ResumablePeer, Tally, closed_code, pair, send_messages

# Every test here on a single Redis and on a Redis Cluster.
cluster = both_redis.cluster


async def test_numbered_frames_and_a_token_in_joined_room(cluster: Cluster, room: str) -> None:
    a, b = await pair(cluster, room)
    try:
        assert len(a.token.rsplit(".", 1)[1]) == 22  # 128 random bits, base64url
        await b.send(event="update_status", status={"name": "Bo"})
        update = await a.expect("peer_updated_status")
        assert update["frame_seq"] == 2
        assert "frame_seq" not in await b.recv()  # a plain peer's frames are not numbered
        # Direct replies are not numbered either.
        await a.peer.send(event="ping")
        assert await a.recv() == {"event": "pong"}
        await a.peer.send(event="send_to_peer", peer_id="nobody", data={"event": "offer"})
        assert "frame_seq" not in await a.expect("error")
    finally:
        await a.close()
        await b.close()


async def test_a_cut_connection_resumes_on_the_other_gateway(cluster: Cluster,
                                                             room: str) -> None:
    a, b = await pair(cluster, room)
    tally = Tally()
    first_token = a.token
    try:
        await send_messages(b, a.id, tally, 20)
        await a.messages_until(tally, 19)
        a.drop()
        await send_messages(b, a.id, tally, 20)  # some hit the old socket, some none
        tally.resuming()
        joined = await a.resume(cluster.url(1))
        assert joined["peers"] == [{"peer_id": b.id, "status": {}}]
        assert joined["host_id"] == a.id
        await a.messages_until(tally, 39)
        await send_messages(b, a.id, tally, 10)  # live traffic, numbered on
        await a.messages_until(tally, 49)
        figures = tally.figures()
        record("test_a_cut_connection_resumes_on_the_other_gateway",
               fault="socket cut, resumed on the other gateway", **figures)
        assert (tally.lost, tally.duplicated, tally.in_order) == (0, 0, True)
        assert tally.replayed == 20
        await b.assert_alive()  # and b never heard of it: no peer_left, no new_peer
        # Resume tokens are never logged, by any process.
        logs = "".join(process.log() for process, _ in cluster.gateways) + "".join(
            relay.log() for relay in cluster.relays)
        assert first_token not in logs and a.token not in logs
    finally:
        await a.close()
        await b.close()


async def test_frames_lost_in_flight_are_replayed(cluster: Cluster, room: str) -> None:
    a, b = await pair(cluster, room)
    tally = Tally()
    try:
        await send_messages(b, a.id, tally, 10)
        await a.messages_until(tally, 9)
        # The last 4 frames were written to the socket but never reached the client.
        lost_in_flight = a.frames[-4:]
        tally.forget(lost_in_flight)
        a.drop()
        tally.resuming()
        await a.resume(cluster.url(1), last_seq=lost_in_flight[0]["frame_seq"] - 1)
        await a.messages_until(tally, 9)
        record("test_frames_lost_in_flight_are_replayed",
               fault="frames lost in flight, resume names an older frame_seq",
               **tally.figures())
        assert (tally.lost, tally.duplicated, tally.in_order, tally.replayed) == (0, 0, True, 4)
        await b.assert_alive()
    finally:
        await a.close()
        await b.close()


async def test_a_resume_while_the_old_socket_lives_takes_it_over(cluster: Cluster,
                                                                 room: str) -> None:
    a, b = await pair(cluster, room)
    old = a.peer
    tally = Tally()
    try:
        await send_messages(b, a.id, tally, 3)
        await a.messages_until(tally, 2)
        tally.resuming()
        await a.resume(cluster.url(1))
        assert await closed_code(old) == 4001
        await send_messages(b, a.id, tally, 3)
        await a.messages_until(tally, 5)
        # The old socket's close changed nothing: a is still in the room, and b saw nothing.
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 6})
        tally.sent.append(6)
        await a.messages_until(tally, 6)
        assert (tally.lost, tally.duplicated) == (0, 0)
        await b.assert_alive()
    finally:
        await a.close()
        await old.close()
        await b.close()


async def test_a_spent_or_forged_token_cannot_resume(cluster: Cluster, room: str) -> None:
    a, b = await pair(cluster, room)
    spent = a.token
    try:
        a.drop()
        await a.resume(cluster.url(1))
        forged = spent.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
        for token in (spent, forged, "not a token at all"):
            thief = await Peer.connect(cluster.url(0))
            await thief.send(event="resume", resume_token=token, last_frame_seq=0)
            await thief.expect_error("cannot resume", "resume")
            await thief.assert_alive()  # the connection stays open, in no room
            await thief.send(event="update_status", status={})
            await thief.expect_error("currently not in any room", "update_status")
            await thief.close()
        # The peer itself carries on, untouched.
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 0})
        assert (await a.expect("message"))["n"] == 0
        await b.assert_alive()
    finally:
        await a.close()
        await b.close()


async def test_resume_refusals_of_the_frame_itself(cluster: Cluster, room: str) -> None:
    a, b = await pair(cluster, room)
    try:
        # In a room already: as a second join would be.
        await a.peer.send(event="resume", resume_token=a.token, last_frame_seq=0)
        await a.peer.expect_error("already joined another room", "resume")
        # A frame_seq never sent: refused, the peer unharmed.
        other = await Peer.connect(cluster.url(1))
        await other.send(event="resume", resume_token=a.token, last_frame_seq=99)
        await other.expect_error("cannot resume", "resume")
        await other.close()
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 0})
        assert (await a.expect("message"))["n"] == 0
    finally:
        await a.close()
        await b.close()


async def test_the_host_and_status_survive_a_resume(cluster: Cluster, room: str) -> None:
    a = await ResumablePeer.join(cluster.url(0), room, status={"name": "Ann"},
                                 topology="star")
    b = await Peer.connect(cluster.url(1))
    try:
        joined = await b.join(room)
        assert joined["host_id"] == a.id
        await a.expect("new_peer")
        a.drop()
        resumed = await a.resume(cluster.url(1))
        assert (resumed["host_id"], resumed["topology"]) == (a.id, "star")
        assert resumed["peers"] == [{"peer_id": b.id, "status": {}}]
        c = await Peer.connect(cluster.url(0))
        seen = await c.join(room)
        assert seen["host_id"] == a.id and seen["peers"] == [
            {"peer_id": a.id, "status": {"name": "Ann"}}]
        await c.close()
    finally:
        await a.close()
        await b.close()


async def test_nothing_is_left_in_redis_once_the_peer_has_left(
        cluster: Cluster, room: str) -> None:
    redis = cluster.redis
    a, b = await pair(cluster, room)
    digest = keys.room_digest(room)
    shard = keys.shard_of(digest, 64)
    kept = keys.kept_frames(shard, a.id)
    try:
        await send_messages(b, a.id, Tally(), 3)
        await eventually(lambda: command_on(redis, "exists", kept, raw=True).strip() == "1", 5,
                         "frames kept for the resumable peer")
        a.drop()
        await a.resume(cluster.url(1))
        await a.peer.send(event="leave_room")
        assert await b.recv() == {"event": "peer_left", "sender_id": a.id}
        await b.send(event="leave_room")

        def remains() -> list[str]:
            found = keys_of(redis, f"*{{s{shard}}}*")
            return [key for key in found if digest in key or a.id in key]

        await eventually(lambda: remains() == [], 5, "no key of the room or its peers")
        assert command_on(redis, "hexists", keys.frame_counters(shard), a.id,
                          raw=True).strip() == "0"
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("resumable", [True, False])
async def test_leave_room_is_a_leave_whether_resumable_or_not(
        cluster: Cluster, room: str, resumable: bool) -> None:
    a = await Peer.connect(cluster.url(0))
    b = await Peer.connect(cluster.url(1))
    try:
        await a.send(event="join_room", room_id=room, resumable=resumable)
        a.id = (await a.expect("joined_room"))["own_id"]
        await b.join(room)
        await a.expect("new_peer")
        await a.send(event="leave_room")
        assert await b.recv() == {"event": "peer_left", "sender_id": a.id}
    finally:
        await a.close()
        await b.close()
