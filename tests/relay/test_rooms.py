"""The room state machine: events in, effects out (docs/protocol.md, "Client → server")."""

from __future__ import annotations

import pytest

from relay.effects import CloseRoom, DropMember, Effect, OpenRoom, Publish, PutMember
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    JoinRefused,
    Leave,
    Member,
    SendToPeer,
    Status,
    UpdateStatus,
)
from tests.relay.rooms_support import (
    ANN,
    GW,
    OTHER_ROOM,
    ROOM,
    book_with,
    error,
    join,
    joined,
    run,
    snapshot,
)

# -- join_room ---------------------------------------------------------------------------

@pytest.mark.parametrize("status, shown", [
    (Status(), {}),
    (Status(name="Ann"), {"name": "Ann"}),
    (ANN, {"name": "Ann", "user_agent": "chrome"}),
])
def test_join_of_an_empty_room_opens_it(status: Status, shown: dict[str, str]) -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    assert run(book, join("a", status), "1-0") == [
        OpenRoom(ROOM),
        ("publish", "a", joined("a", [], host="a")),
        PutMember(ROOM, "a", Member(status=status, gateway=GW, joined="1-0")),
    ]


@pytest.mark.parametrize("first, first_shown, second, second_shown", [
    (Status(), {}, Status(), {}),
    (ANN, {"name": "Ann", "user_agent": "chrome"}, Status(), {}),
    (Status(), {}, Status(user_agent="firefox"), {"user_agent": "firefox"}),
])
def test_second_join_lists_the_first_and_tells_it(
    first: Status, first_shown: dict[str, str], second: Status, second_shown: dict[str, str],
) -> None:
    book = book_with(("a", first))
    assert run(book, join("b", second), "2-0") == [
        ("publish", "b",
         joined("b", [{"peer_id": "a", "status": first_shown}], host="a")),
        ("publish", "a", {"event": "new_peer", "peer_id": "b", "status": second_shown}),
        PutMember(ROOM, "b", Member(status=second, gateway=GW, joined="2-0")),
    ]


def test_joined_room_lists_every_other_member_in_join_order() -> None:
    book = book_with(("a", ANN), ("b", Status()), ("c", Status(name="Cy")))
    effects = run(book, join("d"))
    assert effects[0] == ("publish", "d", joined("d", [
        {"peer_id": "a", "status": {"name": "Ann", "user_agent": "chrome"}},
        {"peer_id": "b", "status": {}},
        {"peer_id": "c", "status": {"name": "Cy"}},
    ], host="a"))
    told = [(conn, frame["event"]) for _, conn, frame in effects[1:4]]
    assert told == [("a", "new_peer"), ("b", "new_peer"), ("c", "new_peer")]


def test_rooms_are_separate() -> None:
    book = book_with(("a", ANN))
    effects = run(book, join("b", room=OTHER_ROOM))
    assert effects[0] == OpenRoom(OTHER_ROOM)
    assert effects[1] == ("publish", "b", joined("b", [], host="b"))


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_join_of_a_full_room_is_refused_without_change(capacity: int) -> None:
    book = book_with(*[(f"p{i}", Status()) for i in range(capacity)], capacity=capacity)
    before = snapshot(book)
    assert run(book, join("late", seq=7)) == [
        ("publish", "late", error("room is full", "join_room")),
        ("publish", "late", JoinRefused(seq=7)),
    ]
    assert snapshot(book) == before


def test_room_below_capacity_accepts_a_join() -> None:
    book = book_with(("a", Status()), capacity=2)
    assert run(book, join("b"))[0][2]["event"] == "joined_room"


def test_a_place_freed_by_a_leave_can_be_taken() -> None:
    book = book_with(("a", Status()), ("b", Status()), capacity=2)
    run(book, Leave(conn="a", room=ROOM))
    assert run(book, join("c"))[0] == (
        "publish", "c", joined("c", [{"peer_id": "b", "status": {}}], host="b"))


def test_a_member_joining_again_is_refused_and_stays() -> None:
    book = book_with(("a", ANN), ("b", Status()))
    before = snapshot(book)
    assert run(book, join("a")) == [("publish", "a", error("already joined another room", "join_room"))]
    assert snapshot(book) == before


# -- leave_room ----------------------------------------------------------------------------

@pytest.mark.parametrize("leaver, rest", [
    ("b", ["a", "c"]),
    ("c", ["a", "b"]),
])
def test_leave_of_a_non_host_tells_the_rest(leaver: str, rest: list[str]) -> None:
    book = book_with(("a", Status()), ("b", Status()), ("c", Status()))
    assert run(book, Leave(conn=leaver, room=ROOM)) == [DropMember(ROOM, leaver)] + [
        ("publish", conn, {"event": "peer_left", "sender_id": leaver}) for conn in rest
    ]
    assert list(book.rooms[ROOM].members) == rest


