"""Client frames decoded at the edge: every error text of docs/protocol.md the gateway answers."""

from __future__ import annotations

import json

import pytest

from gateway.frame_parser import (
    InfoRequest,
    JoinRoom,
    LeaveRoom,
    Ping,
    Refusal,
    SendToPeer,
    UpdateStatus,
    parse_frame,
    parse_status,
)
from shared.events import Status, Topology

BOTH = pytest.mark.parametrize("in_room", [False, True])


def send_to_peer(data: str | None = '{"event":"offer"}', peer: str | None = '"p"') -> str:
    fields = ['"event":"send_to_peer"']
    if peer is not None:
        fields.append(f'"peer_id":{peer}')
    if data is not None:
        fields.append(f'"data":{data}')
    return "{" + ",".join(fields) + "}"


# -- malformed frames ------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("text", [
    "", "not json", '{"event":"ping"', "{'event':'ping'}",
    "[]", '["ping"]', '"x"', "1", "null", "true",
])
def test_not_a_json_object_is_an_invalid_message(text: str, in_room: bool) -> None:
    assert parse_frame(text, in_room) == Refusal("invalid message", None)


@BOTH
@pytest.mark.parametrize("text", [
    "{}", '{"event":null}', '{"event":1}', '{"event":["ping"]}', '{"event":{}}',
    '{"room_id":"r"}',
])
def test_no_string_event_is_no_event_given(text: str, in_room: bool) -> None:
    assert parse_frame(text, in_room) == Refusal("no event given", None)


@BOTH
@pytest.mark.parametrize("event", ["nope", "", "PING", "Join_Room", "joined_room", "error"])
def test_unknown_event_names_what_was_received(event: str, in_room: bool) -> None:
    assert parse_frame(json.dumps({"event": event}), in_room) == Refusal("unknown event", event)


@BOTH
@pytest.mark.parametrize("text, command", [
    ('{"event":"ping"}', Ping()),
    ('{"event":"info"}', InfoRequest()),
    ('{"event":"leave_room"}', LeaveRoom()),  # no error when in no room (docs/protocol.md)
    ('{"event":"ping","x":1,"y":{"z":[null]}}', Ping()),
    ('{"event":"leave_room","room_id":"r","status":5}', LeaveRoom()),
])
def test_commands_without_fields(text: str, command: object, in_room: bool) -> None:
    assert parse_frame(text, in_room) == command


# -- join_room -------------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("room_id", [None, "null", "1", "[]", "{}", "true", '""', '["r"]'])
def test_join_without_a_string_room_id(room_id: str | None, in_room: bool) -> None:
    text = '{"event":"join_room"' + ("" if room_id is None else f',"room_id":{room_id}') + "}"
    assert parse_frame(text, in_room) == Refusal("no room id given", "join_room")


@pytest.mark.parametrize("room_id", ["a" * 50, "é" * 50, "✈" * 50, "r", " "])
def test_room_ids_up_to_50_characters_are_accepted(room_id: str) -> None:
    text = json.dumps({"event": "join_room", "room_id": room_id})
    assert parse_frame(text, False) == JoinRoom(room_id, Status())


@BOTH
@pytest.mark.parametrize("room_id", ["a" * 51, "é" * 51, "a" * 500])
def test_room_id_longer_than_50_characters(room_id: str, in_room: bool) -> None:
    text = json.dumps({"event": "join_room", "room_id": room_id})
    assert parse_frame(text, in_room) == Refusal("room id too long", "join_room")


@pytest.mark.parametrize("text", [
    '{"event":"join_room","room_id":"r"}',
    '{"event":"join_room","room_id":"r","status":{"name":"Ann"}}',
    '{"event":"join_room","room_id":"r","status":"bad"}',  # status is looked at last
])
def test_join_while_in_a_room(text: str) -> None:
    assert parse_frame(text, True) == Refusal("already joined another room", "join_room")


