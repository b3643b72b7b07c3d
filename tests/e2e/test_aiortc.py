"""Real WebRTC peers (aiortc) signal through the service and talk over a DataChannel.

aiortc gathers all its candidates before `setLocalDescription` returns; to exercise the
trickle path palava clients use, the peers strip candidates from the SDP and send each
as its own `ice_candidate` (an empty candidate marks the end, as in palava-client).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from harness.processes import Cluster, wait_until
from shared import keys
from shared.frames import JoinedRoom, NewPeer
from switchboard_client import PeerMessage, SignalingClient

MESSAGES = 20


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """ICE on 127.0.0.1 alone: aioice skips loopback by default, and the tests must send
    nothing to any other address."""
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda use_ipv4, use_ipv6: ["127.0.0.1"])
    yield


def _split_candidates(sdp: str) -> tuple[str, list[tuple[str, str, int]]]:
    """SDP without its `a=candidate` lines, and those candidates with their m-line."""
    lines, candidates = [], []
    mid, index = "", -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:"):]
        if line.startswith("a=candidate:"):
            candidates.append((line[len("a="):], mid, index))
        elif line != "a=end-of-candidates":
            lines.append(line)
    return "\r\n".join(lines) + "\r\n", candidates


async def _send_description(client: SignalingClient, peer_id: str, pc: RTCPeerConnection,
                            kind: str) -> None:
    sdp, candidates = _split_candidates(pc.localDescription.sdp)
    description = {"type": kind, "sdp": sdp}
    await (client.offer if kind == "offer" else client.answer)(peer_id, description)
    for candidate, mid, index in candidates:
        await client.ice_candidate(peer_id, candidate, mid, index)
    await client.ice_candidate(peer_id, "", None, None)


async def _receive_description(client: SignalingClient, pc: RTCPeerConnection,
                               kind: str) -> str:
    """Apply the peer's description and its trickled candidates; return the sender."""
    message = await client.wait_for(PeerMessage, 30, match=lambda m: m.event == kind)
    sdp = message.data["sdp"]
    await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp["sdp"], type=sdp["type"]))
    while True:
        candidate = await client.wait_for(
            PeerMessage, 30, match=lambda m: m.event == "ice_candidate")
        if candidate.data["candidate"] == "":
            await pc.addIceCandidate(None)
            return message.sender_id
        ice = candidate_from_sdp(candidate.data["candidate"].split(":", 1)[1])
        ice.sdpMid = candidate.data["sdpmid"]
        ice.sdpMLineIndex = candidate.data["sdpmlineindex"]
        await pc.addIceCandidate(ice)


async def _exchange(channel: RTCDataChannel, inbox: asyncio.Queue[str], me: str) -> list[str]:
    for n in range(MESSAGES):
        channel.send(f"{me} {n}")
    return [await asyncio.wait_for(inbox.get(), 10) for _ in range(MESSAGES)]


async def _call(offerer: SignalingClient, answerer: SignalingClient, answerer_id: str,
                before_offer: object = None) -> float:
    """Signal a DataChannel call from offerer to answerer; exchange messages both ways.
    Returns the seconds from the offer to an open channel."""
    pc_a = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc_b = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    inbox_a: asyncio.Queue[str] = asyncio.Queue()
    inbox_b: asyncio.Queue[str] = asyncio.Queue()
    b_channel: asyncio.Future[RTCDataChannel] = asyncio.get_running_loop().create_future()

    @pc_b.on("datachannel")
    def on_datachannel(channel: RTCDataChannel) -> None:
        channel.on("message", inbox_b.put_nowait)
        b_channel.set_result(channel)

    a_channel = pc_a.createDataChannel("chat")
    a_channel.on("message", inbox_a.put_nowait)
    a_open = asyncio.Event()
    a_channel.on("open", a_open.set)
    try:
        if callable(before_offer):
            before_offer()
        started = time.monotonic()
        await pc_a.setLocalDescription(await pc_a.createOffer())
        await _send_description(offerer, answerer_id, pc_a, "offer")
        offerer_id = await _receive_description(answerer, pc_b, "offer")
        await pc_b.setLocalDescription(await pc_b.createAnswer())
        await _send_description(answerer, offerer_id, pc_b, "answer")
        await _receive_description(offerer, pc_a, "answer")
        await asyncio.wait_for(a_open.wait(), 30)
        channel_b = await asyncio.wait_for(b_channel, 30)
        elapsed = time.monotonic() - started
        got_b, got_a = await asyncio.gather(_exchange(a_channel, inbox_b, "a"),
                                            _exchange(channel_b, inbox_a, "b"))
        assert got_b == [f"a {n}" for n in range(MESSAGES)]
        assert got_a == [f"b {n}" for n in range(MESSAGES)]
        return elapsed
    finally:
        await pc_a.close()
        await pc_b.close()


async def _pair(cluster: Cluster, room: str, gateways: tuple[int, int]
                ) -> tuple[SignalingClient, SignalingClient, str]:
    offerer = await SignalingClient.connect(cluster.url(gateways[0]))
    answerer = await SignalingClient.connect(cluster.url(gateways[1]))
    await offerer.join(room, name="offerer")
    joined: JoinedRoom = await answerer.join(room, name="answerer")
    assert [p.peer_id for p in joined.peers] == [offerer.own_id]
    new_peer = await offerer.wait_for(NewPeer)
    assert new_peer.peer_id == answerer.own_id
    return offerer, answerer, joined.own_id


async def test_aiortc_peers_open_a_datachannel_through_one_gateway(
    cluster: Cluster, room: str
) -> None:
    offerer, answerer, answerer_id = await _pair(cluster, room, (0, 0))
    seconds = await _call(offerer, answerer, answerer_id)
    print(f"\naiortc offer -> open DataChannel, one gateway: {seconds * 1000:.0f} ms")
    await offerer.close()
    await answerer.close()


async def test_aiortc_call_across_gateways_survives_a_relay_killed_between_join_and_offer(
    cluster: Cluster, room: str
) -> None:
    offerer, answerer, answerer_id = await _pair(cluster, room, (0, 1))
    shard = keys.shard_of(keys.room_digest(room), 64)
    holder = cluster.redis.cli("get", keys.shard_lease(shard)).strip()
    pid = int(holder.split("-")[-2])  # relay ids are relay-<host>-<pid>-<random>
    owner = next(relay for relay in cluster.relays if relay.pid == pid)

    def kill_the_rooms_relay() -> None:
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(10)
        cluster.start_relay()  # the replacement; the surviving relay may take over first

    seconds = await _call(offerer, answerer, answerer_id, before_offer=kill_the_rooms_relay)
    print(f"\naiortc offer -> open DataChannel across gateways with the room's relay "
          f"killed (lease TTL 5 s): {seconds * 1000:.0f} ms")
    wait_until(lambda: cluster.redis.cli("get", keys.shard_lease(shard)).strip() != holder, 10,
               "another relay to hold the shard")
    await offerer.close()
    await answerer.close()
