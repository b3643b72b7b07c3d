"""One socket's session: client frames in, replies or relay events out."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from gateway.join_tokens import JoinTokens
from gateway.resume_tokens import token_digest
from gateway.session import Forward, Session
from shared.events import (
    Detach,
    Join,
    JoinRefused,
    Leave,
    LeaveReason,
    Resume,
    Resumed,
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


# -- resume (docs/protocol.md, "Resume") -----------------------------------------------------

NEW_SOCKET = "9a40b026-7a50-49f1-97a4-d5b17215a9c4"


def resumable_join(s: Session, room: str = "lobby") -> Join:
    forward = join(s, room, resumable=True)
    assert isinstance(forward, Forward) and isinstance(forward.event, Join)
    return forward.event


def test_a_resumable_join_sends_only_the_tokens_digest() -> None:
    s = session()
    event = resumable_join(s)
    assert s.token is not None and s.token.startswith(f"{shard_of(room_digest('lobby'), 8)}.{CONN}.")
    assert event.token_digest == token_digest(s.token)
    assert s.token.encode() not in event_encoder.encode(event)


@pytest.mark.parametrize("value", [False, "true", 1, None])
def test_only_json_true_asks_for_resume(value: object) -> None:
    event = join(session(), "lobby", resumable=value).event
    assert event.token_digest == ""


def test_a_closing_resumable_socket_detaches_and_a_plain_one_leaves() -> None:
    s = session()
    resumable_join(s)
    assert s.closed() == Forward(stream_of("lobby", 8), Detach(
        conn=CONN, room=room_digest("lobby"), socket=CONN))
    plain = session()
    join(plain, "lobby")
    assert plain.closed() == Forward(stream_of("lobby", 8), Leave(
        conn=CONN, room=room_digest("lobby"), reason=LeaveReason.CLOSED))


def test_a_resumable_members_leave_names_its_socket() -> None:
    s = session()
    resumable_join(s)
    assert s.leave() == Forward(stream_of("lobby", 8), Leave(
        conn=CONN, room=room_digest("lobby"), socket=CONN))


def test_resume_goes_to_the_shard_its_token_names() -> None:
    old = session()
    resumable_join(old)
    token = old.token
    assert token is not None
    s = Session(NEW_SOCKET, GW, 8)
    forward = s.handle(frame(event="resume", resume_token=token, last_frame_seq=4))
    assert isinstance(forward, Forward) and isinstance(forward.event, Resume)
    assert forward.stream == stream_of("lobby", 8)
    event = forward.event
    assert (event.conn, event.room, event.socket, event.last_frame_seq, event.seq) == (
        CONN, "", NEW_SOCKET, 4, 1)
    assert event.token_digest == token_digest(token)
    assert s.token is not None and event.new_token_digest == token_digest(s.token) != (
        event.token_digest)
    # While it is on its way: no room yet, and no second join or resume.
    assert reply(s.handle(frame(event="update_status", status={}))) == error(
        "currently not in any room", "update_status")
    assert reply(join(s, "x")) == error("already joined another room", "join_room")
    # Accepted: the socket is that peer now; events name it, and its leave this socket.
    s.resumed(Resumed(seq=1, conn=CONN, room=room_digest("lobby")))
    assert (s.conn_id, s.room) == (CONN, room_digest("lobby"))
    # Its messages and statuses name the socket too: a refusal must reach its channel.
    sent = s.handle(frame(event="send_to_peer", peer_id="p", data={"event": "message"}))
    status = s.handle(frame(event="update_status", status={"name": "n"}))
    assert isinstance(sent, Forward) and isinstance(status, Forward)
    assert sent.event.socket == status.event.socket == NEW_SOCKET
    assert s.leave() == Forward(stream_of("lobby", 8), Leave(
        conn=CONN, room=room_digest("lobby"), socket=NEW_SOCKET))
    # Joining again afterwards: the peer id stays, the socket is named.
    again = join(s, "other")
    assert (again.event.conn, again.event.socket) == (CONN, NEW_SOCKET)


def test_a_refused_resume_leaves_the_socket_in_no_room() -> None:
    old = session()
    resumable_join(old)
    s = Session(NEW_SOCKET, GW, 8)
    s.handle(frame(event="resume", resume_token=old.token, last_frame_seq=0))
    s.join_refused(JoinRefused(seq=1))
    assert s.room is None and not s.resuming and s.conn_id == NEW_SOCKET
    assert isinstance(join(s, "lobby"), Forward)


@pytest.mark.parametrize("fields", [
    {"resume_token": "garbage", "last_frame_seq": 0},
    {"resume_token": f"99.{CONN}.AAAAAAAAAAAAAAAAAAAAAA", "last_frame_seq": 0},  # shard 99 of 8
    {"resume_token": f"1.{CONN}.AAAAAAAAAAAAAAAAAAAAAA", "last_frame_seq": -1},
    {"resume_token": f"1.{CONN}.AAAAAAAAAAAAAAAAAAAAAA", "last_frame_seq": 1.5},
    {"resume_token": f"1.{CONN}.AAAAAAAAAAAAAAAAAAAAAA", "last_frame_seq": True},
    {"resume_token": f"1.{CONN}.AAAAAAAAAAAAAAAAAAAAAA"},
    {"last_frame_seq": 0},
    {"resume_token": 5, "last_frame_seq": 0},
])
def test_a_malformed_resume_is_refused_at_once(fields: dict[str, Any]) -> None:
    s = session()
    assert reply(s.handle(frame(event="resume", **fields))) == error("cannot resume", "resume")
    assert isinstance(join(s, "lobby"), Forward)


def test_a_taken_over_socket_leaves_nothing_behind_when_it_closes() -> None:
    s = session()
    resumable_join(s)
    s.taken_over()
    assert s.closed() is None


# -- join tokens --------------------------------------------------------------------------

def test_with_join_tokens_a_join_needs_one_for_its_room() -> None:
    secret = "a-join-secret-of-at-least-32-bytes!"
    s = Session(CONN, GW, 8, JoinTokens(secret, ""))
    assert reply(join(s, "lobby")) == error("not allowed", "join_room")
    assert reply(join(s, "lobby", token="garbage")) == error("not allowed", "join_room")
    other = jwt.encode({"room": "other", "exp": int(time.time()) + 60}, secret)
    assert reply(join(s, "lobby", token=other)) == error("not allowed", "join_room")
    assert s.room is None
    good = jwt.encode({"room": "lobby", "exp": int(time.time()) + 60}, secret)
    assert isinstance(join(s, "lobby", token=good), Forward)


def test_a_tokens_identity_travels_with_the_join() -> None:
    secret = "a-join-secret-of-at-least-32-bytes!"
    s = Session(CONN, GW, 8, JoinTokens(secret, ""))
    token = jwt.encode({"room": "lobby", "exp": int(time.time()) + 60, "sub": "u-1",
                        "info": {"name": "U"}, "host": True}, secret)
    forward = join(s, "lobby", token=token)
    assert isinstance(forward, Forward) and isinstance(forward.event, Join)
    assert (forward.event.user, forward.event.info, forward.event.host) == (
        "u-1", b'{"name":"U"}', True)
    # Without join tokens, claims are nobody's to make: a join carries no identity.
    plain = join(session(), "lobby", token=token)
    assert (plain.event.user, plain.event.info, plain.event.host) == ("", b"", False)


def test_a_socket_closing_while_its_resume_is_on_the_way_detaches_that_peer() -> None:
    old = session()
    resumable_join(old)
    s = Session(NEW_SOCKET, GW, 8)
    s.handle(frame(event="resume", resume_token=old.token, last_frame_seq=0))
    # If the relay takes the resume, the peer must not stay on a socket that is gone.
    assert s.closed() == Forward(stream_of("lobby", 8), Detach(conn=CONN, room="",
                                                                socket=NEW_SOCKET))
    assert s.closed() is None