def test_join_with_extra_fields() -> None:
    text = '{"event":"join_room","room_id":"r","peer_id":"p","data":1,"token":"t","foo":[1]}'
    # `token` is a join token (looked at by the session when tokens are required).
    assert parse_frame(text, False) == JoinRoom("r", Status(), token=b'"t"')


@pytest.mark.parametrize("topology, named", [
    ('"star"', Topology.STAR),
    ('"mesh"', Topology.MESH),
    ("null", None),  # as if absent: the room's topology
])
def test_join_names_a_topology(topology: str, named: Topology | None) -> None:
    text = '{"event":"join_room","room_id":"r","topology":' + topology + "}"
    assert parse_frame(text, False) == JoinRoom("r", Status(), named)


@pytest.mark.parametrize("topology", ['"Star"', '"ring"', '""', '"mesh "', "1", "true",
                                      '["star"]', '{"kind":"star"}'])
def test_join_with_an_unknown_topology(topology: str) -> None:
    text = '{"event":"join_room","room_id":"r","topology":' + topology + "}"
    assert parse_frame(text, False) == Refusal("wrong topology", "join_room")


@pytest.mark.parametrize("text, refusal", [
    # The palava checks come first, so that a palava client's frame gets palava's answer.
    ('{"event":"join_room","topology":"x"}', "no room id given"),
    ('{"event":"join_room","room_id":"r","topology":"x","status":{"name":" "}}',
     "blank name not allowed"),
])
def test_a_bad_topology_is_looked_at_after_the_palava_fields(text: str, refusal: str) -> None:
    assert parse_frame(text, False) == Refusal(refusal, "join_room")


def test_a_bad_topology_while_in_a_room_is_already_joined() -> None:
    text = '{"event":"join_room","room_id":"r","topology":"x"}'
    assert parse_frame(text, True) == Refusal("already joined another room", "join_room")


# -- status: one table for join_room, update_status and parse_status --------------------------

VALID_STATUSES = [
    ("{}", Status()),
    ('{"name":"Ann"}', Status(name="Ann")),
    ('{"name":"' + "a" * 50 + '"}', Status(name="a" * 50)),
    ('{"name":"✈✈"}', Status(name="**")),
    ('{"name":"Zoë"}', Status(name="***")),
    ('{"name":"' + "é" * 50 + '"}', Status(name="*" * 50)),
    ('{"user_agent":"chrome"}', Status(user_agent="chrome")),
    ('{"user_agent":"firefox"}', Status(user_agent="firefox")),
    ('{"user_agent":"safari"}', Status(user_agent="safari")),
    ('{"user_agent":"edge"}', Status(user_agent="edge")),
    ('{"user_agent":"opera"}', Status(user_agent="opera")),
    ('{"user_agent":"unknown"}', Status(user_agent="unknown")),
    ('{"name":"Ann","user_agent":"firefox"}', Status(name="Ann", user_agent="firefox")),
    ('{"name":"Ann","avatar":"x.png","admin":true,"user_agent":"edge","n":null}',
     Status(name="Ann", user_agent="edge")),
    ('{"avatar":"x.png"}', Status()),
]

INVALID_STATUSES = [
    ("null", "invalid status"),
    ("[]", "invalid status"),
    ('[{"name":"Ann"}]', "invalid status"),
    ('"Ann"', "invalid status"),
    ("1", "invalid status"),
    ("true", "invalid status"),
    ('{"name":1}', "invalid status"),
    ('{"name":null}', "invalid status"),
    ('{"name":["Ann"]}', "invalid status"),
    ('{"name":{"first":"Ann"}}', "invalid status"),
    ('{"user_agent":1}', "invalid status"),
    ('{"user_agent":null}', "invalid status"),
    ('{"name":"Ann","user_agent":["chrome"]}', "invalid status"),
    ('{"name":""}', "blank name not allowed"),
    ('{"name":"   "}', "blank name not allowed"),
    ('{"name":" \\t\\n "}', "blank name not allowed"),
    ('{"name":"' + "a" * 51 + '"}', "name too long"),
    ('{"name":"' + "é" * 51 + '"}', "name too long"),
    ('{"user_agent":"netscape"}', "unknown user agent"),
    ('{"user_agent":"Chrome"}', "unknown user agent"),
    ('{"user_agent":""}', "unknown user agent"),
    ('{"name":"Ann","user_agent":"ie"}', "unknown user agent"),
]