def test_last_leave_closes_the_room_and_sends_nothing() -> None:
    book = book_with(("a", Status()))
    assert run(book, Leave(conn="a", room=ROOM)) == [DropMember(ROOM, "a"), CloseRoom(ROOM)]
    assert ROOM not in book.rooms


def test_a_closed_room_opens_again_on_the_next_join() -> None:
    book = book_with(("a", Status()))
    run(book, Leave(conn="a", room=ROOM))
    assert run(book, join("b"))[:2] == [
        OpenRoom(ROOM), ("publish", "b", joined("b", [], host="b"))]


@pytest.mark.parametrize("conn, room", [
    ("z", ROOM),  # the room exists, the peer is not in it
    ("a", OTHER_ROOM),  # no such room
])
def test_leave_of_a_non_member_has_no_effect(conn: str, room: str) -> None:
    book = book_with(("a", Status()), ("b", Status()))
    before = snapshot(book)
    assert run(book, Leave(conn=conn, room=room)) == []
    assert snapshot(book) == before


def test_leaving_twice_tells_the_room_once() -> None:
    book = book_with(("a", Status()), ("b", Status()))
    run(book, Leave(conn="a", room=ROOM))
    assert run(book, Leave(conn="a", room=ROOM)) == []


# -- update_status -------------------------------------------------------------------------

@pytest.mark.parametrize("old, update, merged, shown", [
    (ANN, Status(), ANN, {"name": "Ann", "user_agent": "chrome"}),
    (ANN, Status(name="Bo"), Status(name="Bo", user_agent="chrome"),
     {"name": "Bo", "user_agent": "chrome"}),
    (ANN, Status(user_agent="safari"), Status(name="Ann", user_agent="safari"),
     {"name": "Ann", "user_agent": "safari"}),
    (Status(), Status(name="Cy"), Status(name="Cy"), {"name": "Cy"}),
    (Status(), Status(), Status(), {}),
])
def test_update_status_merges_and_tells_every_member_including_the_sender(
    old: Status, update: Status, merged: Status, shown: dict[str, str],
) -> None:
    book = book_with(("a", Status()), ("b", old), ("c", Status()))
    frame = {"event": "peer_updated_status", "status": shown, "sender_id": "b"}
    assert run(book, UpdateStatus(conn="b", room=ROOM, status=update)) == [
        PutMember(ROOM, "b", Member(status=merged, gateway=GW, joined="2-0")),
        ("publish", "a", frame), ("publish", "b", frame), ("publish", "c", frame),
    ]


def test_alone_in_a_room_the_sender_still_hears_its_update() -> None:
    book = book_with(("a", Status()))
    effects = run(book, UpdateStatus(conn="a", room=ROOM, status=Status(name="Al")))
    assert effects[1:] == [
        ("publish", "a", {"event": "peer_updated_status", "status": {"name": "Al"}, "sender_id": "a"})]


def test_a_later_joiner_sees_the_updated_status() -> None:
    book = book_with(("a", ANN))
    run(book, UpdateStatus(conn="a", room=ROOM, status=Status(name="Anna")))
    assert run(book, join("b"))[0][2]["peers"] == [
        {"peer_id": "a", "status": {"name": "Anna", "user_agent": "chrome"}}]


@pytest.mark.parametrize("conn, room", [
    ("z", ROOM),
    ("a", OTHER_ROOM),
])
def test_update_status_from_a_non_member_is_refused(conn: str, room: str) -> None:
    book = book_with(("a", ANN))
    before = snapshot(book)
    assert run(book, UpdateStatus(conn=conn, room=room, status=Status(name="X"))) == [
        ("publish", conn, error("currently not in any room", "update_status"))]
    assert snapshot(book) == before


# -- send_to_peer --------------------------------------------------------------------------

OFFER = b'{"event":"offer","sdp":"v=0"}'


@pytest.mark.parametrize("conn, room", [
    ("z", ROOM),
    ("a", OTHER_ROOM),
])
def test_send_to_peer_from_a_non_member_is_refused(conn: str, room: str) -> None:
    book = book_with(("a", Status()), ("b", Status()))
    assert run(book, SendToPeer(conn=conn, room=room, peer="b", data=OFFER)) == [
        ("publish", conn, error("currently not in any room", "send_to_peer"))]


def test_a_refusal_reaches_a_socket_that_resumed_its_peer_on_the_sockets_channel() -> None:
    # The socket's channel is named by its own id, not the peer id it took over.
    book = book_with(("a", Status()), ("b", Status()))
    assert run(book, SendToPeer(conn="z", room=ROOM, peer="b", data=OFFER,
                                socket="s2")) == [
        ("publish", "s2", error("currently not in any room", "send_to_peer"))]
    assert run(book, UpdateStatus(conn="z", room=ROOM, status=Status(name="X"),
                                  socket="s2")) == [
        ("publish", "s2", error("currently not in any room", "update_status"))]


