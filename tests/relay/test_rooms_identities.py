"""Identities and the host grant from join tokens (docs/protocol.md, "Identities and roles"):
`user` and `info` wherever a peer is shown, and who is host when some members hold the grant,
in mesh and star rooms."""

from __future__ import annotations

from typing import Any

import pytest

from relay.effects import Effect, Publish, PutMember
from relay.rooms import RoomBook
from shared.events import Detach, Join, Leave, Resume, Status, Topology, UpdateStatus
from tests.relay.rooms_support import GW, ROOM, decode, join, joined, run

STAR = Topology.STAR
MESH = Topology.MESH
INFO = b'{"name":"Ms Tee","role":"teacher"}'


def entry(conn: str, user: str = "", info: bytes = b"") -> dict[str, Any]:
    out: dict[str, Any] = {"peer_id": conn, "status": {}}
    if user:
        out["user"] = user
    if info:
        out["info"] = decode(info)
    return out


def host_changed(host: str, *peers: dict[str, Any]) -> dict[str, Any]:
    return {"event": "host_changed", "host_id": host, "peers": list(peers)}


def left(conn: str) -> tuple[str, dict[str, Any]]:
    return ("publish", {"event": "peer_left", "sender_id": conn})


def publishes(effects: list[Any]) -> list[tuple[str, Any]]:
    return [(e[1], e[2]) for e in effects if isinstance(e, tuple) and e[0] == "publish"]


NEW_T = {"event": "new_peer", "peer_id": "t", "status": {}, "user": "u-t"}


def room_of(topology: Topology, *members: tuple[str, bool]) -> RoomBook:
    """ROOM holding `members` (peer id, granted) in join order; a granted one is user
    "u-<id>"."""
    book = RoomBook(100, 100)
    for i, (conn, granted) in enumerate(members, 1):
        run(book, join(conn, topology=topology if i == 1 else None, host=granted,
                       user=f"u-{conn}" if granted else ""), f"{i}-0")
    return book


def granted(conn: str) -> dict[str, Any]:
    return entry(conn, user=f"u-{conn}")


# -- user and info ------------------------------------------------------------------------

def test_user_and_info_are_shown_wherever_the_peer_is() -> None:
    book = RoomBook(100, 100)
    effects = run(book, join("t", user="teacher-1", info=INFO), "1-0")
    assert publishes(effects) == [("t", {**joined("t", [], host="t"), "user": "teacher-1",
                                         "info": decode(INFO)})]
    assert publishes(run(book, join("s"), "2-0")) == [
        ("s", joined("s", [entry("t", "teacher-1", INFO)], host="t")),
        ("t", {"event": "new_peer", "peer_id": "s", "status": {}})]
    assert publishes(run(book, join("v", user="student-9"), "3-0")) == [
        ("v", {**joined("v", [entry("t", "teacher-1", INFO), entry("s")], host="t"),
               "user": "student-9"}),
        ("t", {"event": "new_peer", "peer_id": "v", "status": {}, "user": "student-9"}),
        ("s", {"event": "new_peer", "peer_id": "v", "status": {}, "user": "student-9"}),
    ]


def test_frames_without_claims_are_the_bytes_they_always_were() -> None:
    book = RoomBook(100, 100)
    run(book, join("a"), "1-0")
    out: list[Effect] = []
    book.apply(join("b"), "2-0", out)
    payloads = [e.payload for e in out if isinstance(e, Publish)]
    assert payloads == [
        b'{"event":"joined_room","own_id":"b","peers":[{"peer_id":"a","status":{}}],'
        b'"host_id":"a","topology":"mesh"}',
        b'{"event":"new_peer","peer_id":"b","status":{}}']
    member = next(e.member for e in out if isinstance(e, PutMember))
    assert (member.user, member.info, member.host) == ("", b"", False)


def test_a_status_update_keeps_user_and_info() -> None:
    book = RoomBook(100, 100)
    run(book, join("t", user="teacher-1", info=INFO), "1-0")
    run(book, join("s"), "2-0")
    effects = run(book, UpdateStatus(conn="t", room=ROOM, status=Status(name="T")))
    assert ("s", {"event": "peer_updated_status", "status": {"name": "T"},
                  "sender_id": "t"}) in publishes(effects)
    member = book.rooms[ROOM].members["t"]
    assert (member.user, member.info, member.host) == ("teacher-1", INFO, False)
    assert publishes(run(book, join("v"), "3-0"))[0][1]["peers"][0] == {
        "peer_id": "t", "status": {"name": "T"}, "user": "teacher-1", "info": decode(INFO)}


# -- the host grant -------------------------------------------------------------------------

def test_a_granted_joiner_takes_over_a_mesh_room_whose_host_has_no_grant() -> None:
    book = room_of(MESH, ("a", False), ("b", False))
    assert publishes(run(book, join("t", host=True, user="u-t"), "3-0")) == [
        ("t", {**joined("t", [entry("a"), entry("b")], host="t"), "user": "u-t"}),
        ("a", NEW_T), ("b", NEW_T),
        # No peer_left, nobody left: then each member's whole view, with its new host.
        ("a", host_changed("t", entry("b"), granted("t"))),
        ("b", host_changed("t", entry("a"), granted("t"))),
    ]
    assert book.rooms[ROOM].host == "t"


