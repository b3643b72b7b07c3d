"""The WebSocket side of the client: typed requests out, typed events in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from shared.events import Topology
from shared.frames import Error, HostChanged, JoinedRoom, Pong
from switchboard_client.events import PEER_EVENTS, ServerEvent, decode_event

E = TypeVar("E")

__all__ = ["SignalingClient", "SignalingError"]


class SignalingError(Exception):
    """The server refused a request with an `error` frame; `text` is its message."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.message)
        self.text = error.message
        self.received = error.received_msg


class SignalingClient:
    """One peer's connection. Events that a `wait_for` skips stay queued for `next_event`.

    `own_id`, `host_id` and `topology` follow the room as its events are read: `joined_room`
    sets them, `host_changed` moves the host."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.own_id: str | None = None
        self.host_id: str | None = None
        self.topology: Topology | None = None
        self._backlog: list[ServerEvent] = []

    @classmethod
    async def connect(cls, url: str, open_timeout: float = 10.0) -> SignalingClient:
        return cls(await websockets.connect(url, open_timeout=open_timeout, max_size=None))

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------

    async def send(self, event: str, **fields: Any) -> None:
        """Send one client frame as it is (the typed methods below are built on it)."""
        await self.ws.send(orjson.dumps({"event": event, **fields}).decode())

    async def join(self, room_id: str, *, name: str | None = None,
                   user_agent: str | None = None, topology: Topology | str | None = None,
                   timeout: float = 10.0) -> JoinedRoom:
        """Join a room; returns `joined_room`, raises SignalingError when refused.

        `topology` "star" opens (or must find) a star room; None takes the room's."""
        status = {k: v for k, v in (("name", name), ("user_agent", user_agent)) if v}
        fields: dict[str, Any] = {"room_id": room_id, "status": status}
        if topology is not None:
            fields["topology"] = str(topology)
        await self.send("join_room", **fields)
        return await self.wait_for(JoinedRoom, timeout, raise_errors=True)

    @property
    def is_host(self) -> bool:
        """Whether this peer is its room's host (as of the events read so far)."""
        return self.own_id is not None and self.own_id == self.host_id

    async def leave(self) -> None:
        await self.send("leave_room")

    async def update_status(self, *, name: str | None = None,
                            user_agent: str | None = None) -> None:
        status = {k: v for k, v in (("name", name), ("user_agent", user_agent)) if v}
        await self.send("update_status", status=status)

    async def send_to_peer(self, peer_id: str, event: str, **data: Any) -> None:
        """Send `{"event": event, **data}` to a peer of the room."""
        if event not in PEER_EVENTS:
            raise ValueError(f"{event!r} is not one of {sorted(PEER_EVENTS)}")
        await self.send("send_to_peer", peer_id=peer_id, data={"event": event, **data})

    async def offer(self, peer_id: str, sdp: dict[str, Any]) -> None:
        await self.send_to_peer(peer_id, "offer", sdp=sdp)

    async def answer(self, peer_id: str, sdp: dict[str, Any]) -> None:
        await self.send_to_peer(peer_id, "answer", sdp=sdp)

    async def ice_candidate(self, peer_id: str, candidate: str, sdpmid: str | None,
                            sdpmlineindex: int | None) -> None:
        """An ICE candidate, in the field names palava-client uses."""
        await self.send_to_peer(peer_id, "ice_candidate", candidate=candidate,
                                sdpmid=sdpmid, sdpmlineindex=sdpmlineindex)

    async def message(self, peer_id: str, data: Any) -> None:
        """An application message, as palava-client's `sendMessage` sends it."""
        await self.send_to_peer(peer_id, "message", data=data)

    async def ping(self, timeout: float = 10.0) -> None:
        await self.send("ping")
        await self.wait_for(Pong, timeout)

    async def close(self) -> None:
        await self.ws.close()

    # -- events ----------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> ServerEvent:
        """The next event from the server (raises websockets.ConnectionClosed at the end)."""
        if self._backlog:
            return self._backlog.pop(0)
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        event = decode_event(frame)
        if isinstance(event, JoinedRoom):
            self.own_id, self.host_id, self.topology = event.own_id, event.host_id, event.topology
        elif isinstance(event, HostChanged):
            self.host_id = event.host_id
        return event

    async def wait_for(self, kind: type[E], timeout: float = 10.0, *,
                       match: Callable[[E], bool] | None = None,
                       raise_errors: bool = False) -> E:
        """The first event of type `kind` (and `match`); others stay queued in order."""
        skipped: list[ServerEvent] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                event = await self.next_event(max(0.0, deadline - loop.time()))
                if isinstance(event, kind) and (match is None or match(event)):
                    return event
                if raise_errors and isinstance(event, Error):
                    raise SignalingError(event)
                skipped.append(event)
        finally:
            self._backlog[:0] = skipped

    async def __aiter__(self) -> AsyncIterator[ServerEvent]:
        while True:
            try:
                yield await self.next_event()
            except websockets.ConnectionClosed:
                return
