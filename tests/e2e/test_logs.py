"""Logs: with SWITCHBOARD_LOG_FORMAT=json every line of gateway and relay is a
JSON object with the fields operators filter on, and no log line, in either format,
carries a token, an SDP, a secret or a room name."""

from __future__ import annotations

import json
import os
import signal

import pytest

from gateway.mint_token import mint_token
from harness.processes import Cluster
from tests.faults.support import private_cluster
from tests.peers import Peer

TURN_SECRET = "turn-secret-that-must-never-be-logged"
JOIN_SECRET = "join-secret-that-must-never-be-logged-32b"
SDP = "v=0 o=- 4611731400430051336 2 IN IP4 127.0.0.1 s=must-never-be-logged"


async def busy_day(cluster: Cluster, room: str) -> list[str]:
    """Joins with tokens, resume, SDP, a bad frame or two, a shutdown: what must not be
    logged is returned."""
    token = mint_token(room, 60, JOIN_SECRET, "HS256")
    a = await Peer.connect(cluster.url(0))
    b = await Peer.connect(cluster.url(0))
    await a.send(event="join_room", room_id=room, resumable=True, token=token)
    joined = await a.expect("joined_room")
    a.id = joined["own_id"]
    await b.send(event="join_room", room_id=room, token=token)
    b.id = (await b.expect("joined_room"))["own_id"]
    await a.expect("new_peer")
    await b.send(event="send_to_peer", peer_id=a.id, data={"event": "offer", "sdp": SDP})
    await a.expect("offer")
    await b.send(event="join_room", room_id=room + "-x", token="garbage")
    await b.expect_error("already joined another room", "join_room")
    await b.send_raw("not json at all")
    await b.expect_error("invalid message")
    a.ws.transport.abort()
    again = await Peer.connect(cluster.url(0))
    await again.send(event="resume", resume_token=joined["resume_token"], last_frame_seq=1)
    resumed = await again.expect("joined_room")
    for peer in (b, again):
        await peer.close()
    return [TURN_SECRET, JOIN_SECRET, token, joined["resume_token"], resumed["resume_token"],
            SDP, "must-never-be-logged", room, joined["turn_password"]]


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_log_lines_and_what_they_never_carry(log_format: str) -> None:
    room = f"a-room-name-never-logged-{os.getpid()}"
    with private_cluster(gateways=1, relays=1, SWITCHBOARD_LOG_FORMAT=log_format,
                         LOG_LEVEL="debug", SWITCHBOARD_TURN_SECRET=TURN_SECRET,
                         SWITCHBOARD_JOIN_SECRET=JOIN_SECRET,
                         SWITCHBOARD_ICE_URLS="turn:turn.example:3478") as cluster:
        secrets = await busy_day(cluster, room)
        gateway, _ = cluster.gateways[0]
        relay = cluster.relays[0]
        for process in (gateway, relay):
            process.signal(signal.SIGTERM)
            assert process.wait(20) == 0
        logs = {process.name: process.log() for process in (gateway, relay)}
    for name, text in logs.items():
        for secret in secrets:
            assert secret not in text, f"{name} logged {secret!r}"
        if log_format != "json":
            continue
        lines = text.splitlines()
        assert lines, f"{name} logged nothing"
        kind = "gateway" if name.startswith("gateway") else "relay"
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "logger", "message", "process", kind} <= set(record)
            assert record[kind].startswith(f"{kind}-")
        messages = [json.loads(line)["message"] for line in lines]
        assert any("started" in m or "listening" in m for m in messages), messages[:5]
