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

    def on_candidate(self, seq: int, sent_ns: int) -> None:
        self.events.append(("candidate", (seq, sent_ns)))

    def on_joined(self, own_id: str, peers: list[str]) -> None:
        self.events.append(("joined", (own_id, peers)))

    def on_new_peer(self, peer_id: str) -> None:
        self.events.append(("new_peer", peer_id))

    def on_error(self, text: str) -> None:
        self.events.append(("error", text))


@pytest.mark.parametrize("name", ["switchboard", "peerjs"])
def test_candidate_frames_are_about_300_bytes_of_json(name: str) -> None:
    frame = ADAPTERS[name].candidate_template(PEER) % (123456, 987654321012345)
    assert 280 <= len(frame) <= 340
    assert isinstance(orjson.loads(frame), dict)


def test_switchboard_reads_what_the_server_forwards() -> None:
    adapter, seen = ADAPTERS["switchboard"], Seen()
    sent = orjson.loads(adapter.candidate_template(PEER) % (7, 99))
    for msg in ({**sent["data"], "sender_id": "x"},
                {"event": "joined_room", "own_id": "me", "peers": [{"peer_id": "a", "status": {}}]},
                {"event": "new_peer", "peer_id": "b", "status": {}},
                {"event": "error", "message": "unknown peer", "description": "unknown peer"},
                {"event": "pong"}):
        adapter.dispatch(seen, msg)
    assert seen.events == [("candidate", (7, 99)), ("joined", ("me", ["a"])),
                           ("new_peer", "b"), ("error", "error: unknown peer")]


def test_peerjs_reads_what_the_server_forwards() -> None:
    adapter, seen = ADAPTERS["peerjs"], Seen()
    sent = orjson.loads(adapter.candidate_template(PEER) % (7, 99))
    assert sent["type"] == "CANDIDATE" and sent["dst"] == PEER
    for msg in ({**sent, "src": "x"}, {"type": "OPEN"},
                {"type": "EXPIRE", "src": "x", "dst": PEER}):
        adapter.dispatch(seen, msg)
    assert seen.events[:2] == [("candidate", (7, 99)), ("joined", (PEER, []))]
    assert seen.events[2][0] == "error"
