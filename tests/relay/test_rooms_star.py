"""The room state machine's extensions: hosts in every room, and star rooms (docs/protocol.md,
"Host" and "Star rooms")."""

from __future__ import annotations

from typing import Any

import pytest

from relay.effects import CloseRoom, DropMember, PutMember
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    JoinRefused,
    Leave,
    Member,
    SendToPeer,
    Status,
    Topology,
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

STAR = Topology.STAR
MESH = Topology.MESH
OFFER = b'{"event":"offer","sdp":"v=0"}'


def entry(conn: str, status: dict[str, str] | None = None) -> dict[str, Any]:
    return {"peer_id": conn, "status": status or {}}


def host_changed(host: str, *peers: str) -> dict[str, Any]:
    return {"event": "host_changed", "host_id": host, "peers": [entry(p) for p in peers]}


def left(conn: str) -> dict[str, Any]:
    return {"event": "peer_left", "sender_id": conn}


def star_with(*conns: str, star_capacity: int = 1000) -> RoomBook:
    """A star room ROOM whose members joined in this order (the first is the host)."""
    return book_with(*[(conn, EMPTY_STATUS) for conn in conns], topology=STAR,
                     star_capacity=star_capacity)


def publishes(effects: list[Any]) -> list[tuple[str, Any]]:
    return [(e[1], e[2]) for e in effects if isinstance(e, tuple) and e[0] == "publish"]


# -- the host, in mesh rooms -----------------------------------------------------------------

def test_the_first_member_is_host_and_every_later_joiner_is_told_so() -> None:
    book = book_with(("a", EMPTY_STATUS))
    assert run(book, join("b"))[0] == ("publish", "b", joined("b", [entry("a")], host="a"))
    assert run(book, join("c"))[0] == (
        "publish", "c", joined("c", [entry("a"), entry("b")], host="a"))


def test_when_the_host_leaves_everyone_hears_peer_left_then_host_changed() -> None:
    book = book_with(("a", ANN), ("b", EMPTY_STATUS), ("c", Status(name="Cy")))
    assert run(book, Leave(conn="a", room=ROOM)) == [
        DropMember(ROOM, "a"),
        ("publish", "b", left("a")), ("publish", "c", left("a")),
        # In a mesh room each member's view is every other member, as always.
        ("publish", "b", {"event": "host_changed", "host_id": "b",
                          "peers": [entry("c", {"name": "Cy"})]}),
        ("publish", "c", {"event": "host_changed", "host_id": "b", "peers": [entry("b")]}),
    ]


def test_the_next_host_is_the_longest_present_member() -> None:
    book = book_with(*[(conn, EMPTY_STATUS) for conn in "abcd"])
    run(book, Leave(conn="b", room=ROOM))  # not the host: no change
    effects = run(book, Leave(conn="a", room=ROOM))
    assert {frame["host_id"] for _, frame in publishes(effects)
            if frame["event"] == "host_changed"} == {"c"}
    effects = run(book, Leave(conn="c", room=ROOM))
    assert publishes(effects) == [("d", left("c")), ("d", host_changed("d"))]
    assert run(book, join("e"))[0] == ("publish", "e", joined("e", [entry("d")], host="d"))


@pytest.mark.parametrize("leaver", ["b", "c"])
def test_a_leave_of_a_non_host_changes_no_host(leaver: str) -> None:
    book = book_with(("a", EMPTY_STATUS), ("b", EMPTY_STATUS), ("c", EMPTY_STATUS))
    frames = [frame for _, frame in publishes(run(book, Leave(conn=leaver, room=ROOM)))]
    assert [frame["event"] for frame in frames] == ["peer_left", "peer_left"]


def test_a_host_alone_leaving_closes_the_room_without_a_frame() -> None:
    book = book_with(("a", EMPTY_STATUS))
    assert run(book, Leave(conn="a", room=ROOM)) == [DropMember(ROOM, "a"), CloseRoom(ROOM)]


def test_a_refused_join_changes_no_host() -> None:
    book = book_with(("a", EMPTY_STATUS), ("b", EMPTY_STATUS), capacity=2)
    run(book, join("late"))
    assert run(book, join("c"))[0][2]["event"] == "error"
    assert [frame["host_id"] for _, frame in publishes(run(book, Leave(conn="a", room=ROOM)))
            if frame["event"] == "host_changed"] == ["b"]


def test_a_loaded_room_keeps_its_host_whatever_order_redis_gives() -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    book.load(ROOM, {
        "late": Member(status=EMPTY_STATUS, gateway=GW, joined="30-0"),
        "first": Member(status=EMPTY_STATUS, gateway=GW, joined="9-7"),
        "mid": Member(status=EMPTY_STATUS, gateway=GW, joined="10-0"),
    }, {})
    assert run(book, join("new"))[0][2]["host_id"] == "first"
    effects = run(book, Leave(conn="first", room=ROOM))
    assert {frame["host_id"] for _, frame in publishes(effects)
            if frame["event"] == "host_changed"} == {"mid"}


