"""TURN credentials and ICE servers (docs/protocol.md, "TURN and ICE servers"), checked against
an HMAC computed here, as coturn's use-auth-secret does."""

from __future__ import annotations

import base64
import hashlib
import hmac

from gateway.ice_servers import IceServers

SECRET = "turn-secret"
PEER = "0f8e3c4a-7d2b-4c1e-9a5f-1b2c3d4e5f60"


def test_turn_credentials_are_coturns_time_limited_ones() -> None:
    fields = IceServers(SECRET, 3600, []).fields(PEER, now_s=1_700_000_000.7)
    assert fields["turn_user"] == f"1700003600:{PEER}"
    expected = base64.b64encode(hmac.new(SECRET.encode(), fields["turn_user"].encode(),
                                         hashlib.sha1).digest()).decode()
    assert fields["turn_password"] == expected
    assert "ice_servers" not in fields


def test_ice_servers_are_ready_for_rtcpeerconnection() -> None:
    ice = IceServers(SECRET, 10800, ["stun:stun.example.com:3478",
                                     "turn:turn.example.com:3478?transport=udp",
                                     "turns:turn.example.com:5349"])
    fields = ice.fields(PEER, now_s=100)
    assert fields["ice_servers"] == [
        {"urls": ["stun:stun.example.com:3478"]},
        {"urls": ["turn:turn.example.com:3478?transport=udp", "turns:turn.example.com:5349"],
         "username": fields["turn_user"], "credential": fields["turn_password"]},
    ]


def test_without_a_secret_only_stun_servers_are_sent() -> None:
    ice = IceServers("", 10800, ["stun:a.example:3478", "turn:b.example:3478"])
    assert ice.fields(PEER, 0) == {"ice_servers": [{"urls": ["stun:a.example:3478"]}]}


def test_nothing_configured_adds_nothing() -> None:
    ice = IceServers("", 10800, [])
    assert not ice.any and ice.fields(PEER, 0) == {}


def test_the_secret_is_not_in_the_repr() -> None:
    assert SECRET not in repr(IceServers(SECRET, 10, []))
