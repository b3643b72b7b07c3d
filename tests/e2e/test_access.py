"""TURN credentials, ICE servers, join tokens, identities and origins (docs/protocol.md, "TURN
and ICE servers", "Join tokens", "Identities and roles", "Origins"), end to end: gateways of their own, started with those
settings beside the shared cluster's, on its Redis and relays."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.processes import ROOT, Cluster, Process
from tests.peers import TIMEOUT, Peer

TURN_SECRET = "turn-secret-for-the-tests"
TURN_TTL = 600
ICE_URLS = "stun:stun.example.net:3478,turn:turn.example.net:3478,turns:turn.example.net:5349"
JOIN_SECRET = "a-join-secret-for-the-tests-32-bytes+"
ORIGINS = "https://app.example.com,https://*.example.org"


@pytest.fixture(scope="module")
def ec_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An EC private key file (to mint ES256 tokens) and its public PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path_factory.mktemp("keys") / "join.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public.decode()


@pytest.fixture(scope="module")
def gateways(cluster: Cluster, ec_key: tuple[Path, str]) -> Iterator[dict[str, tuple[Process, int]]]:
    started = {
        "turn": cluster.start_gateway(SWITCHBOARD_TURN_SECRET=TURN_SECRET,
                                      SWITCHBOARD_TURN_TTL=str(TURN_TTL),
                                      SWITCHBOARD_ICE_URLS=ICE_URLS),
        "secret": cluster.start_gateway(SWITCHBOARD_JOIN_SECRET=JOIN_SECRET,
                                        SWITCHBOARD_ALLOWED_ORIGINS=ORIGINS),
        "public_key": cluster.start_gateway(SWITCHBOARD_JOIN_PUBLIC_KEY=ec_key[1]),
    }
    yield started
    for process, port in started.values():
        assert process.stop() == 0
        cluster.gateways.remove((process, port))


def url(gateways: dict[str, tuple[Process, int]], name: str) -> str:
    return f"ws://127.0.0.1:{gateways[name][1]}/"


def token_command(*args: str, secret: str | None = JOIN_SECRET) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if secret is not None:
        env["SWITCHBOARD_JOIN_SECRET"] = secret
    result = subprocess.run([sys.executable, "-m", "gateway.mint_token", *args], env=env,
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip()


# --- TURN and ICE servers -----------------------------------------------------------------


def expected_password(user: str) -> str:
    mac = hmac.new(TURN_SECRET.encode(), user.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


async def test_joined_room_carries_turn_credentials_and_ice_servers(
        gateways: dict[str, tuple[Process, int]], room: str) -> None:
    peer = await Peer.connect(url(gateways, "turn"))
    try:
        joined = await peer.join(room)
        expiry, own_id = joined["turn_user"].split(":")
        assert own_id == joined["own_id"]
        assert abs(int(expiry) - (time.time() + TURN_TTL)) < 10
        assert joined["turn_password"] == expected_password(joined["turn_user"])
        assert joined["ice_servers"] == [
            {"urls": ["stun:stun.example.net:3478"]},
            {"urls": ["turn:turn.example.net:3478", "turns:turn.example.net:5349"],
             "username": joined["turn_user"], "credential": joined["turn_password"]},
        ]
    finally:
        await peer.close()
    log = gateways["turn"][0].log()
    assert TURN_SECRET not in log


async def test_a_resumed_joined_room_has_fresh_credentials_too(
        gateways: dict[str, tuple[Process, int]], room: str) -> None:
    peer = await Peer.connect(url(gateways, "turn"))
    again = None
    try:
        await peer.send(event="join_room", room_id=room, resumable=True)
        joined = await peer.expect("joined_room")
        peer.ws.transport.abort()
        again = await Peer.connect(url(gateways, "turn"))
        await again.send(event="resume", resume_token=joined["resume_token"], last_frame_seq=0)
        resumed = await again.expect("joined_room")
        assert resumed["resumed"] and resumed["turn_user"].endswith(":" + joined["own_id"])
        assert resumed["turn_password"] == expected_password(resumed["turn_user"])
        assert resumed["resume_token"] != joined["resume_token"]
    finally:
        await peer.close()
        if again is not None:
            await again.close()


async def test_a_gateway_without_these_settings_sends_none_of_them(cluster: Cluster,
                                                                   room: str) -> None:
    peer = await Peer.connect(cluster.url(0))
    try:
        joined = await peer.join(room)
        assert not {"turn_user", "turn_password", "ice_servers", "resume_token"} & set(joined)
    finally:
        await peer.close()


# --- join tokens ----------------------------------------------------------------------------


async def test_joins_need_a_token_for_their_room(gateways: dict[str, tuple[Process, int]],
                                                 room: str) -> None:
    peer = await Peer.connect(url(gateways, "secret"))
    try:
        for token in (None, "garbage", token_command("--room", "another-room"),
                      token_command("--room", room, secret="not-the-gateways-secret-32-bytes!")):
            fields = {} if token is None else {"token": token}
            await peer.send(event="join_room", room_id=room, **fields)
            await peer.expect_error("not allowed", "join_room")
            await peer.assert_alive()  # the connection stays open, in no room
        await peer.send(event="join_room", room_id=room,
                        token=token_command("--room", room, "--ttl", "60"))
        assert (await peer.expect("joined_room"))["peers"] == []
    finally:
        await peer.close()


async def test_an_es256_token_from_the_command_with_a_private_key(
        gateways: dict[str, tuple[Process, int]], ec_key: tuple[Path, str], room: str) -> None:
    peer = await Peer.connect(url(gateways, "public_key"))
    try:
        token = token_command("--room", room, "--private-key", str(ec_key[0]), secret=None)
        await peer.send(event="join_room", room_id=room, token=token)
        assert (await peer.expect("joined_room"))["own_id"]
        other = await Peer.connect(url(gateways, "public_key"))
        # An HS256 token means nothing to a gateway with only a public key.
        await other.send(event="join_room", room_id=room,
                         token=token_command("--room", room))
        await other.expect_error("not allowed", "join_room")
        await other.close()
    finally:
        await peer.close()


def test_the_token_command_needs_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "SWITCHBOARD_JOIN_SECRET"}
    result = subprocess.run([sys.executable, "-m", "gateway.mint_token", "--room", "r"],
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and "SWITCHBOARD_JOIN_SECRET" in result.stderr


def test_the_token_command_mints_a_room_deadline() -> None:
    token = token_command("--room", "r", "--room-ends-at", "+600")
    claims = jwt.decode(token, JOIN_SECRET, algorithms=["HS256"])
    assert abs(claims["room_ends_at"] - (time.time() + 600)) < 30
    with pytest.raises(subprocess.CalledProcessError) as refused:
        token_command("--room", "r", "--room-ends-at", "1")
    assert "in the past" in refused.value.stderr


# --- identities and roles -------------------------------------------------------------------


def minted(room: str, **claims: Any) -> str:
    """A token for `room` with these claims, minted in-process (the command is slower)."""
    return jwt.encode({"room": room, "exp": int(time.time()) + 60, **claims}, JOIN_SECRET)


async def joined_with(gateways: dict[str, tuple[Process, int]], room: str,
                      **fields: Any) -> tuple[Peer, dict[str, Any]]:
    peer = await Peer.connect(url(gateways, "secret"))
    await peer.send(event="join_room", room_id=room, **fields)
    joined = await peer.expect("joined_room")
    peer.id = joined["own_id"]
    return peer, joined


async def test_user_and_info_are_shown_wherever_the_peer_is(
        gateways: dict[str, tuple[Process, int]], room: str) -> None:
    alice_info = {"name": "Alice", "avatar": "https://example.com/a.png"}
    a, joined_a = await joined_with(gateways, room, token=minted(room, sub="alice",
                                                                  info=alice_info))
    b, joined_b = await joined_with(gateways, room, token=minted(room))
    c, joined_c = await joined_with(gateways, room, token=minted(room, sub="carol"))
    try:
        assert (joined_a["user"], joined_a["info"]) == ("alice", alice_info)
        assert "user" not in joined_b and "info" not in joined_b
        alice = {"peer_id": a.id, "status": {}, "user": "alice", "info": alice_info}
        carol = {"peer_id": c.id, "status": {}, "user": "carol"}
        assert joined_b["peers"] == [alice]
        assert joined_c["peers"] == [alice, {"peer_id": b.id, "status": {}}]
        assert await a.expect("new_peer") == {"event": "new_peer", "peer_id": b.id,
                                              "status": {}}
        for peer in (a, b):
            assert await peer.expect("new_peer") == {"event": "new_peer", **carol}
        # Only the service sets them: an update cannot, whatever it carries.
        await c.send(event="update_status", user="mallory", info={"name": "M"},
                     status={"name": "Cy", "user": "mallory", "info": {"name": "M"}})
        for peer in (a, b, c):
            assert await peer.expect("peer_updated_status") == {
                "event": "peer_updated_status", "status": {"name": "Cy"}, "sender_id": c.id}
        await a.send(event="leave_room")
        assert (await b.expect("peer_left"))["sender_id"] == a.id
        host_changed = await b.expect("host_changed")
        assert host_changed["peers"] == [{**carol, "status": {"name": "Cy"}}]
    finally:
        for peer in (a, b, c):
            await peer.close()


async def test_a_granted_teacher_joining_after_students_takes_over_the_star_room(
        gateways: dict[str, tuple[Process, int]], room: str) -> None:
    s1, _ = await joined_with(gateways, room, topology="star",
                              token=minted(room, sub="student-1"))
    s2, _ = await joined_with(gateways, room, token=minted(room, sub="student-2"))
    assert (await s1.expect("new_peer"))["peer_id"] == s2.id
    token = token_command("--room", room, "--sub", "teacher", "--info", '{"role":"teacher"}',
                          "--host")
    teacher, joined = await joined_with(gateways, room, token=token)
    s3 = None
    try:
        assert joined["host_id"] == teacher.id and joined["topology"] == "star"
        assert (joined["user"], joined["info"]) == ("teacher", {"role": "teacher"})
        assert joined["peers"] == [{"peer_id": s1.id, "status": {}, "user": "student-1"},
                                   {"peer_id": s2.id, "status": {}, "user": "student-2"}]
        shown = {"peer_id": teacher.id, "status": {}, "user": "teacher",
                 "info": {"role": "teacher"}}
        for student in (s1, s2):
            # host_changed alone (a star room: no new_peer), with the students' whole new
            # view: the teacher alone. Nobody left.
            assert await student.expect("host_changed") == {
                "event": "host_changed", "host_id": teacher.id, "peers": [shown]}
            await student.assert_nothing_pending()
        s3, joined_s3 = await joined_with(gateways, room, token=minted(room))
        assert joined_s3["host_id"] == teacher.id and joined_s3["peers"] == [shown]
        assert (await teacher.expect("new_peer"))["peer_id"] == s3.id
    finally:
        for peer in (s1, s2, teacher, s3):
            if peer is not None:
                await peer.close()


async def test_a_resume_keeps_user_info_and_the_grant(
        gateways: dict[str, tuple[Process, int]], room: str) -> None:
    student, _ = await joined_with(gateways, room, topology="star", token=minted(room))
    teacher, joined = await joined_with(gateways, room, resumable=True, token=minted(
        room, sub="teacher", info={"name": "T"}, host=True))
    again = late = None
    try:
        assert joined["host_id"] == teacher.id
        await student.expect("host_changed")  # a star room: no new_peer before it
        teacher.ws.transport.abort()
        again = await Peer.connect(url(gateways, "secret"))
        await again.send(event="resume", resume_token=joined["resume_token"], last_frame_seq=0)
        resumed = await again.expect("joined_room")
        assert resumed["resumed"] and resumed["host_id"] == teacher.id
        assert (resumed["user"], resumed["info"]) == ("teacher", {"name": "T"})
        late, joined_late = await joined_with(gateways, room, token=minted(room))
        assert joined_late["host_id"] == teacher.id
        assert joined_late["peers"] == [{"peer_id": teacher.id, "status": {},
                                         "user": "teacher", "info": {"name": "T"}}]
    finally:
        for peer in (student, teacher, again, late):
            if peer is not None:
                await peer.close()


@pytest.mark.parametrize("claims", [{"sub": ""}, {"sub": "x" * 129}, {"sub": 7},
                                    {"info": [1]}, {"info": {"pad": "x" * 1100}},
                                    {"host": "yes"}, {"room_ends_at": "soon"},
                                    {"room_ends_at": True}, {"room_ends_at": 1},
                                    {"room_ends_at": -5}])
async def test_a_token_with_a_malformed_claim_is_not_allowed(
        gateways: dict[str, tuple[Process, int]], room: str, claims: dict[str, Any]) -> None:
    peer = await Peer.connect(url(gateways, "secret"))
    try:
        await peer.send(event="join_room", room_id=room, token=minted(room, **claims))
        await peer.expect_error("not allowed", "join_room")
        await peer.assert_alive()
    finally:
        await peer.close()


# --- origins ----------------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["https://app.example.com", "https://a.example.org",
                                    "https://a.b.example.org", None])
async def test_listed_origins_and_none_may_connect(gateways: dict[str, tuple[Process, int]],
                                                   origin: str | None) -> None:
    headers = {} if origin is None else {"Origin": origin}
    async with websockets.connect(url(gateways, "secret"), open_timeout=TIMEOUT,
                                  additional_headers=headers) as ws:
        await ws.send('{"event":"ping"}')
        assert await ws.recv() == '{"event":"pong"}'


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://example.org",
                                    "http://app.example.com", "null"])
async def test_other_origins_get_403_before_any_frame(gateways: dict[str, tuple[Process, int]],
                                                      origin: str) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url(gateways, "secret"), open_timeout=TIMEOUT,
                                      additional_headers={"Origin": origin}):
            pass
    assert refused.value.response.status_code == 403
    # And the gateway carries on.
    async with websockets.connect(url(gateways, "secret"), open_timeout=TIMEOUT) as ws:
        await ws.send('{"event":"ping"}')
        assert await ws.recv() == '{"event":"pong"}'
