"""A resumable test peer, and the tally a resume test reports: frames sent, replayed,
lost and duplicated."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import websockets

from harness.processes import Cluster
from tests.peers import TIMEOUT, Peer


@dataclass
class Tally:
    """What one sender sent to one resumable receiver, and what arrived, by number `n`."""

    sent: list[int] = field(default_factory=list)
    received: list[int] = field(default_factory=list)
    # At the resume: how many had been received, and sent (those sent before and received
    # after it came in its replay).
    received_at_resume: int = 0
    sent_at_resume: int = 0

    def resuming(self) -> None:
        self.received_at_resume, self.sent_at_resume = len(self.received), len(self.sent)

    @property
    def replayed(self) -> int:
        return sum(1 for n in self.received[self.received_at_resume:]
                   if n < self.sent_at_resume)

    @property
    def lost(self) -> int:
        return len(set(self.sent) - set(self.received))

    @property
    def duplicated(self) -> int:
        return len(self.received) - len(set(self.received))

    @property
    def in_order(self) -> bool:
        return self.received == sorted(self.received)

    def forget(self, frames: list[dict[str, Any]]) -> None:
        """Those frames never arrived (lost in flight)."""
        lost = {f["n"] for f in frames if f.get("event") == "message" and "n" in f}
        self.received = [n for n in self.received if n not in lost]

    def figures(self) -> dict[str, int]:
        return {"sent": len(self.sent), "replayed": self.replayed, "lost": self.lost,
                "duplicated": self.duplicated}


class ResumablePeer:
    """A peer that joins resumable and can resume on another socket, keeping what its
    client would: the last frame_seq it got and the latest resume token."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.id = ""
        self.token = ""
        self.last_seq = 0
        self.frames: list[dict[str, Any]] = []  # numbered frames, in the order they came

    @classmethod
    async def join(cls, url: str, room: str, *, ssl: Any = None,
                   local_addr: tuple[str, int] | None = None, **fields: Any) -> ResumablePeer:
        """Join `room` resumable (`fields` go into join_room; `ssl` and `local_addr` to
        the connection)."""
        peer = cls(await Peer.connect(url, **_options(ssl, local_addr)))
        await peer.peer.send(event="join_room", room_id=room, resumable=True, **fields)
        joined = await peer.peer.expect("joined_room")
        peer.id, peer.token = joined["own_id"], joined["resume_token"]
        peer.peer.id = peer.id
        return peer

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame; numbered ones must follow the last one by exactly 1."""
        frame = await self.peer.recv(timeout)
        if "frame_seq" in frame:
            assert frame["frame_seq"] == self.last_seq + 1, (self.last_seq, frame)
            self.last_seq = frame["frame_seq"]
            self.frames.append(frame)
        return frame

    async def expect(self, event: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame.get("event") == event, f"expected {event!r}, got {frame}"
        return frame

    def drop(self) -> None:
        """The network goes: the socket is gone without a close handshake."""
        self.peer.ws.transport.abort()

    async def resume(self, url: str, last_seq: int | None = None,
                     timeout: float = TIMEOUT, *, ssl: Any = None,
                     local_addr: tuple[str, int] | None = None) -> dict[str, Any]:
        """A new socket takes the peer over; returns the joined_room (resumed).

        With `last_seq`, the frames after it count as lost in flight: they are forgotten
        here (a tally drops its messages too: `forget_after`)."""
        if last_seq is not None:
            self.frames = [f for f in self.frames if f["frame_seq"] <= last_seq]
            self.last_seq = last_seq
        self.peer = await Peer.connect(url, **_options(ssl, local_addr))
        self.peer.id = self.id
        await self.peer.send(event="resume", resume_token=self.token,
                             last_frame_seq=self.last_seq)
        joined = await self.peer.expect("joined_room", timeout)
        assert joined["resumed"] is True and joined["own_id"] == self.id, joined
        assert "frame_seq" not in joined
        self.token = joined["resume_token"]
        return joined

    async def messages_until(self, tally: Tally, last_n: int,
                             timeout: float = TIMEOUT) -> None:
        """Read messages into `tally` until the one numbered `last_n` arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while last_n not in tally.received:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(left, 0.01))
            if frame.get("event") == "message" and "n" in frame:
                tally.received.append(frame["n"])

    async def close(self) -> None:
        await self.peer.close()


async def pair(cluster: Cluster, room: str) -> tuple[ResumablePeer, Peer]:
    """A resumable peer on gateway 0, then a plain one on gateway 1 (its frame 1 is the
    new_peer about it)."""
    a = await ResumablePeer.join(cluster.url(0), room)
    b = await Peer.connect(cluster.url(1))
    await b.join(room)
    assert (await a.expect("new_peer"))["frame_seq"] == 1
    return a, b


async def closed_code(peer: Peer, timeout: float = TIMEOUT) -> int | None:
    """Wait until the server closes `peer`'s socket; its close code."""
    try:
        while True:
            raw = await asyncio.wait_for(peer.ws.recv(), timeout)
            assert "frame_seq" not in json.loads(raw), raw
    except websockets.ConnectionClosed:
        pass
    return peer.ws.close_code


async def send_messages(sender: Peer, target: str, tally: Tally, count: int) -> None:
    """`count` messages numbered on from what `tally` holds, recorded as sent."""
    for _ in range(count):
        n = len(tally.sent)
        await sender.send(event="send_to_peer", peer_id=target,
                          data={"event": "message", "n": n})
        tally.sent.append(n)


def _options(ssl: Any, local_addr: tuple[str, int] | None) -> dict[str, Any]:
    """The connection's options that are set."""
    return {name: value for name, value in (("ssl", ssl), ("local_addr", local_addr))
            if value is not None}
