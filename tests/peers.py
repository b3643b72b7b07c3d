"""A test peer: a real WebSocket client that sends dicts and waits for frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

TIMEOUT = 5.0


class Peer:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.id: str | None = None

    @classmethod
    async def connect(cls, url: str) -> Peer:
        return cls(await websockets.connect(url, open_timeout=TIMEOUT))

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
        """The socket still works, and nothing was queued for it before the answer."""
        await self.send(event="ping")
        assert await self.recv() == {"event": "pong"}

    async def expect_silence(self, seconds: float = 0.3) -> None:
        """Nothing arrives: used after a frame that must produce no answer."""
        try:
            frame = await asyncio.wait_for(self.ws.recv(), seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no frame, got {frame!r}")

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
