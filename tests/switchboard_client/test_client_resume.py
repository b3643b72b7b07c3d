"""switchboard_client resumes by itself after a dropped socket (docs/protocol.md, "Resume")."""

from __future__ import annotations

import json

import pytest
import websockets
from websockets.protocol import State

from harness.processes import Cluster, eventually
from shared.frames import NewPeer, PeerLeft
from switchboard_client import PeerMessage, ResumeFailed, SignalingClient


async def numbers(client: SignalingClient, count: int) -> list[int]:
    return [(await client.wait_for(PeerMessage)).data["data"]["n"] for _ in range(count)]


async def dropped(client: SignalingClient) -> None:
    client.ws.transport.abort()  # the network goes: no close handshake
    await eventually(lambda: client.ws.state is State.CLOSED, 5, "the socket to be gone")


async def test_a_dropped_socket_is_resumed_by_the_client(cluster: Cluster, room: str) -> None:
    async with await SignalingClient.connect(cluster.url(0)) as a, \
            await SignalingClient.connect(cluster.url(1)) as b:
        joined = await a.join(room, resumable=True)
        assert joined.resume_token and a.resume_token == joined.resume_token
        await b.join(room)
        await a.wait_for(NewPeer)
        assert a.own_id is not None and b.own_id is not None
        for n in range(5):
            await b.message(a.own_id, {"n": n})
        assert await numbers(a, 2) == [0, 1]
        await dropped(a)
        for n in range(5, 10):
            await b.message(a.own_id, {"n": n})
        # Reading on: the client resumes, and gets every message it had not read, in order.
        assert await numbers(a, 8) == list(range(2, 10))
        assert a.resumes == 1 and a.resume_token != joined.resume_token
        # Sending on a dropped socket resumes too.
        await dropped(a)
        await a.message(b.own_id, {"n": 100})
        assert (await b.wait_for(PeerMessage)).data["data"]["n"] == 100
        assert a.resumes == 2
        # b never heard of any of it.
        await b.ping()
        assert not any(isinstance(e, PeerLeft | NewPeer) for e in b._backlog)


async def test_no_resume_without_a_resumable_join(cluster: Cluster, room: str) -> None:
    async with await SignalingClient.connect(cluster.url(0)) as a:
        await a.join(room)
        assert a.resume_token is None
        await dropped(a)
        with pytest.raises(websockets.ConnectionClosed):
            await a.next_event(timeout=5)


async def test_a_peer_taken_over_elsewhere_is_not_resumed(cluster: Cluster, room: str) -> None:
    async with await SignalingClient.connect(cluster.url(0)) as a:
        await a.join(room, resumable=True)
        thief = await websockets.connect(cluster.url(1))
        await thief.send(json.dumps({"event": "resume", "resume_token": a.resume_token,
                                     "last_frame_seq": 0}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await a.next_event(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert a.resumes == 0
        await thief.close()


async def test_a_resume_the_service_refuses_raises(cluster: Cluster, room: str) -> None:
    async with await SignalingClient.connect(cluster.url(0), resume_within=5) as a:
        await a.join(room, resumable=True)
        await dropped(a)
        # As if the grace period were over: the service knows no such token.
        a.resume_token = "1.0f8e3c4a-7d2b-4c1e-9a5f-1b2c3d4e5f60.AAAAAAAAAAAAAAAAAAAAAA"
        with pytest.raises(ResumeFailed) as failed:
            await a.next_event(timeout=5)
        assert failed.value.text == "cannot resume" and a.resume_token is None
