"""The room state machine's resume rules (docs/protocol.md, "Resume"): numbered and kept
frames, detach, grace, overflow, takeover, replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.effects import DropKept, DropMember, Effect, Keep, Publish, PutMember, Replay
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    AnyEvent,
    Detach,
    Expire,
    Join,
    JoinRefused,
    Leave,
    LeaveReason,
    Resume,
    Resumed,
    SendToPeer,
    Status,
    TakenOver,
    UpdateStatus,
    control_decoder,
)
from tests.relay.rooms_support import GW, ROOM

TOKEN = "digest-of-token-1"
GRACE_MS = 15_000
KEEP = 5
OFFER = b'{"event":"offer","sdp":"v=0"}'


def book() -> RoomBook:
    return RoomBook(capacity=10, star_capacity=10, keep_frames=KEEP, grace_ms=GRACE_MS)


def apply(b: RoomBook, event: AnyEvent, at_ms: int = 1000) -> list[Effect]:
    out: list[Effect] = []
    b.apply(event, f"{at_ms}-0", out)
    return out


def join(conn: str, token: str = "") -> Join:
    return Join(conn=conn, room=ROOM, gateway=GW, seq=1, status=EMPTY_STATUS,
                token_digest=token)


def resume(conn: str = "r", last: int = 0, token: str = TOKEN, socket: str = "s2",
           new_token: str = "digest-of-token-2") -> Resume:
    return Resume(conn=conn, room="", gateway="gw-2", seq=7, socket=socket,
                  token_digest=token, new_token_digest=new_token, last_frame_seq=last)


def frame(payload: bytes) -> Any:
    return json.loads(payload) if payload.startswith(b"{") else control_decoder.decode(payload)


def room_with_resumable() -> RoomBook:
    """ROOM holds "r" (resumable, the host) and "p" (plain)."""
    b = book()
    apply(b, join("r", TOKEN), 1000)
    apply(b, join("p"), 1001)
    return b


def message(n: int) -> SendToPeer:
    return SendToPeer(conn="p", room=ROOM, peer="r",
                      data=b'{"event":"message","n":%d}' % n)


# -- numbering --------------------------------------------------------------------------

def test_frames_to_a_resumable_peer_are_numbered_and_kept() -> None:
    b = room_with_resumable()  # "r" was told of "p": frame 1
    effects = apply(b, message(0))
    assert effects == [Keep("r", "r", 2, b'{"event":"message","n":0,"sender_id":"p",'
                                         b'"frame_seq":2}')]
    effects = apply(b, UpdateStatus(conn="p", room=ROOM, status=Status(name="Bo")))
    kept = [e for e in effects if isinstance(e, Keep)]
    assert [(e.conn, e.seq) for e in kept] == [("r", 3)]
    # The plain peer's frames are not numbered.
    plain = [e for e in effects if isinstance(e, Publish)]
    assert [frame(e.payload) for e in plain] == [
        {"event": "peer_updated_status", "status": {"name": "Bo"}, "sender_id": "p"}]


def test_joined_room_and_errors_are_not_numbered() -> None:
    b = book()
    effects = apply(b, join("r", TOKEN))
    assert [type(e) for e in effects] == [type(effects[0]), Publish, PutMember]
    assert "frame_seq" not in frame(effects[1].payload)
    assert effects[2].member.resumable
    error = apply(b, SendToPeer(conn="r", room=ROOM, peer="nobody", data=OFFER))
    assert error == [Publish("r", b'{"event":"error","message":"unknown peer",'
                                  b'"description":"unknown peer","received_msg":"send_to_peer"}')]


def test_a_leave_of_a_resumable_peer_drops_what_was_kept() -> None:
    b = room_with_resumable()
    effects = apply(b, Leave(conn="r", room=ROOM, socket="r"))
    assert effects[:2] == [DropMember(ROOM, "r"), DropKept("r")]
    assert "r" not in b.frame_seqs


# -- detach and grace -----------------------------------------------------------------

def test_a_detached_peer_stays_and_its_frames_are_kept_unpublished() -> None:
    b = room_with_resumable()
    effects = apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    [put] = effects
    assert isinstance(put, PutMember)
    assert (put.member.detached_until, put.member.detached_seq, put.member.gateway) == (
        5000 + GRACE_MS, 1, "")
    assert apply(b, message(0)) == [
        Keep("r", "", 2, b'{"event":"message","n":0,"sender_id":"p","frame_seq":2}')]
    # The others see nothing of it: it is still a member, still the host.
    assert "r" in b.rooms[ROOM].members and b.rooms[ROOM].host == "r"


def test_a_detach_of_another_socket_is_ignored() -> None:
    b = room_with_resumable()
    assert apply(b, Detach(conn="r", room=ROOM, socket="old-socket")) == []


def test_the_grace_period_ends_with_a_leave() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    assert b.expired(5000 + GRACE_MS - 1) == []
    [expire] = b.expired(5000 + GRACE_MS)
    assert expire == Expire(conn="r", room=ROOM, until=5000 + GRACE_MS)
    effects = apply(b, expire, at_ms=20_001)
    assert effects[:2] == [DropMember(ROOM, "r"), DropKept("r")]
    assert [frame(e.payload) for e in effects if isinstance(e, Publish)] == [
        {"event": "peer_left", "sender_id": "r"},
        {"event": "host_changed", "host_id": "p", "peers": []}]


def test_an_expiry_a_resume_overtook_changes_nothing() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    [expire] = b.expired(30_000)
    apply(b, resume(last=1), at_ms=6000)
    assert apply(b, expire, at_ms=30_001) == []
    assert "r" in b.rooms[ROOM].members


def test_more_frames_than_are_kept_while_detached_and_the_peer_leaves() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    for n in range(KEEP):
        assert [type(e) for e in apply(b, message(n))] == [Keep]
    effects = apply(b, message(KEEP))  # one more than is kept since the detach
    assert effects[0] == Keep("r", "", 1 + KEEP + 1, effects[0].payload)
    assert effects[1:3] == [DropMember(ROOM, "r"), DropKept("r")]
    assert [frame(e.payload)["event"] for e in effects if isinstance(e, Publish)] == [
        "peer_left", "host_changed"]


def test_a_gateways_death_detaches_resumable_members_and_removes_the_rest() -> None:
    b = room_with_resumable()
    assert b.departures() == {GW: [Detach(conn="r", room=ROOM, socket="r"),
                                   Leave(conn="p", room=ROOM,
                                         reason=LeaveReason.GATEWAY_LOST)]}
    apply(b, Detach(conn="r", room=ROOM, socket="r"))
    # The detached member is on no gateway any more.
    assert b.departures() == {GW: [Leave(conn="p", room=ROOM,
                                         reason=LeaveReason.GATEWAY_LOST)]}


# -- resume -----------------------------------------------------------------------------

def test_a_resume_replays_what_the_socket_lacks() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    apply(b, message(0))  # frame 2
    apply(b, message(1))  # frame 3
    effects = apply(b, resume(last=1), at_ms=6000)
    put, resumed, joined, replay = effects
    assert isinstance(put, PutMember) and put.member.socket == "s2"
    assert (put.member.gateway, put.member.detached_until, put.member.token) == (
        "gw-2", 0, "digest-of-token-2")
    assert resumed == Publish("s2", resumed.payload)
    assert frame(resumed.payload) == Resumed(seq=7, conn="r", room=ROOM)
    assert frame(joined.payload) == {
        "event": "joined_room", "own_id": "r", "peers": [{"peer_id": "p", "status": {}}],
        "host_id": "r", "topology": "mesh", "resumed": True}
    assert replay == Replay("r", "s2", 2)
    # Live frames go to the new socket, numbered on.
    assert apply(b, message(2)) == [
        Keep("r", "s2", 4, b'{"event":"message","n":2,"sender_id":"p","frame_seq":4}')]


def test_a_resume_with_nothing_missing_replays_nothing() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    effects = apply(b, resume(last=1), at_ms=6000)
    assert not any(isinstance(e, Replay) for e in effects)


def test_a_resume_while_the_old_socket_is_open_takes_it_over() -> None:
    b = room_with_resumable()
    effects = apply(b, resume(last=1))
    assert effects[0] == Publish("r", effects[0].payload)
    assert frame(effects[0].payload) == TakenOver()
    # A leave or detach from the old socket after that changes nothing.
    assert apply(b, Detach(conn="r", room=ROOM, socket="r")) == []
    assert apply(b, Leave(conn="r", room=ROOM, socket="r")) == []
    assert "r" in b.rooms[ROOM].members


@pytest.mark.parametrize("why, event", [
    ("a wrong token", resume(token="digest-of-a-guess")),
    ("a token used already", resume(token="digest-of-token-0")),
    ("no such peer", resume(conn="nobody")),
    ("a frame never sent", resume(last=99)),
])
def test_a_resume_is_refused_and_the_peer_stays(why: str, event: Resume) -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    effects = apply(b, event, at_ms=6000)
    assert [frame(e.payload) for e in effects] == [
        {"event": "error", "message": "cannot resume", "description": "cannot resume",
         "received_msg": "resume"}, JoinRefused(seq=7)], why
    assert all(isinstance(e, Publish) and e.channel == "s2" for e in effects)
    assert "r" in b.rooms[ROOM].members


def test_a_token_works_once() -> None:
    b = room_with_resumable()
    apply(b, resume(last=1, socket="s2", new_token="t2"))
    assert any(isinstance(e, PutMember)
               for e in apply(b, resume(last=1, socket="s3", token="t2", new_token="t3")))
    # Its successor was used: the first token is void.
    assert [frame(e.payload) for e in apply(b, resume(last=1, socket="s4"))
            if isinstance(e, Publish)][0]["message"] == "cannot resume"


def answers_to(effects: list[Effect], socket: str) -> list[Any]:
    return [frame(e.payload) for e in effects if isinstance(e, Publish) and e.channel == socket]


def test_the_spent_token_is_taken_once_more_when_its_socket_is_gone() -> None:
    """The gateway that took a resume died before the client read the answer: the client
    presents the token it has, which that resume spent (docs/protocol.md, "Resume")."""
    b = room_with_resumable()
    apply(b, resume(last=1, socket="s2", new_token="t2"))
    apply(b, Detach(conn="r", room=ROOM, socket="s2"))  # that gateway's death, detected
    again = answers_to(apply(b, resume(last=1, socket="s3", new_token="t3")), "s3")
    assert isinstance(again[0], Resumed) and again[1]["resumed"] is True
    # Once more only.
    apply(b, Detach(conn="r", room=ROOM, socket="s3"))
    assert answers_to(apply(b, resume(last=1, socket="s4")), "s4")[0]["message"] == (
        "cannot resume")


def test_the_spent_token_is_refused_while_the_socket_that_spent_it_is_attached() -> None:
    b = room_with_resumable()
    apply(b, resume(last=1, socket="s2", new_token="t2"))
    apply(b, message(0))  # frame 2, to s2, which the client never read
    refused = answers_to(apply(b, resume(last=1, socket="s3", new_token="t3")), "s3")
    assert refused[0]["message"] == "cannot resume"  # s2 may be the client's, alive
    # s2's gateway is found dead: the retry is taken, and frame 2 follows.
    apply(b, Detach(conn="r", room=ROOM, socket="s2"))
    effects = apply(b, resume(last=1, socket="s4", new_token="t4"))
    assert isinstance(answers_to(effects, "s4")[0], Resumed)
    assert Replay("r", "s4", 1) in effects


def test_the_spent_token_is_void_once_its_successor_is_used() -> None:
    b = room_with_resumable()
    apply(b, resume(last=1, socket="s2", new_token="t2"))
    apply(b, Detach(conn="r", room=ROOM, socket="s2"))
    apply(b, resume(last=1, socket="s3", token="t2", new_token="t3"))
    apply(b, Detach(conn="r", room=ROOM, socket="s3"))
    assert answers_to(apply(b, resume(last=1, socket="s4")), "s4")[0]["message"] == (
        "cannot resume")


def test_a_resume_past_the_grace_period_is_refused_and_the_peer_leaves() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    effects = apply(b, resume(last=1), at_ms=5000 + GRACE_MS + 1)
    assert frame(effects[0].payload)["message"] == "cannot resume"
    assert DropMember(ROOM, "r") in effects


def test_a_resume_that_lacks_frames_no_longer_kept_is_refused_and_the_peer_leaves() -> None:
    b = room_with_resumable()  # frame 1
    for n in range(KEEP):
        apply(b, message(n))  # frames 2..6: 1 is no longer kept
    effects = apply(b, resume(last=0))
    assert frame(effects[0].payload)["message"] == "cannot resume"
    assert DropMember(ROOM, "r") in effects
    b2 = room_with_resumable()
    for n in range(KEEP):
        apply(b2, message(n))
    assert Replay("r", "s2", KEEP) in apply(b2, resume(last=1))  # exactly all that is kept


def test_the_host_role_survives_a_resume() -> None:
    b = room_with_resumable()
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    apply(b, resume(last=1), at_ms=6000)
    assert b.rooms[ROOM].host == "r"
    assert frame(apply(b, join("q"))[0].payload)["host_id"] == "r"


def test_a_resumed_socket_that_leaves_and_joins_again_keeps_the_peer_id() -> None:
    b = room_with_resumable()
    apply(b, resume(last=1))
    apply(b, Leave(conn="r", room=ROOM, socket="s2"))
    again = Join(conn="r", room=ROOM, gateway="gw-2", seq=8, socket="s2")
    effects = apply(b, again)
    assert effects[0] == Publish("s2", effects[0].payload)
    assert frame(effects[0].payload)["own_id"] == "r"


def test_load_restores_counters_and_detached_members() -> None:
    b = room_with_resumable()
    apply(b, message(0))
    apply(b, Detach(conn="r", room=ROOM, socket="r"), at_ms=5000)
    fresh = book()
    fresh.load(ROOM, dict(b.rooms[ROOM].members), dict(b.frame_seqs))
    assert fresh.frame_seqs == {"r": 2}
    assert fresh.room_of == {"r": ROOM, "p": ROOM}
    assert fresh.expired(5000 + GRACE_MS) == b.expired(5000 + GRACE_MS)
    assert Replay("r", "s2", 1) in apply(fresh, resume(last=1), at_ms=6000)


def test_a_socket_that_closed_with_its_resume_on_the_way_leaves_its_peer_detached() -> None:
    b = room_with_resumable()
    apply(b, resume(last=1, socket="s2"))
    [put] = apply(b, Detach(conn="r", room="", socket="s2"), at_ms=7000)
    assert isinstance(put, PutMember) and put.member.detached_until == 7000 + GRACE_MS
    assert put.room == ROOM
    # Refused instead (another socket had it): the Detach names a socket that is not the
    # member's, and changes nothing.
    assert apply(b, Detach(conn="r", room="", socket="s9")) == []