def test_a_granted_joiner_takes_over_a_star_room_whose_host_has_no_grant() -> None:
    book = room_of(STAR, ("a", False), ("b", False), ("c", False))
    assert publishes(run(book, join("t", host=True, user="u-t"), "4-0")) == [
        ("t", {**joined("t", [entry("a"), entry("b"), entry("c")], host="t",
                        topology="star"), "user": "u-t"}),
        # Everyone sees the new host in host_changed alone (a new_peer would have the old
        # host, host until then, start a link to it); the old host now sees the new host
        # alone, like every other member.
        ("a", host_changed("t", granted("t"))),
        ("b", host_changed("t", granted("t"))),
        ("c", host_changed("t", granted("t"))),
    ]
    # A later joiner sees the granted host, and only the host hears of it.
    assert publishes(run(book, join("d"), "5-0")) == [
        ("d", joined("d", [granted("t")], host="t", topology="star")),
        ("t", {"event": "new_peer", "peer_id": "d", "status": {}}),
    ]


@pytest.mark.parametrize("topology", [MESH, STAR])
def test_a_granted_joiner_does_not_take_over_from_a_granted_host(topology: Topology) -> None:
    book = room_of(topology, ("a", False), ("t1", True))
    assert book.rooms[ROOM].host == "t1"
    effects = publishes(run(book, join("t2", host=True, user="u-t2"), "3-0"))
    assert effects[0] == ("t2", {**joined(
        "t2", [entry("a"), granted("t1")] if topology is MESH else [granted("t1")],
        host="t1", topology=topology), "user": "u-t2"})
    new_peer = {"event": "new_peer", "peer_id": "t2", "status": {}, "user": "u-t2"}
    watchers = ["a", "t1"] if topology is MESH else ["t1"]
    assert effects[1:] == [(conn, new_peer) for conn in watchers]
    assert book.rooms[ROOM].host == "t1"


@pytest.mark.parametrize("topology", [MESH, STAR])
def test_when_a_granted_host_leaves_the_next_granted_member_takes_over(
        topology: Topology) -> None:
    book = room_of(topology, ("a", False), ("t1", True), ("b", False), ("t2", True))
    effects = publishes(run(book, Leave(conn="t1", room=ROOM), "5-0"))
    bye = {"event": "peer_left", "sender_id": "t1"}
    assert effects[:3] == [("a", bye), ("b", bye), ("t2", bye)]
    if topology is MESH:
        assert effects[3:] == [
            ("a", host_changed("t2", entry("b"), granted("t2"))),
            ("b", host_changed("t2", entry("a"), granted("t2"))),
            ("t2", host_changed("t2", entry("a"), entry("b"))),
        ]
    else:
        assert effects[3:] == [
            ("a", host_changed("t2", granted("t2"))),
            ("b", host_changed("t2", granted("t2"))),
            ("t2", host_changed("t2", entry("a"), entry("b"))),
        ]
    assert book.rooms[ROOM].host == "t2"


@pytest.mark.parametrize("topology", [MESH, STAR])
def test_when_the_last_granted_host_leaves_the_longest_present_member_is_host(
        topology: Topology) -> None:
    book = room_of(topology, ("a", False), ("t", True), ("b", False))
    effects = publishes(run(book, Leave(conn="t", room=ROOM), "4-0"))
    bye = {"event": "peer_left", "sender_id": "t"}
    assert effects == [("a", bye), ("b", bye),
                       ("a", host_changed("a", entry("b"))),
                       ("b", host_changed("a", entry("a")))]
    assert book.rooms[ROOM].host == "a"


def test_a_member_without_the_grant_leaving_changes_no_host() -> None:
    book = room_of(STAR, ("a", False), ("t", True), ("b", False))
    assert publishes(run(book, Leave(conn="a", room=ROOM), "4-0")) == [
        ("t", {"event": "peer_left", "sender_id": "a"})]
    assert book.rooms[ROOM].host == "t"


def test_a_room_read_back_keeps_its_granted_host() -> None:
    book = room_of(STAR, ("a", False), ("t", True), ("b", False))
    reloaded = RoomBook(100, 100)
    reloaded.load(ROOM, dict(book.rooms[ROOM].members), {})
    assert reloaded.rooms[ROOM].host == "t"
    assert list(reloaded.rooms[ROOM].members) == ["a", "t", "b"]


def test_a_resume_keeps_user_info_and_grant() -> None:
    book = room_of(MESH, ("a", False))
    run(book, Join(conn="t", room=ROOM, gateway=GW, seq=1, status=Status(), host=True,
                   user="u-t", info=INFO, token_digest="d1"), "2-0")
    run(book, Detach(conn="t", room=ROOM, socket="t"), "3-0")
    effects = run(book, Resume(conn="t", room="", gateway=GW, seq=2, socket="s2",
                               token_digest="d1", new_token_digest="d2",
                               last_frame_seq=0), "4-0")
    resumed = next(p for p in publishes(effects)
                   if isinstance(p[1], dict) and p[1]["event"] == "joined_room")
    assert resumed == ("s2", {**joined("t", [entry("a")], host="t"), "resumed": True,
                              "user": "u-t", "info": decode(INFO)})
    member = book.rooms[ROOM].members["t"]
    assert (member.user, member.info, member.host) == ("u-t", INFO, True)
    assert book.rooms[ROOM].host == "t"