# -- star rooms: joining ---------------------------------------------------------------------

def test_the_first_member_of_a_star_room_is_its_host() -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    effects = run(book, join("h", topology=STAR), "1-0")
    assert effects[1] == ("publish", "h", joined("h", [], host="h", topology="star"))
    assert effects[2] == PutMember(ROOM, "h", Member(status=EMPTY_STATUS, gateway=GW,
                                                     joined="1-0", topology=STAR))


@pytest.mark.parametrize("named", [None, STAR])
def test_a_client_sees_only_the_host_and_only_the_host_hears_of_it(
        named: Topology | None) -> None:
    book = book_with(("h", ANN), ("c1", EMPTY_STATUS), topology=STAR)
    assert run(book, join("c2", Status(name="Cy"), topology=named)) == [
        ("publish", "c2", joined("c2", [entry("h", {"name": "Ann", "user_agent": "chrome"})],
                                 host="h", topology="star")),
        ("publish", "h", {"event": "new_peer", "peer_id": "c2", "status": {"name": "Cy"}}),
        PutMember(ROOM, "c2", Member(status=Status(name="Cy"), gateway=GW, joined="99-0",
                                     topology=STAR)),
    ]


def test_a_join_naming_no_topology_opens_a_mesh_room() -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    assert run(book, join("a"))[1][2]["topology"] == "mesh"
    assert run(book, join("b", topology=MESH))[0][2]["topology"] == "mesh"


@pytest.mark.parametrize("room_topology, named", [(STAR, MESH), (MESH, STAR)])
def test_a_join_naming_the_other_topology_is_refused_without_change(
        room_topology: Topology, named: Topology) -> None:
    book = book_with(("a", EMPTY_STATUS), topology=room_topology)
    before = snapshot(book)
    assert run(book, join("b", seq=4, topology=named)) == [
        ("publish", "b", error("wrong topology", "join_room")),
        ("publish", "b", JoinRefused(seq=4)),
    ]
    assert snapshot(book) == before


def test_a_wrong_topology_is_said_before_a_full_room() -> None:
    book = book_with(("a", EMPTY_STATUS), topology=STAR, star_capacity=1)
    assert run(book, join("b", topology=MESH))[0][2]["message"] == "wrong topology"
    assert run(book, join("b"))[0][2]["message"] == "room is full"


def test_star_rooms_have_their_own_capacity() -> None:
    book = RoomBook(capacity=2, star_capacity=4)
    run(book, join("h", topology=STAR))
    for conn in ("c1", "c2", "c3"):  # past the mesh capacity of 2
        assert run(book, join(conn))[0][2]["event"] == "joined_room"
    assert run(book, join("c4", seq=9)) == [
        ("publish", "c4", error("room is full", "join_room")),
        ("publish", "c4", JoinRefused(seq=9)),
    ]
    mesh = book_with(("a", EMPTY_STATUS), ("b", EMPTY_STATUS), capacity=2, star_capacity=4)
    assert run(mesh, join("c"))[0][2]["message"] == "room is full"


def test_a_closed_star_room_opens_again_with_the_next_joins_topology() -> None:
    book = star_with("h")
    run(book, Leave(conn="h", room=ROOM))
    assert run(book, join("m"))[1][2] == joined("m", [], host="m", topology="mesh")


def test_rooms_keep_their_own_topology() -> None:
    book = star_with("h", "c")
    assert run(book, join("x", room=OTHER_ROOM))[1][2]["topology"] == "mesh"
    assert run(book, join("y", room=OTHER_ROOM))[0][2]["peers"] == [entry("x")]


# -- star rooms: leaving ---------------------------------------------------------------------

@pytest.mark.parametrize("leaver", ["c1", "c2", "c3"])
def test_a_client_leaving_is_told_to_the_host_only(leaver: str) -> None:
    book = star_with("h", "c1", "c2", "c3")
    assert run(book, Leave(conn=leaver, room=ROOM)) == [
        DropMember(ROOM, leaver), ("publish", "h", left(leaver))]


def test_when_the_host_leaves_the_next_host_sees_everyone_and_the_rest_see_it_alone() -> None:
    book = book_with(("h", EMPTY_STATUS), ("c1", ANN), ("c2", EMPTY_STATUS),
                     ("c3", Status(name="Cy")), topology=STAR)
    assert run(book, Leave(conn="h", room=ROOM)) == [
        DropMember(ROOM, "h"),
        ("publish", "c1", left("h")), ("publish", "c2", left("h")), ("publish", "c3", left("h")),
        ("publish", "c1", {"event": "host_changed", "host_id": "c1",
                           "peers": [entry("c2"), entry("c3", {"name": "Cy"})]}),
        ("publish", "c2", {"event": "host_changed", "host_id": "c1",
                           "peers": [entry("c1", {"name": "Ann", "user_agent": "chrome"})]}),
        ("publish", "c3", {"event": "host_changed", "host_id": "c1",
                           "peers": [entry("c1", {"name": "Ann", "user_agent": "chrome"})]}),
    ]


