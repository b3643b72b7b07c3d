"""A test peer: a real WebSocket client that sends dicts and waits for frames."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = 5.0


class Peer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.id: str | None = None

    @classmethod
    async def connect(cls, url: str, **options: Any) -> Peer:
        """`options` go to websockets.connect (`ssl`, `local_addr`...)."""
        return cls(await websockets.connect(url, open_timeout=TIMEOUT, **options))

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
        decoded = json.loads(frame)
        assert isinstance(decoded, dict)
        return decoded

    async def expect(self, event: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame, which must be `event`."""
        frame = await self.recv(timeout)
        assert frame.get("event") == event, f"expected {event!r}, got {frame}"
        return frame

    async def expect_error(self, text: str, received: str | None = None) -> None:
        frame = await self.expect("error")
        assert frame["message"] == text and frame["description"] == text, frame
        if received is not None:
            assert frame.get("received_msg") == received, frame

    async def join(self, room: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
        frame: dict[str, Any] = {"event": "join_room", "room_id": room}
        if status is not None:
            frame["status"] = status
        await self.send(**frame)
        joined = await self.expect("joined_room")
        self.id = joined["own_id"]
        return joined

    async def assert_alive(self) -> None:
        """The socket still works, and the gateway answered nothing else before the pong.

        A barrier for the gateway's own answers only: the gateway handles a socket's frames
        in order, so an answer to a frame sent earlier comes before the pong, however late.
        A frame from a relay may still come after it (`assert_nothing_pending` covers those).
        """
        await self.send(event="ping")
        assert await self.recv() == {"event": "pong"}

    async def assert_nothing_pending(self) -> None:
        """No frame was on its way to this member: neither an answer of the gateway to what
        it sent before, nor a frame of its room's relay for an event that reached the
        room's shard before now.

        Not a timed wait, which a late frame outlasts: the member sends itself a message
        (docs/protocol.md, "send_to_peer": a peer may address itself), which takes the path of
        every frame of its room (the gateway, the shard's stream, the relay that holds the
        shard, the socket's channel on that shard). The relay applies a shard's events in
        stream order and publishes their frames in that order (docs/architecture.md, rule 1),
        so whatever was due before arrives before the message. The peer must be in a room.
        """
        assert self.id is not None, "assert_nothing_pending: the peer has joined no room"
        marker = uuid.uuid4().hex
        await self.send(event="send_to_peer", peer_id=self.id,
                        data={"event": "message", "barrier": marker})
        before: list[dict[str, Any]] = []
        try:
            while (frame := await self.recv()).get("barrier") != marker:
                before.append(frame)
        except TimeoutError:
            raise AssertionError(f"own message never came back; frames instead: {before}") \
                from None
        frame.pop("frame_seq", None)  # (numbered when the peer is resumable)
        assert frame == {"event": "message", "barrier": marker, "sender_id": self.id}, frame
        assert not before, f"expected no frame before the own message, got {before}"

    async def close(self) -> None:
        await self.ws.close()

    async def closed_with(self, timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to close the socket; return the close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed:
            pass
        return self.ws.close_code
