"""What the app's actions do to a room (docs/protocol.md, "Removal", "Server messages",
"Deadlines", "Admin API"): as tables of events and the effects they must have."""

from __future__ import annotations

import json
from typing import Any

import pytest

from relay.effects import (
    CloseRoom,
    DropKept,
    DropMember,
    Effect,
    Keep,
    OpenRoom,
    Publish,
    PutMember,
)
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    AdminReply,
    AnyEvent,
    Detach,
    EndRoom,
    Evicted,
    Join,
    RemoveAll,
    RemovePeers,
    Resume,
    ServerMessage,
    SetDeadline,
    Topology,
    control_decoder,
)
from tests.relay.rooms_support import GW, ROOM

ADMIN = "adm-gw-1-7"
NOTE = b'{"text":"five minutes left"}'


def apply(book: RoomBook, event: AnyEvent, at_ms: int = 1000) -> list[Effect]:
    out: list[Effect] = []
    book.apply(event, f"{at_ms}-0", out)
    return out


def said(effects: list[Effect]) -> list[tuple[str, Any]]:
    """Publishes as (channel, decoded frame or control)."""
    return [(e.channel, json.loads(e.payload) if e.payload.startswith(b"{")
             else control_decoder.decode(e.payload))
            for e in effects if isinstance(e, Publish)]


def reply(effects: list[Effect]) -> tuple[int, Any]:
    (answer,) = [c for ch, c in said(effects) if ch == ADMIN]
    assert isinstance(answer, AdminReply)
    return answer.status, json.loads(answer.body)


def join(conn: str, user: str = "", token: str = "", topology: Topology | None = None,
         ends_at: int = 0, name: str = "") -> Join:
    return Join(conn=conn, room=ROOM, gateway=GW, seq=1, status=EMPTY_STATUS, user=user,
                token_digest=token, topology=topology, ends_at=ends_at, name=name)


def room(*members: tuple[str, str], topology: Topology | None = None,
         ends_at: int = 0) -> RoomBook:
    """ROOM with `members` (peer id, user), joined at 1 ms, 2 ms, ..."""
    book = RoomBook(100, 100, keep_frames=5, grace_ms=15_000)
    for i, (conn, user) in enumerate(members, 1):
        apply(book, join(conn, user, topology=topology, ends_at=ends_at), i)
    return book


def removed(conn: str, reason: str, room: str = ROOM) -> list[tuple[str, Any]]:
    return [(conn, {"event": "removed", "reason": reason}), (conn, Evicted(conn=conn, room=room))]


# -- removal ------------------------------------------------------------------------------

def test_a_removed_peer_is_told_and_closed_then_the_others_see_it_leave() -> None:
    book = room(("a", ""), ("b", ""), ("c", ""))
    effects = apply(book, RemovePeers(reply_to=ADMIN, room=ROOM, peer="b"))
    assert said(effects) == [
        *removed("b", "removed"),
        ("a", {"event": "peer_left", "sender_id": "b"}),
        ("c", {"event": "peer_left", "sender_id": "b"}),
        (ADMIN, AdminReply(status=200, body=b'{"removed":["b"]}')),
    ]
    assert DropMember(ROOM, "b") in effects
    assert list(book.rooms[ROOM].members) == ["a", "c"]


def test_removing_the_host_of_a_star_room_hands_it_over() -> None:
    book = room(("h", ""), ("v1", ""), ("v2", ""), topology=Topology.STAR)
    frames = said(apply(book, RemovePeers(reply_to=ADMIN, room=ROOM, peer="h")))
    assert frames[:2] == removed("h", "removed")
    assert ("v1", {"event": "host_changed", "host_id": "v1",
                   "peers": [{"peer_id": "v2", "status": {}}]}) in frames
    assert ("v2", {"event": "host_changed", "host_id": "v1",
                   "peers": [{"peer_id": "v1", "status": {}}]}) in frames


