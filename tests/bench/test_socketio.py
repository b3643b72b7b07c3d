"""The benchmark's scale-out peer (issue 26): bench/socketio/server.js on two node fronts
joined by Redis through each adapter, spoken to by the load generator's Socket.IO client
(bench/socketio_client.py): a signal from a client of one front reaches a client of the
other, and back."""

from __future__ import annotations

import asyncio

import pytest

from bench.servers import SOCKETIO_ADAPTERS, start_socketio
from bench.socketio_client import SocketIoPeer


@pytest.mark.parametrize("adapter", SOCKETIO_ADAPTERS)
async def test_a_signal_crosses_fronts_through_each_adapter(adapter: str) -> None:
    server = await asyncio.to_thread(start_socketio, adapter, 2)
    try:
        assert len(server.ports) == 2 and set(server.pids) == {"redis", "node-1", "node-2"}
        a = await SocketIoPeer.connect(server.ports[0])
        b = await SocketIoPeer.connect(server.ports[1])
        await a.join("room-1")
        await b.join("room-1")
        await a.signal(b.id, {"event": "offer", "sdp": "v=0"})
        assert await asyncio.wait_for(b.next_signal(), 10) == (
            a.id, {"event": "offer", "sdp": "v=0"})
        await b.signal(a.id, {"event": "answer"})
        assert await asyncio.wait_for(a.next_signal(), 10) == (b.id, {"event": "answer"})
        await a.close()
        await b.close()
    finally:
        await asyncio.to_thread(server.stop)
    assert server.name == f"socketio-{adapter}" and "socket.io 4." in server.version
