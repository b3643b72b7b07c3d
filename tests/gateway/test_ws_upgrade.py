"""Which first requests the gateway takes as WebSocket upgrades (the rest go to Sanic)."""

from __future__ import annotations

import pytest

from gateway.ws_upgrade import is_websocket_upgrade

_UPGRADE = b"\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade"


@pytest.mark.parametrize(("head", "taken"), [
    (b"GET / HTTP/1.1" + _UPGRADE, True),
    (b"GET /ws HTTP/1.1" + _UPGRADE, True),
    (b"GET /ws/ HTTP/1.1" + _UPGRADE, True),
    (b"GET /?v=2 HTTP/1.1" + _UPGRADE, True),  # a query string does not change the path
    (b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: WebSocket\r\nConnection: Upgrade", True),
    (b"GET / HTTP/1.1\r\nHost: h", False),  # plain HTTP: Sanic answers 426
    (b"GET /healthz HTTP/1.1" + _UPGRADE, False),  # not a WebSocket path
    (b"GET /demo HTTP/1.1" + _UPGRADE, False),
    (b"POST / HTTP/1.1" + _UPGRADE, False),
    (b"GET  / HTTP/1.1" + _UPGRADE, False),  # a broken request line: Sanic's 400
    (b"GET /" + _UPGRADE, False),
])
def test_first_requests_taken_as_upgrades(head: bytes, taken: bool) -> None:
    assert is_websocket_upgrade(head) is taken
