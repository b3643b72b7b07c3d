"""Server frames decode into the client library's typed events."""

from __future__ import annotations

import msgspec
import pytest

from shared.events import Status, Topology
from shared.frames import (
    Error,
    HostChanged,
    Info,
    JoinedRoom,
    NewPeer,
    PeerEntry,
    PeerLeft,
    PeerUpdatedStatus,
    Pong,
    RemovalReason,
    Removed,
    ServerMessage,
    Shutdown,
)
from switchboard_client import PeerMessage, decode_event, json_of


@pytest.mark.parametrize(("frame", "event"), [
    ('{"event":"joined_room","own_id":"a","peers":[{"peer_id":"b","status":{"name":"B"}}]}',
     JoinedRoom(own_id="a", peers=[PeerEntry(peer_id="b", status=Status(name="B"))])),
    ('{"event":"joined_room","own_id":"a","peers":[],"host_id":"a","topology":"star"}',
     JoinedRoom(own_id="a", peers=[], host_id="a", topology=Topology.STAR)),
    ('{"event":"host_changed","host_id":"b","peers":[{"peer_id":"b","status":{}}]}',
     HostChanged(host_id="b", peers=[PeerEntry(peer_id="b", status=Status())])),
    ('{"event":"new_peer","peer_id":"b","status":{}}', NewPeer(peer_id="b", status=Status())),
    ('{"event":"peer_left","sender_id":"b"}', PeerLeft(sender_id="b")),
    ('{"event":"peer_updated_status","status":{"user_agent":"chrome"},"sender_id":"b"}',
     PeerUpdatedStatus(status=Status(user_agent="chrome"), sender_id="b")),
    ('{"event":"error","message":"unknown peer","description":"unknown peer",'
     '"received_msg":"send_to_peer"}',
     Error(message="unknown peer", description="unknown peer", received_msg="send_to_peer")),
    ('{"event":"shutdown","seconds":3}', Shutdown(seconds=3)),
    ('{"event":"removed","reason":"expired"}', Removed(reason=RemovalReason.EXPIRED)),
    ('{"event":"pong"}', Pong()),
    ('{"event":"info","protocol_version":"1.0.0","server":"x/1"}',
     Info(protocol_version="1.0.0", server="x/1")),
    ('{"event":"offer","sdp":{"type":"offer","sdp":"v=0"},"sender_id":"b"}',
     PeerMessage(event="offer", sender_id="b",
                 data={"event": "offer", "sdp": {"type": "offer", "sdp": "v=0"}, "sender_id": "b"})),
    ('{"event":"message","data":{"text":"✈"},"sender_id":"b"}',
     PeerMessage(event="message", sender_id="b",
                 data={"event": "message", "data": {"text": "✈"}, "sender_id": "b"})),
])
def test_frames_decode_to_typed_events(frame: str, event: object) -> None:
    assert decode_event(frame) == event


def test_a_frame_of_no_known_kind_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_event('{"event":"surprise"}')


def test_identities_and_server_messages_decode_with_their_json() -> None:
    joined = decode_event('{"event":"joined_room","own_id":"a","peers":[{"peer_id":"b",'
                          '"status":{},"user":"bo","info":{"name":"Bo"}}],"user":"al"}')
    assert isinstance(joined, JoinedRoom)
    assert (joined.user, json_of(joined.info)) == ("al", None)
    assert (joined.peers[0].user, json_of(joined.peers[0].info)) == ("bo", {"name": "Bo"})
    new_peer = decode_event('{"event":"new_peer","peer_id":"c","status":{},"info":{"n":1}}')
    assert isinstance(new_peer, NewPeer) and json_of(new_peer.info) == {"n": 1}
    message = decode_event('{"event":"server_message","data":{"text":"hi"},"frame_seq":4}')
    assert isinstance(message, ServerMessage) and json_of(message.data) == {"text": "hi"}
