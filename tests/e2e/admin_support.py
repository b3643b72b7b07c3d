"""What the admin API's end-to-end tests share: a client for the API, tokens, peers that
join with them."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import jwt
import websockets

from tests.peers import TIMEOUT, Peer

ADMIN_KEY = "an-admin-key-for-the-tests-0123456789"
JOIN_SECRET = "a-join-secret-for-the-admin-tests-32b"


def minted(room: str, **claims: Any) -> str:
    """A join token for `room` with these claims."""
    return jwt.encode({"room": room, "exp": int(time.time()) + 120, **claims}, JOIN_SECRET)


def room_path(room: str, action: str = "") -> str:
    path = "/admin/rooms/" + urllib.parse.quote(room, safe="")
    return f"{path}/{action}" if action else path


class Admin:
    """The admin API of one gateway, as an app server calls it."""

    def __init__(self, port: int, key: str = ADMIN_KEY) -> None:
        self.port = port
        self.key = key

    def call_sync(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                  key: str | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data,
                                         method=method)
        if (key or self.key) != "":
            request.add_header("Authorization", f"Bearer {key or self.key}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=15) as reply:
                status, text = reply.status, reply.read()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text.decode(errors="replace")

    async def call(self, method: str, path: str, body: Any = None, **options: Any
                   ) -> tuple[int, Any]:
        """The status and decoded JSON body (off the event loop: peers read meanwhile)."""
        return await asyncio.to_thread(self.call_sync, method, path, body, **options)


async def joined(url: str, room: str, **fields: Any) -> tuple[Peer, dict[str, Any]]:
    """A peer that joined `room` (with a token, a topology, resumable...)."""
    peer = await Peer.connect(url)
    await peer.send(event="join_room", room_id=room, **fields)
    frame = await peer.expect("joined_room")
    peer.id = frame["own_id"]
    return peer, frame


async def expect_removed(peer: Peer, reason: str) -> None:
    """The `removed` frame (after whatever came before it), then close code 4003."""
    while (frame := await peer.recv())["event"] != "removed":
        pass
    assert frame == {"event": "removed", "reason": reason}
    await asyncio.wait_for(peer.ws.wait_closed(), TIMEOUT)
    assert peer.ws.close_code == 4003, peer.ws.close_code
    try:
        await peer.recv()
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code == 4003
    else:
        raise AssertionError("a frame after the removal")