def test_removal_by_user_takes_every_tab_of_that_user_and_no_other() -> None:
    book = room(("t1", "u-7"), ("x", "u-8"), ("t2", "u-7"))
    effects = apply(book, RemovePeers(reply_to=ADMIN, room=ROOM, user="u-7"))
    frames = said(effects)
    # Both tabs are told and closed before anyone hears of a leave.
    assert frames[:4] == [*removed("t1", "removed"), *removed("t2", "removed")]
    # The one who stays hears of both, then that it is host, once, with its view.
    assert [f for ch, f in frames if ch == "x"] == [
        {"event": "peer_left", "sender_id": "t1"}, {"event": "peer_left", "sender_id": "t2"},
        {"event": "host_changed", "host_id": "x", "peers": []}]
    assert reply(effects) == (200, {"removed": ["t1", "t2"]})
    assert list(book.rooms[ROOM].members) == ["x"]


@pytest.mark.parametrize("event", [RemovePeers(reply_to=ADMIN, room=ROOM, peer="nobody"),
                                   RemovePeers(reply_to=ADMIN, room=ROOM, user="u-none"),
                                   RemovePeers(reply_to=ADMIN, room=ROOM)])
def test_removing_someone_not_there_removes_nobody(event: RemovePeers) -> None:
    book = room(("a", "u-1"), ("b", ""))
    effects = apply(book, event)
    assert reply(effects) == (200, {"removed": []})
    assert [e for e in effects if not isinstance(e, Publish)] == []


@pytest.mark.parametrize("event", [
    RemovePeers(reply_to=ADMIN, room=ROOM, peer="a"), RemoveAll(reply_to=ADMIN, room=ROOM),
    ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE),
    SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=99_000)])
def test_an_action_on_a_room_without_members_is_404_and_changes_nothing(
        event: AnyEvent) -> None:
    book = RoomBook(100, 100)
    effects = apply(book, event)
    assert reply(effects) == (404, {"error": "room has no members"})
    assert len(effects) == 1 and book.rooms == {}


def test_closing_a_room_removes_everyone_and_tells_nobody_of_the_others() -> None:
    book = room(("a", ""), ("b", ""))
    effects = apply(book, RemoveAll(reply_to=ADMIN, room=ROOM))
    assert said(effects) == [*removed("a", "closed"), *removed("b", "closed"),
                             (ADMIN, AdminReply(status=200, body=b'{"removed":["a","b"]}'))]
    assert [e for e in effects if not isinstance(e, Publish)] == [
        DropMember(ROOM, "a"), DropMember(ROOM, "b"), CloseRoom(ROOM)]
    assert book.rooms == {} and book.room_of == {}


def test_a_removed_resumable_peer_away_is_not_told_and_cannot_resume() -> None:
    book = RoomBook(100, 100, keep_frames=5, grace_ms=15_000)
    apply(book, join("r", token="tok"), 1)
    apply(book, join("p"), 2)
    apply(book, Detach(conn="r", room=ROOM, socket="r"), 3)
    effects = apply(book, RemovePeers(reply_to=ADMIN, room=ROOM, peer="r"), 4)
    # peer_left and host_changed to the one who stays, then the reply
    assert [ch for ch, _ in said(effects)] == ["p", "p", ADMIN]
    assert DropKept("r") in effects and "r" not in book.frame_seqs
    resumed = apply(book, Resume(conn="r", room="", gateway=GW, seq=2, socket="s2",
                                 token_digest="tok", new_token_digest="tok2",
                                 last_frame_seq=1), 5)
    assert said(resumed)[0] == ("s2", {"event": "error", "message": "cannot resume",
                                       "description": "cannot resume",
                                       "received_msg": "resume"})


# -- server messages -------------------------------------------------------------------------

def test_a_server_message_reaches_every_member_numbered_for_the_resumable() -> None:
    book = RoomBook(100, 100, keep_frames=5, grace_ms=15_000)
    apply(book, join("p"), 1)
    apply(book, join("r", token="tok"), 2)
    effects = apply(book, ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE), 3)
    assert effects[:2] == [
        Publish("p", b'{"event":"server_message","data":{"text":"five minutes left"}}'),
        Keep("r", "r", 1, b'{"event":"server_message","data":{"text":"five minutes left"},'
                          b'"frame_seq":1}')]
    assert reply(effects) == (200, {"delivered": ["p", "r"]})


def test_a_server_message_to_one_peer_reaches_it_alone() -> None:
    book = room(("a", ""), ("b", ""))
    effects = apply(book, ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE, peer="b"))
    assert [ch for ch, _ in said(effects)] == ["b", ADMIN]
    assert reply(effects) == (200, {"delivered": ["b"]})
    missing = apply(book, ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE, peer="zz"))
    assert reply(missing) == (200, {"delivered": []}) and len(missing) == 1