@pytest.mark.parametrize("peer", ["z", "c"])
def test_send_to_peer_to_a_non_member_is_refused(peer: str) -> None:
    book = book_with(("a", Status()), ("b", Status()))
    run(book, join("c", room=OTHER_ROOM))  # "c" exists, in another room
    assert run(book, SendToPeer(conn="a", room=ROOM, peer=peer, data=OFFER)) == [
        ("publish", "a", error("unknown peer", "send_to_peer"))]


def test_send_to_a_peer_that_left_is_refused() -> None:
    book = book_with(("a", Status()), ("b", Status()), ("c", Status()))
    run(book, Leave(conn="b", room=ROOM))
    assert run(book, SendToPeer(conn="a", room=ROOM, peer="b", data=OFFER)) == [
        ("publish", "a", error("unknown peer", "send_to_peer"))]


@pytest.mark.parametrize("sender, target", [("a", "b"), ("b", "a"), ("a", "a")])
def test_send_to_peer_reaches_only_the_target(sender: str, target: str) -> None:
    book = book_with(("a", Status()), ("b", Status()), ("c", Status()))
    assert run(book, SendToPeer(conn=sender, room=ROOM, peer=target, data=OFFER)) == [
        ("publish", target, {"event": "offer", "sdp": "v=0", "sender_id": sender})]


@pytest.mark.parametrize("data, delivered", [
    (b'{"event":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n"}',
     b'{"event":"offer","sdp":"v=0\\r\\no=- 1 2 IN IP4 0.0.0.0\\r\\n","sender_id":"a"}'),
    (b'{ "event" : "answer" , "sdp" : "x" }',
     b'{ "event" : "answer" , "sdp" : "x" ,"sender_id":"a"}'),
    (b'{"z":1,"event":"ice_candidate","candidate":{"sdpMid":"0","sdpMLineIndex":0}}',
     b'{"z":1,"event":"ice_candidate","candidate":{"sdpMid":"0","sdpMLineIndex":0},"sender_id":"a"}'),
    ('{"event":"message","text":"✈ é \\u00e9","n":1.50}'.encode(),
     '{"event":"message","text":"✈ é \\u00e9","n":1.50,"sender_id":"a"}'.encode()),
    (b'{"event":"message","data":{"deep":[{"k":"}"}]}}',
     b'{"event":"message","data":{"deep":[{"k":"}"}]},"sender_id":"a"}'),
])
def test_send_to_peer_appends_sender_id_and_keeps_every_other_byte(
    data: bytes, delivered: bytes,
) -> None:
    book = book_with(("a", Status()), ("b", Status()))
    out: list[Effect] = []
    book.apply(SendToPeer(conn="a", room=ROOM, peer="b", data=data), "9-0", out)
    assert out == [Publish("b", delivered)]


# -- load ----------------------------------------------------------------------------------

def member(joined: str, status: Status = EMPTY_STATUS) -> Member:
    return Member(status=status, gateway=GW, joined=joined)


@pytest.mark.parametrize("stored, order", [
    ({"late": "10-0", "early": "9-5"}, ["early", "late"]),
    ({"b": "5-1", "a": "5-0"}, ["a", "b"]),
    ({"x": "100-0", "y": "20-3", "z": "3-0"}, ["z", "y", "x"]),
    ({"a": "1-0", "b": "2-0"}, ["a", "b"]),
])
def test_load_orders_members_by_their_join_stream_id(
    stored: dict[str, str], order: list[str],
) -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    book.load(ROOM, {conn: member(joined) for conn, joined in stored.items()}, {})
    joined_room = run(book, join("new"))[0][2]
    assert [peer["peer_id"] for peer in joined_room["peers"]] == order


def test_a_loaded_room_keeps_its_statuses_and_members() -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    book.load(ROOM, {"a": member("1-0", ANN), "b": member("2-0")}, {})
    assert run(book, SendToPeer(conn="b", room=ROOM, peer="a", data=OFFER)) == [
        ("publish", "a", {"event": "offer", "sdp": "v=0", "sender_id": "b"})]
    assert run(book, join("c"))[0][2]["peers"] == [
        {"peer_id": "a", "status": {"name": "Ann", "user_agent": "chrome"}},
        {"peer_id": "b", "status": {}},
    ]


def test_a_loaded_full_room_refuses_a_join() -> None:
    book = RoomBook(capacity=2, star_capacity=1000)
    book.load(ROOM, {"a": member("1-0"), "b": member("2-0")}, {})
    assert run(book, join("c"))[0] == ("publish", "c", error("room is full", "join_room"))
