"""One socket's session: client frames in, replies or relay events out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.session import Forward, Session
from shared.events import (
    Join,
    JoinRefused,
    Leave,
    SendToPeer,
    Status,
    Topology,
    UpdateStatus,
    event_encoder,
)
from shared.keys import room_digest, shard_of, shard_stream

CONN = "0f8e3c4a-7d2b-4c1e-9a5f-1b2c3d4e5f60"
GW = "gw-test"


def session(shards: int = 8) -> Session:
    return Session(CONN, GW, shards)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def join(s: Session, room: str = "lobby", **fields: Any) -> Any:
    return s.handle(frame(event="join_room", room_id=room, **fields))


def error(text: str, received: str | None) -> dict[str, Any]:
    shown = {"event": "error", "message": text, "description": text}
    return shown if received is None else {**shown, "received_msg": received}


def reply(result: Any) -> dict[str, Any]:
    assert isinstance(result, bytes)
    return json.loads(result)  # type: ignore[no-any-return]


def stream_of(room: str, shards: int) -> str:
    return shard_stream(shard_of(room_digest(room), shards))


def test_ping_answers_pong() -> None:
    assert reply(session().handle('{"event":"ping"}')) == {"event": "pong"}


def test_info_answers_the_protocol_version() -> None:
    info = reply(session().handle('{"event":"info"}'))
    assert info["event"] == "info"
    assert info["protocol_version"] == "1.0.0"


@pytest.mark.parametrize("text, shown", [
    ("not json", error("invalid message", None)),
    ("{}", error("no event given", None)),
    ('{"event":"nope"}', error("unknown event", "nope")),
    ('{"event":"join_room"}', error("no room id given", "join_room")),
    ('{"event":"update_status","status":{}}', error("currently not in any room", "update_status")),
    ('{"event":"send_to_peer","peer_id":"p","data":{"event":"offer"}}',
     error("currently not in any room", "send_to_peer")),
])
def test_refused_frames_answer_an_error(text: str, shown: dict[str, Any]) -> None:
    assert reply(session().handle(text)) == shown


@pytest.mark.parametrize("room", ["lobby", "room-1", "✈ trip", "a" * 50])
@pytest.mark.parametrize("shards", [1, 8, 64])
def test_join_goes_to_the_rooms_shard_stream(room: str, shards: int) -> None:
    s = session(shards)
    assert join(s, room, status={"name": "Ann"}) == Forward(
        stream_of(room, shards),
        Join(conn=CONN, room=room_digest(room), gateway=GW, seq=1, status=Status(name="Ann")),
    )


@pytest.mark.parametrize("named, topology", [
    ({}, None), ({"topology": "star"}, Topology.STAR), ({"topology": "mesh"}, Topology.MESH)])
def test_join_carries_the_topology_it_names(named: dict[str, str],
                                             topology: Topology | None) -> None:
    forward = join(session(), "lobby", **named)
    assert isinstance(forward, Forward) and forward.event.topology is topology


def test_a_join_with_an_unknown_topology_is_refused_and_leaves_no_room() -> None:
    s = session()
    assert reply(join(s, "a", topology="ring")) == error("wrong topology", "join_room")
    assert s.room is None
    assert isinstance(join(s, "a", topology="star"), Forward)


@pytest.mark.parametrize("room", ["lobby", "my secret room", "✈ trip"])
def test_the_room_name_never_leaves_in_clear(room: str) -> None:
    forward = join(session(), room)
    assert room not in forward.stream
    assert room.encode() not in event_encoder.encode(forward.event)


def test_join_seq_counts_joins() -> None:
    s = session()
    seqs = []
    for room in ("a", "b", "c"):
        seqs.append(join(s, room).event.seq)
        s.handle('{"event":"leave_room"}')
    assert seqs == [1, 2, 3]


def test_a_second_join_while_in_a_room_is_refused() -> None:
    s = session()
    join(s, "a")
    assert reply(join(s, "b")) == error("already joined another room", "join_room")


def test_leave_in_no_room_is_ignored() -> None:
    assert session().handle('{"event":"leave_room"}') is None


def test_leave_goes_to_the_rooms_stream_and_clears_the_room() -> None:
    s = session()
    join(s, "lobby")
    assert s.handle('{"event":"leave_room"}') == Forward(
        stream_of("lobby", 8), Leave(conn=CONN, room=room_digest("lobby")))
    assert s.handle('{"event":"leave_room"}') is None
    assert isinstance(join(s, "other"), Forward)


def test_leave_of_a_closing_socket() -> None:
    s = session()
    assert s.leave() is None
    join(s, "lobby")
    assert s.leave() == Forward(stream_of("lobby", 8), Leave(conn=CONN, room=room_digest("lobby")))
    assert s.leave() is None


def test_update_status_goes_to_the_rooms_stream() -> None:
    s = session()
    join(s, "lobby")
    text = frame(event="update_status", status={"name": "Bo", "user_agent": "opera", "x": 1})
    assert s.handle(text) == Forward(stream_of("lobby", 8), UpdateStatus(
        conn=CONN, room=room_digest("lobby"), status=Status(name="Bo", user_agent="opera")))


def test_send_to_peer_goes_to_the_rooms_stream() -> None:
    s = session()
    join(s, "lobby")
    text = '{"event":"send_to_peer","peer_id":"p2","data":{"event":"offer", "sdp":"v=0"}}'
    assert s.handle(text) == Forward(stream_of("lobby", 8), SendToPeer(
        conn=CONN, room=room_digest("lobby"), peer="p2", data=b'{"event":"offer", "sdp":"v=0"}'))


def test_join_refused_for_the_current_join_leaves_no_room() -> None:
    s = session()
    join(s, "full")
    s.join_refused(JoinRefused(seq=1))
    assert s.handle('{"event":"leave_room"}') is None
    assert join(s, "other").event.seq == 2


def test_join_refused_for_an_older_join_keeps_the_room() -> None:
    s = session()
    join(s, "full")
    s.join_refused(JoinRefused(seq=1))
    join(s, "lobby")  # seq 2
    s.join_refused(JoinRefused(seq=1))  # late, about the first join
    assert reply(join(s, "again")) == error("already joined another room", "join_room")
    assert s.leave() == Forward(stream_of("lobby", 8), Leave(conn=CONN, room=room_digest("lobby")))
