"""The adapters' frames: ~300-byte JSON candidates that decode back to their seq and time."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from bench.protocols import ADAPTERS

PEER = "0f8fad5b-d9cb-469f-a165-70867728950e"


class Seen:
    client_id = PEER

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.own_id = ""
        self.room = "room-1"

    def send(self, data: bytes) -> None:
        self.events.append(("sent", data))

    def on_candidate(self, seq: int, sent_ns: int) -> None:
        self.events.append(("candidate", (seq, sent_ns)))

    def on_joined(self, own_id: str, peers: list[str]) -> None:
        self.events.append(("joined", (own_id, peers)))

    def on_new_peer(self, peer_id: str) -> None:
        self.events.append(("new_peer", peer_id))

    def on_error(self, text: str) -> None:
        self.events.append(("error", text))


@pytest.mark.parametrize("name", ["switchboard", "peerjs", "socketio-pubsub"])
def test_candidate_frames_are_about_300_bytes_of_json(name: str) -> None:
    frame = ADAPTERS[name].candidate_template(PEER) % (123456, 987654321012345)
    assert 280 <= len(frame) <= 340
    body = frame[2:] if name.startswith("socketio") else frame  # Socket.IO: `42` + JSON
    assert isinstance(orjson.loads(body), dict | list)


def test_switchboard_reads_what_the_server_forwards() -> None:
    adapter, seen = ADAPTERS["switchboard"], Seen()
    sent = orjson.loads(adapter.candidate_template(PEER) % (7, 99))
    for msg in ({**sent["data"], "sender_id": "x"},
                {"event": "joined_room", "own_id": "me", "peers": [{"peer_id": "a", "status": {}}]},
                {"event": "new_peer", "peer_id": "b", "status": {}},
                {"event": "error", "message": "unknown peer", "description": "unknown peer"},
                {"event": "pong"}):
        adapter.dispatch(seen, orjson.dumps(msg))
    assert seen.events == [("candidate", (7, 99)), ("joined", ("me", ["a"])),
                           ("new_peer", "b"), ("error", "error: unknown peer")]


def test_peerjs_reads_what_the_server_forwards() -> None:
    adapter, seen = ADAPTERS["peerjs"], Seen()
    sent = orjson.loads(adapter.candidate_template(PEER) % (7, 99))
    assert sent["type"] == "CANDIDATE" and sent["dst"] == PEER
    for msg in ({**sent, "src": "x"}, {"type": "OPEN"},
                {"type": "EXPIRE", "src": "x", "dst": PEER}):
        adapter.dispatch(seen, orjson.dumps(msg))
    assert seen.events[:2] == [("candidate", (7, 99)), ("joined", (PEER, []))]
    assert seen.events[2][0] == "error"


def test_socketio_connects_then_joins_then_reads_signals() -> None:
    """Connected (`40{sid}`): the join goes out with an ack id; its ack is the join; pings
    are answered; a signal's data is the candidate that was sent."""
    adapter, seen = ADAPTERS["socketio-streams"], Seen()
    assert adapter.join_frame("room-1") == b"40"
    sent = orjson.loads((adapter.candidate_template(PEER) % (7, 99))[2:])
    assert sent[0] == "signal" and sent[1]["to"] == PEER
    signal = b"42" + orjson.dumps(["signal", {"from": "x", "data": sent[1]["data"]}])
    for packet in (b'0{"sid":"e1","pingInterval":25000}', b'40{"sid":"s1"}', b'431["s1"]',
                   b"2", signal, b'42["other",{}]', b'44{"message":"no"}'):
        adapter.dispatch(seen, packet)
    assert seen.events == [("sent", b'421["join","room-1"]'), ("joined", ("s1", [])),
                           ("sent", b"3"), ("candidate", (7, 99)),
                           ("error", 'socket.io: 44{"message":"no"}')]
