"""The Socket.IO (v4) wire protocol as the load generator speaks it to bench/socketio/: over
a WebSocket (Engine.IO 4, `transport=websocket`, no polling), the default namespace, text
packets only. Just what signaling needs: connect, `join` with an ack, `signal` events,
and answering the server's pings.

Engine.IO packets are a digit and a body: `0` open (JSON: sid, pingInterval...), `2` ping
(answered `3`), `4` message. A message carries a Socket.IO packet: `0` connect (answered
`0{"sid":...}`), `2` event (`2["name",...]`, with an ack id before the `[` when one is
wanted), `3` ack (`3<id>[...]`). So an event on the wire reads `42["signal",{...}]`.
"""

from __future__ import annotations

import json
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

OPEN_TIMEOUT_S = 10.0


class SocketIoPeer:
    """One client socket; `id` is its Socket.IO socket id (what `signal` addresses)."""

    def __init__(self, ws: ClientConnection, socket_id: str) -> None:
        self.ws = ws
        self.id = socket_id
        self._acks = 0

    @classmethod
    async def connect(cls, port: int) -> SocketIoPeer:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
            open_timeout=OPEN_TIMEOUT_S, compression=None)
        opened = await ws.recv()
        if not isinstance(opened, str) or not opened.startswith("0"):
            raise ConnectionError(f"not an Engine.IO open packet: {opened!r}")
        await ws.send("40")
        while True:
            packet = await ws.recv()
            if isinstance(packet, str) and packet.startswith("40"):
                return cls(ws, json.loads(packet[2:])["sid"])
            if packet == "2":
                await ws.send("3")

    async def join(self, room: str) -> None:
        """`join` the room; returns once the server acked it."""
        self._acks += 1
        ack = self._acks
        await self.ws.send(f"42{ack}{json.dumps(['join', room])}")
        while True:
            packet = await self.ws.recv()
            if isinstance(packet, str) and packet.startswith(f"43{ack}["):
                return
            if packet == "2":
                await self.ws.send("3")

    async def signal(self, to: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps(["signal", {"to": to, "data": data}],
                                             separators=(",", ":")))

    async def next_signal(self) -> tuple[str, Any]:
        """The next `signal` event: (the sender's socket id, its data). Pings are answered
        meanwhile; other packets are skipped."""
        while True:
            packet = await self.ws.recv()
            if packet == "2":
                await self.ws.send("3")
            elif isinstance(packet, str) and packet.startswith('42["signal"'):
                _, message = json.loads(packet[2:])
                return message["from"], message["data"]

    async def close(self) -> None:
        await self.ws.close()
