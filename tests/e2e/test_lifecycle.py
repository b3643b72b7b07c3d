"""Processes coming and going: SIGTERM on a gateway and on a relay, the Procfile."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import ROOT, Cluster, free_port, wait_until
from harness.rawsocket import CLOSE, RawSocket, encode_frame
from shared.keys import shard_lease
from tests.peers import Peer


async def test_gateway_sigterm_warns_closes_4200_and_rooms_see_peer_left(
    cluster: Cluster, room: str
) -> None:
    process, port = cluster.start_gateway(SWITCHBOARD_SHUTDOWN_SECONDS="2")
    leaving = await Peer.connect(f"ws://127.0.0.1:{port}/")
    staying = await Peer.connect(cluster.url(0))
    await leaving.join(room)
    await staying.join(room)
    await leaving.expect("new_peer")

    process.signal(signal.SIGTERM)

    assert await leaving.expect("shutdown") == {"event": "shutdown", "seconds": 2}
    # Until the N seconds are up, the socket still works.
    await leaving.send(event="ping")
    await leaving.expect("pong")
    assert await leaving.closed_with(timeout=10) == 4200
    assert await staying.expect("peer_left") == {"event": "peer_left", "sender_id": leaving.id}
    assert await asyncio.to_thread(process.wait, 10) == 0
    await staying.close()


async def test_what_a_client_sent_before_it_saw_the_servers_close_is_relayed(
    cluster: Cluster, room: str
) -> None:
    """A message the client sent as the server's 4200 close frame crossed it on the wire
    reaches its peer: the gateway reads on until the client's own close frame."""
    process, port = cluster.start_gateway(SWITCHBOARD_SHUTDOWN_SECONDS="0")
    leaving = await RawSocket.connect(port)
    leaving.send_json(event="join_room", room_id=room)
    joined = await leaving.expect_json()
    assert joined["event"] == "joined_room"
    staying = await Peer.connect(cluster.url(0))
    await staying.join(room)
    assert (await leaving.expect_json())["event"] == "new_peer"

    process.signal(signal.SIGTERM)
    # Read as a client whose own frames are already on their way: the close frame is
    # not answered until after the message.
    frames = list(leaving.pending)
    while not any(frame.opcode == CLOSE for frame in frames):
        frames += leaving.parser.feed(await asyncio.wait_for(leaving.reader.read(1 << 16), 10))
    close = next(frame for frame in frames if frame.opcode == CLOSE)
    assert close.close_code == 4200
    leaving.send_json(event="send_to_peer", peer_id=staying.id,
                      data={"event": "message", "sent": "after the close frame"})
    leaving.send_raw(encode_frame(CLOSE, close.payload[:2]))

    assert await staying.expect("message") == {
        "event": "message", "sent": "after the close frame", "sender_id": joined["own_id"]}
    assert await staying.expect("peer_left") == {"event": "peer_left",
                                                 "sender_id": joined["own_id"]}
    assert await asyncio.to_thread(process.wait, 10) == 0
    await staying.close()
    await leaving.close()


async def test_relay_sigterm_finishes_and_others_carry_on_without_loss(
    cluster: Cluster, room: str
) -> None:
    relay = cluster.start_relay()
    wait_until(lambda: len(_lease_holders(cluster)) == 3, 15, "the third relay to hold shards")
    a, b = await Peer.connect(cluster.url(0)), await Peer.connect(cluster.url(1))
    await a.join(room)
    await b.join(room)
    await a.expect("new_peer")

    async def send_all() -> None:
        for seq in range(300):
            await a.send(event="send_to_peer", peer_id=b.id,
                         data={"event": "ice_candidate", "seq": seq})
            if seq == 50:
                relay.signal(signal.SIGTERM)

    sender = asyncio.create_task(send_all())
    received = [(await b.expect("ice_candidate", timeout=15))["seq"] for _ in range(300)]
    await sender
    assert received == list(range(300))
    assert await asyncio.to_thread(relay.wait, 10) == 0
    # Nor any twice: an entry applied again where the shard went would send b its frame
    # before b's own message, which is on the stream after every entry.
    await b.assert_nothing_pending()
    await a.close()
    await b.close()


def _lease_holders(cluster: Cluster) -> set[str]:
    leases = [shard_lease(shard) for shard in range(64)]
    return {line for line in cluster.redis.cli("mget", *leases).splitlines() if line}


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip())  # type: ignore[misc]


async def test_procfile_commands_run_from_the_apps_directory(
    cluster: Cluster, room: str, tmp_path: Path
) -> None:
    """The Procfile's web and worker lines as Heroku runs them: from a copy of the
    packages (the app's directory; Heroku's buildpack installs only requirements.txt, the
    locked dependencies), with only PORT and REDIS_URL."""
    app = tmp_path / "app"
    for package in ("gateway", "relay", "shared", "redis_io"):
        shutil.copytree(ROOT / package, app / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    port = free_port()
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "PORT": str(port), "REDIS_URL": cluster.redis.url}
    procfile = _procfile()
    started = [
        subprocess.Popen(shlex.split(procfile[kind]), cwd=app, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
        for kind in ("worker", "web")
    ]
    try:
        a = await _connect_when_up(f"ws://127.0.0.1:{port}/")
        b = await Peer.connect(cluster.url(0))
        await a.join(room)
        await b.join(room)
        await a.expect("new_peer")
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "x": 1})
        assert await a.expect("message") == {"event": "message", "x": 1, "sender_id": b.id}
        await a.close()
        await b.close()
    finally:
        for process in started:
            os.kill(process.pid, signal.SIGTERM)
        for process in started:
            assert process.wait(15) == 0


async def _connect_when_up(url: str) -> Peer:
    for _ in range(200):
        try:
            return await Peer.connect(url)
        except OSError:
            await asyncio.sleep(0.1)
    pytest.fail(f"nothing listening on {url}")