@pytest.mark.parametrize("status, kept", VALID_STATUSES)
def test_parse_status_keeps_name_and_user_agent(status: str, kept: Status) -> None:
    assert parse_status(json.loads(status)) == kept


@pytest.mark.parametrize("status, text", INVALID_STATUSES)
def test_parse_status_refuses(status: str, text: str) -> None:
    assert parse_status(json.loads(status)) == text


@pytest.mark.parametrize("status, kept", VALID_STATUSES)
def test_join_room_with_a_valid_status(status: str, kept: Status) -> None:
    text = '{"event":"join_room","room_id":"r","status":' + status + "}"
    assert parse_frame(text, False) == JoinRoom("r", kept)


@pytest.mark.parametrize("status, error", INVALID_STATUSES)
def test_join_room_with_an_invalid_status(status: str, error: str) -> None:
    text = '{"event":"join_room","room_id":"r","status":' + status + "}"
    assert parse_frame(text, False) == Refusal(error, "join_room")


@pytest.mark.parametrize("status, kept", VALID_STATUSES)
def test_update_status_in_a_room(status: str, kept: Status) -> None:
    text = '{"event":"update_status","status":' + status + "}"
    assert parse_frame(text, True) == UpdateStatus(kept)


@pytest.mark.parametrize("status, error", INVALID_STATUSES)
def test_update_status_with_an_invalid_status(status: str, error: str) -> None:
    text = '{"event":"update_status","status":' + status + "}"
    assert parse_frame(text, True) == Refusal(error, "update_status")


@pytest.mark.parametrize("status", ['{"name":"Ann"}', "{}", "null", '{"name":""}'])
def test_update_status_not_in_a_room_comes_first(status: str) -> None:
    text = '{"event":"update_status","status":' + status + "}"
    assert parse_frame(text, False) == Refusal("currently not in any room", "update_status")


# -- send_to_peer ----------------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("peer", ['"p"', None])  # checked before the room and the peer
@pytest.mark.parametrize("data", [None, '"offer"', '["offer"]', "1", "null", "true"])
def test_send_to_peer_without_an_object_is_raw_data(
    data: str | None, peer: str | None, in_room: bool,
) -> None:
    text = send_to_peer(data, peer)
    assert parse_frame(text, in_room) == Refusal("cannot send raw data", "send_to_peer")


@pytest.mark.parametrize("text", [
    send_to_peer(),
    send_to_peer(peer=None),  # not in a room is said before unknown peer
    send_to_peer(peer="1"),
    send_to_peer('{"event":"bogus"}'),  # ... and before event not allowed
    send_to_peer("{}", peer=None),
])
def test_send_to_peer_not_in_a_room(text: str) -> None:
    assert parse_frame(text, False) == Refusal("currently not in any room", "send_to_peer")


@pytest.mark.parametrize("peer", [None, "null", "1", "[]", '{"id":"p"}', "true"])
@pytest.mark.parametrize("data", ['{"event":"offer"}', '{"event":"bogus"}', "{}"])
def test_send_to_peer_without_a_string_peer_id(peer: str | None, data: str) -> None:
    # unknown peer is said before event not allowed
    assert parse_frame(send_to_peer(data, peer), True) == Refusal("unknown peer", "send_to_peer")


