"""The WebSocket side of the client: typed requests out, typed events in, and resume."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from types import TracebackType
from typing import Any, TypeVar

import orjson
import websockets
from websockets.asyncio.client import ClientConnection

from shared.close_codes import CloseCode
from shared.events import Topology
from shared.frames import PEER_EVENTS, Error, HostChanged, JoinedRoom, Pong, Removed
from switchboard_client.events import ServerEvent, decode_numbered, json_of

E = TypeVar("E")

__all__ = ["ResumeFailed", "SignalingClient", "SignalingError"]

log = logging.getLogger(__name__)

# Close codes after which a resume makes no sense: another socket took the peer over.
_NO_RESUME_CODES = frozenset({CloseCode.TAKEN_OVER, CloseCode.REMOVED})
_RESUME_BACKOFF_S = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0)


class SignalingError(Exception):
    """The server refused a request with an `error` frame; `text` is its message."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.message)
        self.text = error.message
        self.received = error.received_msg


class ResumeFailed(SignalingError):
    """The socket dropped and the peer could not be resumed (`cannot resume`, or no
    gateway reachable within `resume_within`): it has left its room."""


class SignalingClient:
    """One peer's connection. Events that a `wait_for` skips stay queued for `next_event`.

    `own_id`, `host_id` and `topology` follow the room as its events are read: `joined_room`
    sets them, `host_changed` moves the host. `user` and `info` are the identity the join
    token gave (None without one). `removed` is the reason the app removed the peer
    (`Removed` event: "removed", "closed" or "expired"); the socket is closed then, and a
    removed peer is never resumed.

    After a resumable join (`join(..., resumable=True)`) a dropped socket is resumed by
    itself, on `url` again (a load balancer may send it to any gateway), within
    `resume_within` seconds: every frame the peer lacked arrives, in order, and the
    others see nothing of it. `resumes` counts them; `auto_resume=False` turns it off.
    """

    def __init__(self, ws: ClientConnection, url: str = "", *, auto_resume: bool = True,
                 resume_within: float = 15.0) -> None:
        self.ws = ws
        self.url = url
        self.auto_resume = auto_resume
        self.resume_within = resume_within
        self.own_id: str | None = None
        self.host_id: str | None = None
        self.topology: Topology | None = None
        self.user: str | None = None
        self.info: dict[str, Any] | None = None
        self.removed: str | None = None
        self.resume_token: str | None = None  # while in a room joined resumable
        self.last_frame_seq = 0
        self.resumes = 0
        self._backlog: list[ServerEvent] = []
        self._closing = False
        self._resume_lock = asyncio.Lock()

    @property
    def is_host(self) -> bool:
        """Whether this peer is its room's host now."""
        return self.own_id is not None and self.host_id == self.own_id

    @classmethod
    async def connect(cls, url: str, open_timeout: float = 10.0, *, auto_resume: bool = True,
                      resume_within: float = 15.0) -> SignalingClient:
        ws = await websockets.connect(url, open_timeout=open_timeout, max_size=None)
        return cls(ws, url, auto_resume=auto_resume, resume_within=resume_within)

    async def __aenter__(self) -> SignalingClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- requests --------------------------------------------------------------------

    async def send(self, event: str, **fields: Any) -> None:
        """Send one client frame as it is (the typed methods below are built on it)."""
        text = orjson.dumps({"event": event, **fields}).decode()
        ws = self.ws
        try:
            await ws.send(text)
        except websockets.ConnectionClosed as closed:
            if not self._may_resume(closed):
                raise
            await self._resume(ws)
            await self.ws.send(text)

    async def join(self, room_id: str, *, name: str | None = None,
                   user_agent: str | None = None, topology: Topology | str | None = None,
                   resumable: bool = False, token: str | None = None,
                   timeout: float = 10.0) -> JoinedRoom:
        """Join a room; returns `joined_room`, raises SignalingError when refused.

        `topology` "star" opens (or must find) a star room; None takes the room's.
        `resumable` asks for resume; `token` is a join token, where the service wants one."""
        status = {k: v for k, v in (("name", name), ("user_agent", user_agent)) if v}
        fields: dict[str, Any] = {"room_id": room_id, "status": status}
        if topology is not None:
            fields["topology"] = str(topology)
        if resumable:
            fields["resumable"] = True
        if token is not None:
            fields["token"] = token
        await self.send("join_room", **fields)
        return await self.wait_for(JoinedRoom, timeout, raise_errors=True)

    async def leave(self) -> None:
        await self.send("leave_room")
        self.resume_token = None

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
        self._closing = True
        await self.ws.close()

    # -- events ----------------------------------------------------------------------

    async def next_event(self, timeout: float | None = None) -> ServerEvent:
        """The next event from the server (raises websockets.ConnectionClosed at the end,
        ResumeFailed when a resumable peer's socket dropped and it could not resume)."""
        if self._backlog:
            return self._backlog.pop(0)
        while True:
            ws = self.ws
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout)
            except websockets.ConnectionClosed as closed:
                if not self._may_resume(closed):
                    raise
                await self._resume(ws)
                continue
            event = self._read(frame)
            if event is not None:
                return event

    def _read(self, frame: str | bytes) -> ServerEvent | None:
        """Follow the room in what a frame says; None for a resumed joined_room, which
        changes nothing the caller needs to hear of."""
        event, frame_seq = decode_numbered(frame)
        if frame_seq:
            self.last_frame_seq = frame_seq
        if isinstance(event, JoinedRoom):
            self.own_id, self.host_id, self.topology = event.own_id, event.host_id, event.topology
            self.user, self.info = event.user, json_of(event.info)
            self.resume_token = event.resume_token
            if event.resumed:
                return None
            self.last_frame_seq = 0
        elif isinstance(event, HostChanged):
            self.host_id = event.host_id
        elif isinstance(event, Removed):
            self.removed = event.reason
            self.resume_token = None  # void: the peer is gone from its room
        return event

    def _may_resume(self, closed: websockets.ConnectionClosed) -> bool:
        code = closed.rcvd.code if closed.rcvd is not None else None
        return (self.auto_resume and not self._closing and self.resume_token is not None
                and code not in _NO_RESUME_CODES)

    async def _resume(self, dropped: ClientConnection) -> None:
        """A new socket for the peer whose socket `dropped`; the frames it lacks follow."""
        async with self._resume_lock:
            if self.ws is not dropped:
                return  # another task resumed already
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.resume_within
            attempt = 0
            # Set once an attempt's socket closed before its answer: the service may have
            # spent the token there, and takes it once more only once it knows that socket
            # is gone (a killed gateway: when its heartbeat lapses), so `cannot resume`
            # is retried until then (docs/protocol.md, "Resume").
            answer_lost = False
            while True:
                await asyncio.sleep(_RESUME_BACKOFF_S[min(attempt, len(_RESUME_BACKOFF_S) - 1)])
                attempt += 1
                try:
                    ws = await websockets.connect(self.url, open_timeout=5.0, max_size=None)
                except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
                    if loop.time() > deadline:
                        raise ResumeFailed(_cannot_resume()) from exc
                    log.debug("resume: cannot reach %s yet: %s", self.url, exc)
                    continue
                try:
                    await ws.send(orjson.dumps({
                        "event": "resume", "resume_token": self.resume_token,
                        "last_frame_seq": self.last_frame_seq}).decode())
                    while True:  # its joined_room comes first, then what the peer lacked
                        raw = await ws.recv()
                        event = decode_numbered(raw)[0]
                        if isinstance(event, JoinedRoom) and event.resumed:
                            self._read(raw)
                            break
                        if isinstance(event, Error) and event.received_msg == "resume":
                            await ws.close()
                            if answer_lost and loop.time() < deadline:
                                raise _NotYet
                            self.resume_token = None
                            raise ResumeFailed(event)
                except _NotYet:
                    attempt = min(attempt, 3)  # every half second or so, not slower
                    continue
                except websockets.ConnectionClosed as exc:
                    # Gone before its answer (its gateway died, say): the same token again.
                    if loop.time() > deadline:
                        raise ResumeFailed(_cannot_resume()) from exc
                    log.debug("resume: the socket closed before its answer: %s", exc)
                    answer_lost = True
                    continue
                self.ws = ws
                self.resumes += 1
                return

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


class _NotYet(Exception):
    """`cannot resume` for a token an attempt whose answer was lost may have spent."""


def _cannot_resume() -> Error:
    return Error(message="cannot resume", description="cannot resume", received_msg="resume")
