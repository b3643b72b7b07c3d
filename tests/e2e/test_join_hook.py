"""The join hook end to end (docs/protocol.md, "Join hook"): gateways of their own, on the
shared cluster's Redis and relays, ask a receiver of the test's own (a real HTTP server
checking every signature) before each join."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import jwt
import pytest
import websockets

from harness.processes import Cluster, Process, http_get
from tests.e2e.hook_receiver import SECRET, HookReceiver, allow
from tests.peers import Peer

JOIN_SECRET = "a-join-secret-for-the-hook-tests-32b"
COOKIE = "session=s3cr3t-cookie-value"


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[HookReceiver]:
    async with HookReceiver() as started:
        yield started


@pytest.fixture
def answers(receiver: HookReceiver) -> Iterator[HookReceiver]:
    """The receiver, cleared, answering `allow` unless the test says otherwise."""
    receiver.received.clear()
    receiver.answer = allow
    yield receiver
    receiver.answer = allow


@pytest.fixture(scope="module")
def gateways(cluster: Cluster, receiver: HookReceiver) -> Iterator[dict[str, tuple[Process, int]]]:
    hook = {"SWITCHBOARD_JOIN_HOOK_URL": receiver.url, "SWITCHBOARD_WEBHOOK_SECRET": SECRET,
            "SWITCHBOARD_JOIN_HOOK_HEADERS": "Cookie,authorization",
            "SWITCHBOARD_JOIN_HOOK_TIMEOUT_MS": "500"}
    started = {"hook": cluster.start_gateway(**hook),
               "both": cluster.start_gateway(**hook, SWITCHBOARD_JOIN_SECRET=JOIN_SECRET)}
    yield started
    for process, port in started.values():
        assert process.stop() == 0
        cluster.gateways.remove((process, port))
    for process, _ in started.values():
        log = process.log()
        assert "s3cr3t-cookie-value" not in log and JOIN_SECRET not in log
        assert SECRET.removeprefix("whsec_") not in log


def url(gateways: dict[str, tuple[Process, int]], name: str = "hook") -> str:
    return f"ws://127.0.0.1:{gateways[name][1]}/"


async def connect(address: str, **headers: str) -> Peer:
    ws = await websockets.connect(address, additional_headers=headers, open_timeout=5)
    return Peer(ws)


def answering(status: int, body: Any, delay: float = 0.0) -> Any:
    async def answer(_: dict[str, Any]) -> tuple[int, Any]:
        if delay:
            await asyncio.sleep(delay)
        return status, body
    return answer


async def test_the_app_admits_by_cookie_and_says_who_the_peer_is(
        gateways: dict[str, tuple[Process, int]], answers: HookReceiver, room: str) -> None:
    answers.answer = answering(200, {"allow": True, "user": "u-17", "info": {"name": "Ann"},
                                     "host": True})
    peer = await connect(url(gateways), Cookie=COOKIE, Authorization="Bearer app-token",
                         Origin="https://app.example.com", **{"X-Other": "not forwarded"})
    try:
        await peer.send(event="join_room", room_id=room, status={"name": "A"})
        joined = await peer.expect("joined_room")
        assert (joined["user"], joined["info"]) == ("u-17", {"name": "Ann"})
        (asked,) = answers.received
        assert asked.body == {"room": room, "peer_id": joined["own_id"],
                              "status": {"name": "A"}, "origin": "https://app.example.com",
                              "headers": {"cookie": COOKIE,
                                          "authorization": "Bearer app-token"}}
        assert asked.headers["webhook-id"].startswith("msg_")
        assert abs(int(asked.headers["webhook-timestamp"]) - time.time()) < 30
        assert answers.bad_signatures == 0
    finally:
        await peer.close()


@pytest.mark.parametrize(("status", "body", "delay"), [
    (200, {"allow": False}, 0.0), (403, {"allow": True}, 0.0), (500, {}, 0.0),
    (200, {"allow": True, "user": ""}, 0.0), (200, {"allow": True, "host": "yes"}, 0.0),
    (200, ["allow"], 0.0), (200, {"allow": True}, 1.5),  # past the 500 ms timeout
])
async def test_anything_but_an_allow_in_time_is_not_allowed_and_the_socket_stays(
        gateways: dict[str, tuple[Process, int]], answers: HookReceiver, room: str,
        status: int, body: Any, delay: float) -> None:
    answers.answer = answering(status, body, delay)
    peer = await connect(url(gateways))
    try:
        await peer.send(event="join_room", room_id=room)
        await peer.expect_error("not allowed", "join_room")
        await peer.assert_alive()
        # In no room: the next join is asked again, and taken.
        answers.answer = allow
        await peer.join(room)
    finally:
        await peer.close()


async def test_frames_sent_behind_a_join_wait_for_its_answer_in_order(
        gateways: dict[str, tuple[Process, int]], answers: HookReceiver, room: str) -> None:
    answers.answer = answering(200, {"allow": True}, 0.2)
    peer = await connect(url(gateways))
    try:
        await peer.send(event="join_room", room_id=room)
        await peer.send(event="update_status", status={"name": "Bo"})
        await peer.send(event="ping")  # the gateway's own answer: not held
        assert await peer.recv() == {"event": "pong"}
        joined = await peer.expect("joined_room")
        updated = await peer.expect("peer_updated_status")
        assert updated == {"event": "peer_updated_status", "status": {"name": "Bo"},
                           "sender_id": joined["own_id"]}
    finally:
        await peer.close()


async def test_a_socket_gone_before_the_answer_leaves_no_member(
        gateways: dict[str, tuple[Process, int]], answers: HookReceiver, room: str) -> None:
    answered = asyncio.Event()

    async def slow_app(_: dict[str, Any]) -> tuple[int, Any]:
        await asyncio.sleep(0.3)  # a slow app: the socket closes before it answers
        answered.set()
        return 200, {"allow": True}

    answers.answer = slow_app
    gone = await connect(url(gateways))
    await gone.send(event="join_room", room_id=room)
    await gone.close()
    await asyncio.wait_for(answered.wait(), 5)
    answers.answer = allow
    late = await connect(url(gateways))
    try:
        joined = await late.join(room)  # asked after the first answer: applied after it
        assert joined["peers"] == []
    finally:
        await late.close()


async def test_a_resume_is_not_asked(gateways: dict[str, tuple[Process, int]],
                                     answers: HookReceiver, room: str) -> None:
    peer = await connect(url(gateways))
    again = await connect(url(gateways))
    try:
        await peer.send(event="join_room", room_id=room, resumable=True)
        joined = await peer.expect("joined_room")
        peer.ws.transport.abort()
        await again.send(event="resume", resume_token=joined["resume_token"], last_frame_seq=0)
        assert (await again.expect("joined_room"))["resumed"]
        assert len(answers.received) == 1
    finally:
        await peer.close()
        await again.close()


async def test_with_join_tokens_a_join_needs_both_and_the_hook_has_the_last_word(
        gateways: dict[str, tuple[Process, int]], answers: HookReceiver, room: str) -> None:
    peer = await connect(url(gateways, "both"))
    try:
        await peer.send(event="join_room", room_id=room)  # no token: the app is not asked
        await peer.expect_error("not allowed", "join_room")
        assert answers.received == []
        token = jwt.encode({"room": room, "exp": int(time.time()) + 60, "sub": "from-token",
                            "info": {"name": "Token"}}, JOIN_SECRET)
        answers.answer = answering(200, {"allow": True, "user": "from-hook"})
        await peer.send(event="join_room", room_id=room, token=token)
        joined = await peer.expect("joined_room")
        assert answers.received[0].body["token"] == token
        # The answer's claims take the place of the token's.
        assert joined["user"] == "from-hook" and "info" not in joined
    finally:
        await peer.close()


async def test_answers_are_counted_by_outcome(gateways: dict[str, tuple[Process, int]],
                                               answers: HookReceiver, room: str) -> None:
    peer = await connect(url(gateways))
    try:
        await peer.join(room)
    finally:
        await peer.close()
    _, _, text = http_get(gateways["hook"][1], "/metrics")
    assert 'switchboard_join_hook_answers_total{outcome="allowed"}' in text
    assert 'switchboard_join_hook_answers_total{outcome="timeout"}' in text
    assert "switchboard_join_hook_seconds_count" in text