def test_after_a_handover_the_new_host_hears_of_clients_and_they_hear_of_it() -> None:
    book = star_with("h", "c1", "c2")
    run(book, Leave(conn="h", room=ROOM))
    assert publishes(run(book, join("c3"))) == [
        ("c3", joined("c3", [entry("c1")], host="c1", topology="star")),
        ("c1", {"event": "new_peer", "peer_id": "c3", "status": {}}),
    ]
    assert publishes(run(book, Leave(conn="c2", room=ROOM))) == [("c1", left("c2"))]


def test_the_last_two_of_a_star_room() -> None:
    book = star_with("h", "c")
    assert publishes(run(book, Leave(conn="h", room=ROOM))) == [
        ("c", left("h")), ("c", host_changed("c"))]
    assert run(book, Leave(conn="c", room=ROOM)) == [DropMember(ROOM, "c"), CloseRoom(ROOM)]


# -- star rooms: statuses and messages ---------------------------------------------------------

def test_a_clients_status_reaches_the_host_and_itself() -> None:
    book = star_with("h", "c1", "c2")
    frame = {"event": "peer_updated_status", "status": {"name": "Bo"}, "sender_id": "c2"}
    assert publishes(run(book, UpdateStatus(conn="c2", room=ROOM, status=Status(name="Bo")))
                     ) == [("h", frame), ("c2", frame)]


def test_the_hosts_status_reaches_everyone() -> None:
    book = star_with("h", "c1", "c2")
    frame = {"event": "peer_updated_status", "status": {"name": "Hy"}, "sender_id": "h"}
    assert publishes(run(book, UpdateStatus(conn="h", room=ROOM, status=Status(name="Hy")))
                     ) == [("h", frame), ("c1", frame), ("c2", frame)]


def test_a_later_client_sees_the_hosts_updated_status() -> None:
    book = star_with("h", "c1")
    run(book, UpdateStatus(conn="h", room=ROOM, status=Status(name="Hy")))
    run(book, UpdateStatus(conn="c1", room=ROOM, status=Status(name="Cy")))
    assert run(book, join("c2"))[0][2]["peers"] == [entry("h", {"name": "Hy"})]


@pytest.mark.parametrize("sender, target, allowed", [
    ("c1", "h", True),
    ("c1", "c1", True),  # a peer may address itself
    ("h", "c1", True),
    ("h", "c2", True),
    ("h", "h", True),
    ("c1", "c2", False),  # clients never reach each other through the server
    ("c2", "c1", False),
    ("c1", "nobody", False),
])
def test_who_may_address_whom_in_a_star_room(sender: str, target: str, allowed: bool) -> None:
    book = star_with("h", "c1", "c2")
    effects = run(book, SendToPeer(conn=sender, room=ROOM, peer=target, data=OFFER))
    if allowed:
        assert effects == [("publish", target, {"event": "offer", "sdp": "v=0",
                                                "sender_id": sender})]
    else:
        assert effects == [("publish", sender, error("unknown peer", "send_to_peer"))]


def test_after_a_handover_clients_may_address_the_new_host_only() -> None:
    book = star_with("h", "c1", "c2")
    run(book, Leave(conn="h", room=ROOM))
    assert run(book, SendToPeer(conn="c2", room=ROOM, peer="c1", data=OFFER))[0][1] == "c1"
    assert run(book, SendToPeer(conn="c1", room=ROOM, peer="c2", data=OFFER))[0][1] == "c2"
    run(book, join("c3"))
    assert run(book, SendToPeer(conn="c3", room=ROOM, peer="c2", data=OFFER))[0][2][
        "message"] == "unknown peer"


# -- star rooms read back from Redis -------------------------------------------------------------

def test_a_loaded_star_room_keeps_its_topology_host_and_views() -> None:
    book = RoomBook(capacity=100, star_capacity=1000)
    book.load(ROOM, {
        "c1": Member(status=EMPTY_STATUS, gateway=GW, joined="5-0", topology=STAR),
        "h": Member(status=ANN, gateway=GW, joined="4-2", topology=STAR),
    }, {})
    assert run(book, join("c2"))[0][2] == joined(
        "c2", [entry("h", {"name": "Ann", "user_agent": "chrome"})], host="h", topology="star")
    assert run(book, join("m", room=OTHER_ROOM, topology=MESH))[1][2]["topology"] == "mesh"
    assert run(book, SendToPeer(conn="c2", room=ROOM, peer="c1", data=OFFER))[0][2][
        "message"] == "unknown peer"