def test_a_server_message_to_a_peer_away_is_kept_for_its_resume() -> None:
    book = RoomBook(100, 100, keep_frames=5, grace_ms=15_000)
    apply(book, join("r", token="tok"), 1)
    apply(book, Detach(conn="r", room=ROOM, socket="r"), 2)
    effects = apply(book, ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE), 3)
    assert effects[0] == Keep("r", "", 1, b'{"event":"server_message","data":'
                                          b'{"text":"five minutes left"},"frame_seq":1}')


# -- deadlines --------------------------------------------------------------------------------

def test_the_join_that_starts_a_room_sets_its_deadline_and_name_later_joins_do_not() -> None:
    book = RoomBook(100, 100)
    first = apply(book, join("a", ends_at=60_000, name="class 7b"), 1)
    assert OpenRoom(ROOM) in first
    apply(book, join("b", ends_at=90_000, name="other"), 2)
    assert (book.rooms[ROOM].ends_at, book.rooms[ROOM].name) == (60_000, "class 7b")
    records = [e.member for e in first + apply(book, join("c"), 3) if isinstance(e, PutMember)]
    assert {(m.ends_at, m.room_name) for m in records} == {(60_000, "class 7b")}


def test_a_room_ends_at_its_deadline_everyone_removed_as_expired() -> None:
    book = room(("a", ""), ("b", ""), ends_at=5_000)
    assert book.ended(4_999) == []
    assert book.ended(5_000) == [EndRoom(conn="", room=ROOM, at=5_000)]
    effects = apply(book, EndRoom(conn="", room=ROOM, at=5_000), 5_001)
    assert said(effects) == [*removed("a", "expired"), *removed("b", "expired")]
    assert effects[-1] == CloseRoom(ROOM) and book.rooms == {}


def test_a_deadline_moved_since_the_sweep_saw_it_ends_nothing() -> None:
    book = room(("a", ""), ends_at=5_000)
    moved = apply(book, SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=9_000), 4_000)
    assert reply(moved) == (200, {"ends_at": 9})
    assert [e for e in moved if isinstance(e, PutMember)][0].member.ends_at == 9_000
    assert apply(book, EndRoom(conn="", room=ROOM, at=5_000), 5_001) == []
    assert ROOM in book.rooms


def test_clearing_a_deadline_keeps_the_room_and_rewrites_every_record() -> None:
    book = room(("a", ""), ("b", ""), ends_at=5_000)
    effects = apply(book, SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=0), 4_000)
    assert reply(effects) == (200, {"ends_at": None})
    assert [(e.conn, e.member.ends_at) for e in effects if isinstance(e, PutMember)] == [
        ("a", 0), ("b", 0)]
    assert book.ended(10**13) == []


def test_a_deadline_set_in_the_past_ends_the_room_at_once() -> None:
    book = room(("a", ""))
    effects = apply(book, SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=500), 1_000)
    assert said(effects)[:2] == removed("a", "expired")
    assert reply(effects) == (200, {"ends_at": 0.5}) and book.rooms == {}


def test_a_join_after_the_deadline_ends_the_old_room_and_starts_a_new_one() -> None:
    book = room(("a", ""), ends_at=5_000)
    effects = apply(book, join("b"), 6_000)
    frames = said(effects)
    assert frames[:2] == removed("a", "expired")
    assert frames[2] == ("b", {"event": "joined_room", "own_id": "b", "peers": [],
                               "host_id": "b", "topology": "mesh"})
    assert book.rooms[ROOM].ends_at == 0 and list(book.rooms[ROOM].members) == ["b"]


def test_a_room_read_back_keeps_its_deadline_and_name() -> None:
    book = RoomBook(100, 100)
    effects = apply(book, join("a", ends_at=60_000, name="class 7b"), 1)
    stored = {e.conn: e.member for e in effects if isinstance(e, PutMember)}
    again = RoomBook(100, 100)
    again.load(ROOM, stored, {})
    assert (again.rooms[ROOM].ends_at, again.rooms[ROOM].name) == (60_000, "class 7b")
    assert again.ended(60_000) == [EndRoom(conn="", room=ROOM, at=60_000)]
