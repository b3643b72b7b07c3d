"""A client's frames are handled in the order sent, even when it sends them all at once,
before the server has even started serving its socket."""

from __future__ import annotations

import json

import websockets

from harness.processes import Cluster


async def test_frames_sent_right_after_the_handshake_are_handled_in_order(
    cluster: Cluster, room: str
) -> None:
    async with websockets.connect(cluster.url(0)) as ws:
        frames = [{"event": "join_room", "room_id": room}]
        frames += [{"event": "update_status", "status": {"name": f"n{n}"}} for n in range(150)]
        # One write: every frame reaches the gateway together with the handshake's tail.
        await ws.send(json.dumps(frames[0]))
        for frame in frames[1:]:
            await ws.send(json.dumps(frame))
        replies = [json.loads(await ws.recv()) for _ in range(len(frames))]
    assert replies[0]["event"] == "joined_room", replies[0]
    names = [reply.get("status", {}).get("name") for reply in replies[1:]]
    assert names == [f"n{n}" for n in range(150)], replies[1:4]
