"""The admin API end to end (docs/protocol.md, "Admin API", "Removal", "Server messages",
"Deadlines"): two gateways with the admin key beside the shared cluster's, on its two
relays, on a single Redis and on a Redis Cluster. Every route is asked through both
gateways, which must give the same answer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.processes import Cluster, Process, free_port, http_get
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
from tests.e2e.both_redis import command_on, keys_of
from tests.peers import Peer


class Stack:
    def __init__(self, cluster: Cluster, gateways: list[tuple[Process, int]]) -> None:
        self.cluster = cluster
        self.gateways = gateways
        self.admins = [Admin(port) for _, port in gateways]

    def url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.gateways[index % 2][1]}/"

    async def same_answer(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Asked of both gateways (a read, or an action that changes nothing more the
        second time): both answers must be equal."""
        first = await self.admins[0].call(method, path, body)
        second = await self.admins[1].call(method, path, body)
        assert first == second, (first, second)
        return first


@pytest.fixture(scope="module", params=["redis_server", "redis_cluster"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    cluster: Cluster = request.getfixturevalue(f"cluster_on_{request.param}")
    started = [cluster.start_gateway(SWITCHBOARD_ADMIN_KEY=ADMIN_KEY,
                                     SWITCHBOARD_JOIN_SECRET=JOIN_SECRET) for _ in range(2)]
    yield Stack(cluster, started)
    for process, port in started:
        assert process.stop() == 0
        cluster.gateways.remove((process, port))
    for process, _ in started:
        log = process.log()
        assert ADMIN_KEY not in log and JOIN_SECRET not in log


async def close_all(*peers: Peer | None) -> None:
    for peer in peers:
        if peer is not None:
            await peer.close()


# --- reads ---------------------------------------------------------------------------------


async def test_rooms_and_members_are_listed_alike_by_both_gateways(stack: Stack,
                                                                     room: str) -> None:
    info = {"name": "Ms Tee"}
    started = time.time()
    teacher, _ = await joined(stack.url(0), room, topology="star", status={"name": "T"},
                              token=minted(room, sub="teacher", info=info, host=True))
    student, _ = await joined(stack.url(1), room, token=minted(room, sub="s-1"),
                              resumable=True)
    try:
        status, listing = await stack.same_answer("GET", "/admin/rooms")
        assert status == 200
        (mine,) = [r for r in listing["rooms"] if r["room"] == room]
        assert mine == {"room": room, "topology": "star", "members": 2,
                        "host_id": teacher.id, "started_at": mine["started_at"],
                        "ends_at": None}
        assert started - 2 <= mine["started_at"] <= time.time() + 2
        status, details = await stack.same_answer("GET", room_path(room))
        assert status == 200
        members = details.pop("members")
        assert details == {"room": room, "topology": "star", "host_id": teacher.id,
                           "started_at": mine["started_at"], "ends_at": None}
        assert [{k: v for k, v in m.items() if k != "joined_at"} for m in members] == [
            {"peer_id": teacher.id, "user": "teacher", "info": info, "status": {"name": "T"},
             "away": False},
            {"peer_id": student.id, "user": "s-1", "info": None, "status": {},
             "away": False}]
        # A resumable peer whose socket dropped is a member still, away.
        student.ws.transport.abort()

        async def away() -> bool:
            _, now = await stack.admins[0].call("GET", room_path(room))
            return bool(now["members"][1]["away"])
        deadline = time.monotonic() + 10
        while not await away():
            assert time.monotonic() < deadline, "the dropped peer never showed as away"
            await asyncio.sleep(0.05)
    finally:
        await close_all(teacher, student)


async def test_a_room_without_members_is_404(stack: Stack, room: str) -> None:
    assert await stack.same_answer("GET", room_path(room)) == (
        404, {"error": "room has no members"})
    for action, method in [("remove", "POST"), ("close", "POST"), ("message", "POST"),
                           ("deadline", "PUT")]:
        body = {"remove": {"peer_id": "x"}, "close": None, "message": {"data": {}},
                "deadline": {"ends_at": None}}[action]
        assert await stack.admins[1].call(method, room_path(room, action), body) == (
            404, {"error": "room has no members"}), action


async def test_room_names_with_slashes_and_unicode_are_found(stack: Stack, room: str) -> None:
    name = f"{room}/class 7b?ü#"
    peer, _ = await joined(stack.url(0), name, token=minted(name))
    try:
        status, details = await stack.same_answer("GET", room_path(name))
        assert status == 200 and details["room"] == name
    finally:
        await peer.close()


# --- grants ----------------------------------------------------------------------------------


async def test_when_the_granted_host_leaves_the_next_granted_member_takes_over_then_the_oldest(
        stack: Stack, room: str) -> None:
    s1, _ = await joined(stack.url(0), room, topology="star", token=minted(room, sub="s1"))
    t1, _ = await joined(stack.url(1), room, token=minted(room, sub="t1", host=True))
    assert (await s1.expect("host_changed"))["host_id"] == t1.id
    s2, _ = await joined(stack.url(0), room, token=minted(room, sub="s2"))
    t2, frame = await joined(stack.url(1), room, token=minted(room, sub="t2", host=True))
    try:
        assert frame["host_id"] == t1.id  # a granted host stays host
        for _ in range(2):
            await t1.expect("new_peer")
        await t1.send(event="leave_room")
        for peer in (s1, s2, t2):
            assert await peer.expect("peer_left") == {"event": "peer_left",
                                                      "sender_id": t1.id}
            changed = await peer.expect("host_changed")
            assert changed["host_id"] == t2.id, changed
        assert (await stack.same_answer("GET", room_path(room)))[1]["host_id"] == t2.id
        # No granted member left: the longest-present member is host.
        await t2.send(event="leave_room")
        for peer in (s1, s2):
            assert (await peer.expect("peer_left"))["sender_id"] == t2.id
            assert (await peer.expect("host_changed"))["host_id"] == s1.id
        assert (await stack.same_answer("GET", room_path(room)))[1]["host_id"] == s1.id
    finally:
        await close_all(s1, t1, s2, t2)


# --- removal ---------------------------------------------------------------------------------


async def test_a_removed_peer_is_told_and_closed_and_the_others_see_it_leave(
        stack: Stack, room: str) -> None:
    a, _ = await joined(stack.url(0), room, token=minted(room, sub="a"))
    b, _ = await joined(stack.url(1), room, token=minted(room, sub="b"), resumable=True)
    try:
        await a.expect("new_peer")
        assert await stack.admins[1].call("POST", room_path(room, "remove"),
                                          {"peer_id": b.id}) == (200, {"removed": [b.id]})
        await expect_removed(b, "removed")
        assert (await a.expect("peer_left"))["sender_id"] == b.id
        await a.assert_nothing_pending()
        # Removing it again (or through the other gateway) finds nobody.
        assert await stack.same_answer("POST", room_path(room, "remove"),
                                       {"peer_id": b.id}) == (200, {"removed": []})
        status, details = await stack.same_answer("GET", room_path(room))
        assert [m["peer_id"] for m in details["members"]] == [a.id]
    finally:
        await close_all(a, b)


async def test_removal_by_user_closes_every_tab_of_that_user(stack: Stack, room: str) -> None:
    tab1, _ = await joined(stack.url(0), room, token=minted(room, sub="mallory"))
    other, _ = await joined(stack.url(1), room, token=minted(room, sub="olivia"))
    tab2, _ = await joined(stack.url(1), room, token=minted(room, sub="mallory"))
    try:
        assert await stack.admins[0].call("POST", room_path(room, "remove"),
                                          {"user": "mallory"}) == (
            200, {"removed": [tab1.id, tab2.id]})
        await expect_removed(tab1, "removed")
        await expect_removed(tab2, "removed")
        left = set()
        while len(left) < 2:
            frame = await other.recv()
            if frame["event"] == "peer_left":
                left.add(frame["sender_id"])
        assert left == {tab1.id, tab2.id}
        # The one who stays is host now (told once, with its view), and still served.
        assert await other.expect("host_changed") == {"event": "host_changed",
                                                      "host_id": other.id, "peers": []}
        await other.assert_nothing_pending()
    finally:
        await close_all(tab1, other, tab2)


async def test_a_removed_peers_resume_token_is_void(stack: Stack, room: str) -> None:
    peer, frame = await joined(stack.url(0), room, resumable=True, token=minted(room))
    again = None
    try:
        assert (await stack.admins[0].call("POST", room_path(room, "remove"),
                                           {"peer_id": peer.id}))[0] == 200
        await expect_removed(peer, "removed")
        again = await Peer.connect(stack.url(1))
        await again.send(event="resume", resume_token=frame["resume_token"], last_frame_seq=0)
        await again.expect_error("cannot resume", "resume")
        await again.assert_alive()
    finally:
        await close_all(peer, again)


async def test_closing_a_room_removes_everyone_and_leaves_nothing_in_redis(
        stack: Stack, room: str) -> None:
    a, _ = await joined(stack.url(0), room, token=minted(room))
    b, _ = await joined(stack.url(1), room, token=minted(room), resumable=True)
    try:
        status, body = await stack.admins[1].call("POST", room_path(room, "close"))
        assert (status, sorted(body["removed"])) == (200, sorted([a.id, b.id]))
        for peer in (a, b):
            await expect_removed(peer, "closed")
        assert await stack.same_answer("GET", room_path(room)) == (
            404, {"error": "room has no members"})
        _, listing = await stack.admins[0].call("GET", "/admin/rooms")
        assert room not in [r["room"] for r in listing["rooms"]]
        # Nothing of the room is left: not its members, not its record, not its name.
        digest = keys.room_digest(room)
        leftovers = [k for k in keys_of(stack.cluster.redis)
                     if a.id in k or b.id in k or digest in k]
        assert leftovers == []
        shard_rooms = keys.shard_rooms(keys.shard_of(digest, 64))
        assert command_on(stack.cluster.redis, "SISMEMBER", shard_rooms, digest).strip() == (
            "(integer) 0")
        # A later join starts a new room.
        c, frame = await joined(stack.url(0), room, token=minted(room))
        assert frame["peers"] == [] and frame["host_id"] == c.id
        await c.close()
    finally:
        await close_all(a, b)


# --- server messages -------------------------------------------------------------------------


async def test_server_messages_reach_every_member_or_one_and_are_replayed_on_resume(
        stack: Stack, room: str) -> None:
    a, _ = await joined(stack.url(0), room, token=minted(room))
    r, frame = await joined(stack.url(1), room, token=minted(room), resumable=True)
    again = None
    try:
        await a.expect("new_peer")
        note = {"text": "five minutes left", "n": 1}
        status, body = await stack.admins[0].call("POST", room_path(room, "message"),
                                                  {"data": note})
        assert (status, sorted(body["delivered"])) == (200, sorted([a.id, r.id]))
        assert await a.expect("server_message") == {"event": "server_message", "data": note}
        got = await r.expect("server_message")
        assert got["data"] == note and got["frame_seq"] >= 1
        seen = got["frame_seq"]
        # To one peer, while its socket is gone: kept, and replayed when it resumes.
        r.ws.transport.abort()
        only = {"text": "for r alone"}
        assert await stack.admins[1].call("POST", room_path(room, "message"),
                                          {"data": only, "peer_id": r.id}) == (
            200, {"delivered": [r.id]})
        again = await Peer.connect(stack.url(0))
        await again.send(event="resume", resume_token=frame["resume_token"],
                         last_frame_seq=seen)
        assert (await again.expect("joined_room"))["resumed"]
        replayed = await again.expect("server_message")
        assert replayed["data"] == only and replayed["frame_seq"] == seen + 1
        await a.assert_nothing_pending()  # a got nothing of the second message
    finally:
        await close_all(a, r, again)


# --- deadlines -------------------------------------------------------------------------------


async def test_a_deadline_set_by_the_app_ends_the_room(stack: Stack, room: str) -> None:
    a, _ = await joined(stack.url(0), room, token=minted(room))
    b, _ = await joined(stack.url(1), room, token=minted(room))
    try:
        ends_at = round(time.time() + 1.5, 3)
        assert await stack.admins[0].call("PUT", room_path(room, "deadline"),
                                          {"ends_at": ends_at}) == (200, {"ends_at": ends_at})
        _, details = await stack.same_answer("GET", room_path(room))
        assert details["ends_at"] == ends_at
        await expect_removed(a, "expired")
        await expect_removed(b, "expired")
        assert time.time() >= ends_at - 0.05
        assert (await stack.admins[1].call("GET", room_path(room)))[0] == 404
    finally:
        await close_all(a, b)


async def test_a_token_deadline_starts_the_room_and_the_app_can_move_or_clear_it(
        stack: Stack, room: str) -> None:
    a, _ = await joined(stack.url(0), room, token=minted(room, room_ends_at=time.time() + 1))
    try:
        # Cleared before it passes: the room goes on.
        assert await stack.admins[1].call("PUT", room_path(room, "deadline"),
                                          {"ends_at": None}) == (200, {"ends_at": None})
        # A later token's deadline does not set one on a room that exists.
        b, _ = await joined(stack.url(1), room, token=minted(room, room_ends_at=time.time() + 1))
        await a.expect("new_peer")
        await asyncio.sleep(2)  # past both token deadlines: nothing may happen
        await a.assert_nothing_pending()
        await b.assert_nothing_pending()
        _, details = await stack.same_answer("GET", room_path(room))
        assert details["ends_at"] is None and len(details["members"]) == 2
        await b.close()
    finally:
        await a.close()


# --- errors, auth, metrics -------------------------------------------------------------------


@pytest.mark.parametrize(("method", "action", "raw"), [
    ("POST", "remove", b""), ("POST", "remove", b"[1]"), ("POST", "remove", b"{"),
    ("POST", "remove", b'{"peer_id":"a","user":"b"}'), ("POST", "remove", b'{"peer_id":7}'),
    ("POST", "remove", b'{"peer_id":""}'), ("POST", "remove", b'{"peerid":"a"}'),
    ("POST", "message", b'{"data":[1]}'), ("POST", "message", b'{"data":"hi"}'),
    ("POST", "message", b"{}"), ("POST", "message", b'{"data":{},"peer_id":1}'),
    ("PUT", "deadline", b"{}"), ("PUT", "deadline", b'{"ends_at":"tomorrow"}'),
    ("PUT", "deadline", b'{"ends_at":-1}'), ("PUT", "deadline", b'{"ends_at":true}'),
    ("POST", "close", b'{"now":true}'), ("POST", "message", b'\xff\xfe'),
])
async def test_a_bad_body_gets_400_with_a_clear_text(stack: Stack, room: str, method: str,
                                                      action: str, raw: bytes) -> None:
    peer, _ = await joined(stack.url(0), room, token=minted(room))
    try:
        status, body = await stack.admins[0].call(method, room_path(room, action), raw=raw)
        assert status == 400 and isinstance(body["error"], str) and body["error"], body
        await peer.assert_nothing_pending()  # nothing happened to the room
    finally:
        await peer.close()


@pytest.mark.parametrize("key", ["", "wrong-key", ADMIN_KEY + "x", ADMIN_KEY[:-1]])
async def test_a_request_without_the_key_gets_401(stack: Stack, key: str) -> None:
    for path in ["/admin/rooms", "/admin/rooms/x", "/admin/nothing"]:
        status, body = await Admin(stack.gateways[0][1], key).call("GET", path, key=key)
        assert (status, body) == (401, {"error": "missing or wrong bearer key"})


async def test_unknown_routes_and_methods(stack: Stack) -> None:
    admin = stack.admins[0]
    assert (await admin.call("GET", "/admin/users"))[0] == 404
    assert (await admin.call("GET", "/admin/rooms/x/kick"))[0] == 404
    assert (await admin.call("DELETE", "/admin/rooms/x"))[0] == 405
    assert (await admin.call("GET", "/admin/rooms/x/remove"))[0] == 405


async def test_requests_are_counted_by_route_and_status(stack: Stack, room: str) -> None:
    port = stack.gateways[1][1]
    await stack.admins[1].call("GET", room_path(room))
    await Admin(port, "nope").call("GET", "/admin/rooms", key="nope")
    status, _, text = http_get(port, "/metrics")
    assert status == 200
    assert 'switchboard_admin_requests_total{route="get_room",status="404"}' in text
    assert 'switchboard_admin_requests_total{route="unauthorized",status="401"}' in text
    assert 'switchboard_admin_request_seconds_count{route="get_room"}' in text


async def test_without_a_key_there_is_no_admin_api(stack: Stack) -> None:
    plain = stack.cluster.gateways[0][1]  # one of the shared gateways: no admin key
    status, _, _ = http_get(plain, "/admin/rooms")
    assert status == 404


async def test_on_an_admin_port_of_its_own_the_api_is_there_alone(
        cluster_on_redis_server: Cluster, room: str) -> None:
    cluster = cluster_on_redis_server
    admin_port = free_port()
    process, port = cluster.start_gateway(SWITCHBOARD_ADMIN_KEY=ADMIN_KEY,
                                          SWITCHBOARD_ADMIN_PORT=str(admin_port))
    try:
        assert (await Admin(port).call("GET", "/admin/rooms"))[0] == 404  # not public
        admin = Admin(admin_port)
        peer, _ = await joined(f"ws://127.0.0.1:{port}/", room)
        try:
            status, details = await admin.call("GET", room_path(room))
            assert status == 200 and details["members"][0]["peer_id"] == peer.id
            assert await admin.call("POST", room_path(room, "remove"),
                                    {"peer_id": peer.id}) == (200, {"removed": [peer.id]})
            await expect_removed(peer, "removed")
        finally:
            await peer.close()
        assert await Admin(admin_port, "nope").call("GET", "/admin/rooms", key="nope") == (
            401, {"error": "missing or wrong bearer key"})
        assert (await admin.call("GET", "/metrics"))[0] == 404
    finally:
        assert process.stop() == 0
        cluster.gateways.remove((process, port))