@pytest.mark.parametrize("data", [
    "{}",
    '{"sdp":"v=0"}',
    '{"event":null}',
    '{"event":1}',
    '{"event":["offer"]}',
    '{"event":""}',
    '{"event":"bogus"}',
    '{"event":"OFFER"}',
    '{"event":"join_room"}',
    '{"event":"send_to_peer"}',
    '{"event":"new_peer"}',
    '{"event":"peer_left"}',
    '{"event":"error"}',
    '{"event":"bogus","sender_id":"x"}',
])
def test_send_to_peer_with_an_event_not_allowed(data: str) -> None:
    assert parse_frame(send_to_peer(data), True) == Refusal("event not allowed", "send_to_peer")


@pytest.mark.parametrize("event", ["offer", "answer", "ice_candidate", "message"])
def test_send_to_peer_with_each_allowed_event(event: str) -> None:
    data = '{"event":"' + event + '"}'
    assert parse_frame(send_to_peer(data), True) == SendToPeer("p", data.encode())


@pytest.mark.parametrize("data", [
    '{"event":"offer","sdp":"v=0\\r\\no=- 46117 2 IN IP4 127.0.0.1\\r\\ns=-\\r\\n"}',
    '{ "event" : "answer" ,\n  "sdp" : "v=0"\t}',
    '{"z":0,"a":1,"event":"ice_candidate","candidate":{"candidate":"candidate:1 1 UDP 1 1.2.3.4 5 typ host","sdpMid":"0","sdpMLineIndex":0}}',
    '{"event":"message","text":"✈ é \\u00e9 \\ud83d\\ude00","n":1.50,"e":1E2,"big":123456789012345678901234567890}',
    '{"event":"message","data":{"deep":[{"k":"}"},[],{}],"sender_id":"nested stays"}}',
    '{"event":"message","dup":1,"dup":2}',
])
def test_send_to_peer_keeps_the_data_bytes(data: str) -> None:
    assert parse_frame(send_to_peer(data), True) == SendToPeer("p", data.encode())


@pytest.mark.parametrize("data, kept", [
    ('{"event":"offer","sender_id":"evil"}', {"event": "offer"}),
    ('{"sender_id":"evil","event":"answer","sdp":"v=0\\r\\n"}', {"event": "answer", "sdp": "v=0\r\n"}),
    ('{"event":"message","sender_id":null,"data":{"sender_id":"nested stays"}}',
     {"event": "message", "data": {"sender_id": "nested stays"}}),
    ('{"event":"message","sender_id":{"a":1},"text":"✈","n":1.5,"big":123456789012345678901234567890}',
     {"event": "message", "text": "✈", "n": 1.5, "big": 123456789012345678901234567890}),
    # The relay numbers a resumable receiver's frames: a client's own number would be a
    # second frame_seq key in the frame.
    ('{"event":"message","frame_seq":999,"text":"x"}', {"event": "message", "text": "x"}),
    ('{"event":"offer","frame_seq":1,"sender_id":"evil"}', {"event": "offer"}),
])
def test_send_to_peer_drops_a_client_sender_id(data: str, kept: dict[str, object]) -> None:
    command = parse_frame(send_to_peer(data), True)
    assert isinstance(command, SendToPeer)
    assert command.peer_id == "p"
    assert json.loads(command.data) == kept


def test_send_to_peer_drops_a_client_sender_id_beside_a_huge_number() -> None:
    command = parse_frame(send_to_peer('{"event":"offer","sender_id":"evil","n":1e400}'), True)
    assert isinstance(command, SendToPeer)
    # The other values stay the client's bytes: nothing was parsed and printed again.
    assert command.data == b'{"event":"offer","n":1e400}'



def test_send_to_peer_passes_a_huge_number_without_sender_id() -> None:
    data = '{"event":"offer","n":1e400}'
    assert parse_frame(send_to_peer(data), True) == SendToPeer("p", data.encode())


def test_send_to_peer_ignores_extra_top_level_fields() -> None:
    text = ('{"x":1,"event":"send_to_peer","room_id":"r","status":{},"peer_id":"p",'
            '"data":{"event":"offer"},"sender_id":"evil"}')
    assert parse_frame(text, True) == SendToPeer("p", b'{"event":"offer"}')
