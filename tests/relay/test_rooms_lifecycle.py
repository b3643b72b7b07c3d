"""Each room's life as webhook events (docs/protocol.md, "Webhooks"), as the room state machine
records them through relay/lifecycle.py: tables of events and the bodies they must produce,
then properties over random sequences of events.

The properties read every body back as the rooms' lives (a life starts with room.started,
numbers on by one, names each peer that joins and leaves once, and ends with room.finished
once the room is empty) and check them against the book's own rooms after each event; they
also check that a book without webhooks does exactly the same minus the webhook effects,
and that a relay that takes a shard over, from what the commits stored, goes on numbering
where the last one left off.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.effects import (
    DropKept,
    DropLife,
    DropMember,
    Effect,
    Hook,
    Keep,
    PutLife,
    PutMember,
)
from relay.rooms import RoomBook
from shared.events import (
    EMPTY_STATUS,
    AnyEvent,
    Detach,
    EndRoom,
    Expire,
    Join,
    Leave,
    LeaveReason,
    Member,
    RemoveAll,
    RemovePeers,
    Resume,
    SendToPeer,
    ServerMessage,
    SetDeadline,
    Topology,
    UpdateStatus,
)
from shared.webhook_events import RoomLife
from tests.relay.rooms_support import ANN, GW, ROOM

NAME = "class 7b"  # the room's name in clear, as joins bring it
ADMIN = "adm-gw-1-7"
TOKEN = "digest-of-token-1"
KEEP = 3
GRACE_MS = 1000
NOTE = b'{"text":"five minutes left"}'
HOOK_EFFECTS = (Hook, PutLife, DropLife)


class Names:
    """Life names L1, L2, ... in the order lives begin (the relay's are random)."""

    def __init__(self, drawn: int = 0) -> None:
        self.drawn = drawn

    def __call__(self) -> str:
        self.drawn += 1
        return f"L{self.drawn}"


def new_book(webhooks: bool = True, capacity: int = 3, names: Names | None = None,
             keep: int = KEEP, grace_ms: int = GRACE_MS) -> RoomBook:
    book = RoomBook(capacity, capacity, keep_frames=keep, grace_ms=grace_ms, webhooks=webhooks)
    book.hooks.new_name = Names() if names is None else names
    return book


def apply(book: RoomBook, event: AnyEvent, at_ms: int) -> list[Effect]:
    out: list[Effect] = []
    book.apply(event, f"{at_ms}-0", out)
    return out


def typed(effects: list[Effect]) -> list[tuple[Any, ...]]:
    """Effects to compare: each a NamedTuple, equal to any tuple of the same fields (an
    OpenRoom to a CloseRoom or a DropLife of the same room) unless its type is named."""
    return [(type(e).__name__, *e) for e in effects]


def bodies(effects: list[Effect]) -> list[dict[str, Any]]:
    return [json.loads(e.body) for e in effects if isinstance(e, Hook)]


# What each type's line shows besides its id: the fields that tell what happened.
KEY_FIELDS = {"room.started": ("topology",), "peer.joined": ("peer_id", "host"),
              "host.changed": ("host_id",), "peer.left": ("peer_id", "reason"),
              "room.finished": ("peak_members", "joins")}


def lines(effects: list[Effect]) -> list[tuple[Any, ...]]:
    """The webhook bodies among `effects`, each as (id, type, its key fields)."""
    return [(b["id"], b["type"], *(b[k] for k in KEY_FIELDS[b["type"]])) for b in bodies(effects)]


# -- events --------------------------------------------------------------------------------

def join(conn: str, token: str = "", host: bool = False, user: str = "",
         topology: Topology | None = None, ends_at: int = 0, gateway: str = GW) -> Join:
    return Join(conn=conn, room=ROOM, gateway=gateway, seq=1, topology=topology,
                token_digest=token, user=user, host=host, ends_at=ends_at, name=NAME)


def leave(conn: str, reason: LeaveReason = LeaveReason.LEFT, socket: str = "") -> Leave:
    return Leave(conn=conn, room=ROOM, socket=socket, reason=reason)


def detach(conn: str) -> Detach:
    return Detach(conn=conn, room=ROOM, socket=conn)


def send(sender: str, peer: str) -> SendToPeer:
    return SendToPeer(conn=sender, room=ROOM, peer=peer, data=b'{"event":"message"}')


def resume(conn: str, last: int, token: str = TOKEN) -> Resume:
    return Resume(conn=conn, room="", gateway="gw-2", seq=2, socket=f"{conn}#2",
                  token_digest=token, new_token_digest=token + "+", last_frame_seq=last)


# -- what each change of a room records -----------------------------------------------------

AB = [join("a"), join("b")]
# "r" (resumable, the host) and "p"; r's socket drops at 1002: its grace ends at 2002.
R_AWAY = [join("r", TOKEN), join("p"), detach("r")]
R_GONE = [("L1-4", "peer.left", "r", "grace_expired"), ("L1-5", "host.changed", "p")]

SCENARIOS: list[Any] = [
    # (events applied at 1000, 1001, ..., the event then applied at `at`, what it records)
    pytest.param([], join("a"), 1500,
                 [("L1-1", "room.started", "mesh"), ("L1-2", "peer.joined", "a", True)],
                 id="a join starts a room"),
    pytest.param([], join("a", topology=Topology.STAR), 1500,
                 [("L1-1", "room.started", "star"), ("L1-2", "peer.joined", "a", True)],
                 id="a join starts a star room"),
    pytest.param([join("a")], join("b"), 1500,
                 [("L1-3", "peer.joined", "b", False)],
                 id="a second join"),
    pytest.param(AB, join("c", host=True), 1500,
                 [("L1-4", "peer.joined", "c", True), ("L1-5", "host.changed", "c")],
                 id="a granted joiner takes over"),
    pytest.param([join("a", host=True)], join("c", host=True), 1500,
                 [("L1-3", "peer.joined", "c", False)],
                 id="a granted joiner under a granted host"),
    pytest.param([*AB, join("c")], join("d"), 1500, [],
                 id="a join refused: the room is full"),
    pytest.param([join("a")], join("b", topology=Topology.STAR), 1500, [],
                 id="a join refused: wrong topology"),
    pytest.param([join("a")], join("a"), 1500, [],
                 id="a join refused: already joined"),
    pytest.param([join("a"), leave("a")], join("b"), 1500,
                 [("L2-1", "room.started", "mesh"), ("L2-2", "peer.joined", "b", True)],
                 id="a join after the room finished starts a new life"),
    pytest.param(AB, leave("b"), 1500,
                 [("L1-4", "peer.left", "b", "left")],
                 id="leave_room"),
    pytest.param(AB, leave("a"), 1500,
                 [("L1-4", "peer.left", "a", "left"), ("L1-5", "host.changed", "b")],
                 id="leave_room of the host"),
    pytest.param([join("a")], leave("a"), 1500,
                 [("L1-3", "peer.left", "a", "left"), ("L1-4", "room.finished", 1, 1)],
                 id="the last member leaves"),
    pytest.param(AB, leave("zz"), 1500, [],
                 id="a leave of no member"),
    pytest.param(AB, leave("b", LeaveReason.CLOSED), 1500,
                 [("L1-4", "peer.left", "b", "closed")],
                 id="a socket closes"),
    pytest.param(AB, detach("b"), 1500,
                 [("L1-4", "peer.left", "b", "closed")],
                 id="a socket of a non-resumable member closes"),
    pytest.param(R_AWAY[:2], detach("r"), 1500, [],
                 id="a socket of a resumable member closes: it stays"),
    pytest.param(AB, leave("b", LeaveReason.GATEWAY_LOST), 1500,
                 [("L1-4", "peer.left", "b", "gateway_lost")],
                 id="a gateway is lost"),
    pytest.param(R_AWAY, Expire(conn="r", room=ROOM, until=1002 + GRACE_MS), 2002, R_GONE,
                 id="grace expires"),
    pytest.param(R_AWAY, Expire(conn="r", room=ROOM, until=1), 2002, [],
                 id="a stale expire"),
    pytest.param(R_AWAY, resume("r", 1), 1500, [],
                 id="a resume within grace"),
    pytest.param(R_AWAY[:2], resume("r", 1), 1500, [],
                 id="a resume taking over an open socket"),
    pytest.param(R_AWAY, resume("r", 1, token="bad"), 1500, [],
                 id="a resume with a bad token"),
    pytest.param(R_AWAY, resume("r", 1), 2003, R_GONE,
                 id="a resume refused after grace"),
    pytest.param([*R_AWAY[:2], *[send("p", "r")] * (KEEP + 1)], resume("r", 1), 1500,
                 [("L1-4", "peer.left", "r", "overflow"), ("L1-5", "host.changed", "p")],
                 id="a resume lacking more frames than are kept"),
    pytest.param([*R_AWAY, *[send("p", "r")] * KEEP], send("p", "r"), 1500,
                 [("L1-4", "peer.left", "r", "overflow"), ("L1-5", "host.changed", "p")],
                 id="more sent to a peer away than is kept"),
    pytest.param([join("r", TOKEN), detach("r"),
                  *[ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE)] * KEEP],
                 ServerMessage(reply_to=ADMIN, room=ROOM, data=NOTE), 1500,
                 [("L1-3", "peer.left", "r", "overflow"), ("L1-4", "room.finished", 1, 1)],
                 id="more sent to the last member away than is kept"),
    pytest.param(AB, send("a", "b"), 1500, [],
                 id="a message"),
    pytest.param(AB, UpdateStatus(conn="a", room=ROOM, status=ANN), 1500, [],
                 id="a status update"),
    pytest.param([*R_AWAY[:2], resume("r", 1)], leave("r", socket="r"), 1500, [],
                 id="the leave of a socket whose peer another socket resumed"),
    pytest.param(AB, RemovePeers(reply_to=ADMIN, room=ROOM, peer="b"), 1500,
                 [("L1-4", "peer.left", "b", "removed")],
                 id="the app removes a peer"),
    pytest.param([join("a", user="u-1"), join("b"), join("c", user="u-1")],
                 RemovePeers(reply_to=ADMIN, room=ROOM, user="u-1"), 1500,
                 [("L1-5", "peer.left", "a", "removed"), ("L1-6", "peer.left", "c", "removed"),
                  ("L1-7", "host.changed", "b")],
                 id="the app removes the host's user"),
    pytest.param([join("a")], RemovePeers(reply_to=ADMIN, room=ROOM, peer="a"), 1500,
                 [("L1-3", "peer.left", "a", "removed"), ("L1-4", "room.finished", 1, 1)],
                 id="the app removes the last member"),
    pytest.param(AB, RemovePeers(reply_to=ADMIN, room=ROOM, peer="zz"), 1500, [],
                 id="the app removes nobody"),
    pytest.param([*AB, leave("b")], RemoveAll(reply_to=ADMIN, room=ROOM), 1500,
                 [("L1-5", "peer.left", "a", "room_closed"), ("L1-6", "room.finished", 2, 2)],
                 id="the app closes the room"),
    pytest.param([*R_AWAY, join("q")], RemoveAll(reply_to=ADMIN, room=ROOM), 1500,
                 [("L1-5", "peer.left", "r", "room_closed"),
                  ("L1-6", "peer.left", "p", "room_closed"),
                  ("L1-7", "peer.left", "q", "room_closed"), ("L1-8", "room.finished", 3, 3)],
                 id="the app closes a room with a member away"),
    pytest.param([join("a", ends_at=1400), join("b")], EndRoom(conn="", room=ROOM, at=1400),
                 1500,
                 [("L1-4", "peer.left", "a", "expired"), ("L1-5", "peer.left", "b", "expired"),
                  ("L1-6", "room.finished", 2, 2)],
                 id="the deadline passes"),
    pytest.param([join("a", ends_at=1400)], EndRoom(conn="", room=ROOM, at=1300), 1500, [],
                 id="a deadline moved since the sweep saw it"),
    pytest.param(AB, SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=1200), 1500,
                 [("L1-4", "peer.left", "a", "expired"), ("L1-5", "peer.left", "b", "expired"),
                  ("L1-6", "room.finished", 2, 2)],
                 id="a deadline set in the past"),
    pytest.param(AB, SetDeadline(reply_to=ADMIN, room=ROOM, ends_at=9000), 1500, [],
                 id="a deadline set ahead"),
    pytest.param([join("a", ends_at=1400)], join("b"), 1500,
                 [("L1-3", "peer.left", "a", "expired"), ("L1-4", "room.finished", 1, 1),
                  ("L2-1", "room.started", "mesh"), ("L2-2", "peer.joined", "b", True)],
                 id="a join after the deadline ends the life and starts another"),
]


@pytest.mark.parametrize(("setup", "event", "at", "expected"), SCENARIOS)
def test_each_change_of_a_room_records_its_webhooks(
        setup: list[AnyEvent], event: AnyEvent, at: int, expected: list[tuple[Any, ...]]
) -> None:
    book = new_book()
    for i, earlier in enumerate(setup):
        apply(book, earlier, 1000 + i)
    effects = apply(book, event, at)
    assert lines(effects) == expected
    # Each body is followed by the life it numbers, which a finished life then drops.
    for i, effect in enumerate(effects):
        if isinstance(effect, Hook):
            put = effects[i + 1]
            assert isinstance(put, PutLife) and put.room == ROOM
            assert json.loads(effect.body)["id"] == f"{put.life.name}-{put.life.seq}"
    assert (("DropLife", ROOM) in typed(effects)) == any(
        line[1] == "room.finished" for line in expected)


def test_a_life_s_bodies_in_full() -> None:
    book = new_book()
    info = b'{"name":"Ann","role":"teacher"}'
    first = Join(conn="a", room=ROOM, gateway=GW, seq=1, status=ANN, topology=Topology.STAR,
                 user="u-1", info=info, name=NAME)
    got = bodies(apply(book, first, 1000))
    got += bodies(apply(book, join("b"), 1500))
    got += bodies(apply(book, leave("a"), 3000))
    last = apply(book, leave("b", LeaveReason.CLOSED), 4250)
    got += bodies(last)
    head = [{"id": f"L1-{n}", "room": NAME, "room_seq": n} for n in range(1, 8)]
    assert got == [
        {**head[0], "type": "room.started", "at": 1000, "topology": "star"},
        {**head[1], "type": "peer.joined", "at": 1000, "peer_id": "a", "user": "u-1",
         "info": {"name": "Ann", "role": "teacher"},
         "status": {"name": "Ann", "user_agent": "chrome"}, "host": True},
        {**head[2], "type": "peer.joined", "at": 1500, "peer_id": "b", "user": None,
         "info": None, "status": {}, "host": False},
        {**head[3], "type": "peer.left", "at": 3000, "peer_id": "a", "user": "u-1",
         "reason": "left"},
        {**head[4], "type": "host.changed", "at": 3000, "host_id": "b", "user": None},
        {**head[5], "type": "peer.left", "at": 4250, "peer_id": "b", "user": None,
         "reason": "closed"},
        {**head[6], "type": "room.finished", "at": 4250, "started_at": 1000,
         "duration_s": 3.25, "peak_members": 2, "joins": 2},
    ]
    assert typed(last)[-1] == ("DropLife", ROOM) and book.hooks.lives == {}


def test_a_lost_gateway_s_members_leave_or_are_away() -> None:
    book = new_book(capacity=10)
    for i, joining in enumerate([join("a"), join("r", TOKEN), join("b", gateway="gw-2")]):
        apply(book, joining, 1000 + i)
    got = []
    for departure in book.departures()[GW]:
        got += lines(apply(book, departure, 2000))
    assert got == [("L1-5", "peer.left", "a", "gateway_lost"), ("L1-6", "host.changed", "r")]
    assert list(book.rooms[ROOM].members) == ["r", "b"]


def test_rooms_have_lives_of_their_own() -> None:
    book = new_book()
    other = Join(conn="x", room="e" * 128, gateway=GW, seq=1, name="other")
    effects = apply(book, join("a"), 1000) + apply(book, other, 1001)
    assert [(e.room, lines([e])[0][0]) for e in effects if isinstance(e, Hook)] == [
        (ROOM, "L1-1"), (ROOM, "L1-2"), ("e" * 128, "L2-1"), ("e" * 128, "L2-2")]
    assert [b["room"] for b in bodies(effects)] == [NAME, NAME, "other", "other"]


# -- a relay that takes a shard over ----------------------------------------------------------

@dataclass
class Stored:
    """What the commits of a shard leave in Redis, as far as a relay reads it back."""

    members: dict[str, dict[str, Member]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)  # keys.frame_counters
    lives: dict[str, RoomLife] = field(default_factory=dict)  # keys.room_lives

    def commit(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, PutMember):
                self.members.setdefault(effect.room, {})[effect.conn] = effect.member
            elif isinstance(effect, DropMember):
                del self.members[effect.room][effect.conn]
                if not self.members[effect.room]:
                    del self.members[effect.room]
            elif isinstance(effect, Keep):
                self.counters[effect.conn] = effect.seq
            elif isinstance(effect, DropKept):
                self.counters.pop(effect.conn, None)
            elif isinstance(effect, PutLife):
                self.lives[effect.room] = effect.life
            elif isinstance(effect, DropLife):
                del self.lives[effect.room]

    def load(self, book: RoomBook) -> RoomBook:
        """`book` (empty) with the shard's rooms read back, as relay.store.load_shard does."""
        for digest, members in self.members.items():
            book.load(digest, dict(members), self.counters, self.lives.get(digest))
        return book


def test_a_relay_that_takes_over_numbers_on_in_the_same_life() -> None:
    book, stored = new_book(), Stored()
    for i, event in enumerate(AB):
        stored.commit(apply(book, event, 1000 + i))
    assert stored.lives == {ROOM: RoomLife(name="L1", seq=3, started=1000, peak=2, joins=2)}
    again = stored.load(new_book(names=Names(drawn=100)))
    assert lines(apply(again, leave("a"), 2000)) == [
        ("L1-4", "peer.left", "a", "left"), ("L1-5", "host.changed", "b")]
    assert lines(apply(again, join("c"), 2001)) == [("L1-6", "peer.joined", "c", False)]
    assert lines(apply(again, leave("b"), 2002) + apply(again, leave("c"), 2003)) == [
        ("L1-7", "peer.left", "b", "left"), ("L1-8", "host.changed", "c"),
        ("L1-9", "peer.left", "c", "left"), ("L1-10", "room.finished", 2, 3)]
    # The next life is the new relay's own.
    assert lines(apply(again, join("d"), 2004)) == [
        ("L101-1", "room.started", "mesh"), ("L101-2", "peer.joined", "d", True)]


def test_a_room_loaded_without_a_life_starts_one_before_its_next_event() -> None:
    # Webhooks were off when the room began: its records have no life beside them.
    book, stored = new_book(webhooks=False, capacity=10), Stored()
    for i, event in enumerate([*AB, join("c")]):
        stored.commit(apply(book, event, 1000 + i))
    assert stored.lives == {}
    on = stored.load(new_book(capacity=10))
    assert lines(apply(on, join("d", host=True), 2000)) == [
        ("L1-1", "room.started", "mesh"), ("L1-2", "peer.joined", "d", True),
        ("L1-3", "host.changed", "d")]
    on = stored.load(new_book())
    assert lines(apply(on, leave("a"), 2000)) == [
        ("L1-1", "room.started", "mesh"), ("L1-2", "peer.left", "a", "left"),
        ("L1-3", "host.changed", "b")]
    on = stored.load(new_book())
    effects = apply(on, RemoveAll(reply_to=ADMIN, room=ROOM), 2000)
    got = bodies(effects)
    assert [(b["id"], b["type"], b.get("peer_id")) for b in got] == [
        ("L1-1", "room.started", None), ("L1-2", "peer.left", "a"),
        ("L1-3", "peer.left", "b"), ("L1-4", "peer.left", "c"), ("L1-5", "room.finished", None)]
    # The life is seen from when it began, with the members it had then, and no join was
    # seen in it.
    assert (got[0]["at"], got[-1]["started_at"], got[-1]["joins"]) == (2000, 2000, 0)
    assert got[-1]["peak_members"] == 3
    assert ("DropLife", ROOM) in typed(effects) and on.hooks.lives == {}


def test_without_webhooks_a_loaded_life_is_dropped_with_its_room() -> None:
    # Webhooks turned off: what an earlier relay kept of a life goes when the room does.
    book, stored = new_book(), Stored()
    stored.commit(apply(book, join("a"), 1000))
    off = stored.load(new_book(webhooks=False))
    assert [e for e in apply(off, join("b"), 2000) if isinstance(e, HOOK_EFFECTS)] == []
    effects = apply(off, RemoveAll(reply_to=ADMIN, room=ROOM), 2001)
    assert typed([e for e in effects if isinstance(e, HOOK_EFFECTS)]) == [("DropLife", ROOM)]


# -- properties over random sequences of events -----------------------------------------------

DIGESTS = {"n" * 128: "north", "s" * 128: "south", "w" * 128: ""}  # "": no name kept
ROOMS = list(DIGESTS)
PEERS = [f"p{i}" for i in range(5)]
GATEWAYS = ["gw-1", "gw-2"]
USERS = ["", "u-1", "u-2"]
INFOS = {"": b"", "u-1": b'{"name":"One"}', "u-2": b'{"name":"Two","role":"teacher"}'}
STATUSES = [EMPTY_STATUS, ANN]
P_KEEP = 1
P_GRACE_MS = 20
P_CAPACITY = 3


def reasons_for(event: AnyEvent, digest: str, conn: str, before: Member | None,
                room_ends_at: int, now: int) -> set[str]:
    """The reasons `conn` may leave room `digest` for, when `event` is applied (its record
    before, None if it joined during the event)."""
    reasons = {"overflow"} if before is not None and before.detached_until else set()
    if isinstance(event, Leave | Detach | Expire | Resume) and event.conn != conn:
        return reasons
    if isinstance(event, Leave):
        reasons.add(event.reason)
    elif isinstance(event, Detach):
        reasons.add("closed")
    elif isinstance(event, Expire):
        reasons.add("grace_expired")
    elif isinstance(event, Resume):
        reasons |= {"grace_expired", "overflow"}
    elif event.room != digest:
        pass
    elif isinstance(event, RemovePeers):
        if event.peer == conn or (before is not None and event.user
                                  and before.user == event.user):
            reasons.add("removed")
    elif isinstance(event, RemoveAll):
        reasons.add("room_closed")
    elif isinstance(event, SetDeadline | EndRoom):
        reasons.add("expired")
    elif isinstance(event, Join) and room_ends_at and room_ends_at <= now:
        reasons.add("expired")
    return reasons


@dataclass
class Life:
    """One life of a room, as its bodies tell it."""

    name: str
    seq: int
    started: int
    members: list[str] = field(default_factory=list)
    users: dict[str, str | None] = field(default_factory=dict)
    host: str | None = None
    taking_over: str = ""  # a granted joiner that is the host now, until host.changed
    peak: int = 0
    joins: int = 0


class Lives:
    """The bodies of one book read back as its rooms' lives, checked as they come."""

    def __init__(self) -> None:
        self.open: dict[str, Life] = {}
        self.names: set[str] = set()
        self.ids: set[str] = set()
        self.kept: dict[str, RoomLife] = {}  # the PutLife/DropLife effects, as Redis keeps them

    def read(self, book: RoomBook, event: AnyEvent, now: int,
             before: dict[str, tuple[dict[str, Member], int]], effects: list[Effect]) -> None:
        for i, effect in enumerate(effects):
            if isinstance(effect, Hook):
                put = effects[i + 1]
                assert isinstance(put, PutLife) and put.room == effect.room
                self.body(book, event, now, before, effect.room, json.loads(effect.body),
                          put.life)
            elif isinstance(effect, PutLife):
                self.kept[effect.room] = effect.life
            elif isinstance(effect, DropLife):
                del self.kept[effect.room]
        self.agrees(book)

    def body(self, book: RoomBook, event: AnyEvent, now: int,
             before: dict[str, tuple[dict[str, Member], int]], digest: str,
             body: dict[str, Any], put: RoomLife) -> None:
        kind, seq = body["type"], body["room_seq"]
        assert body["at"] == now and body["room"] == DIGESTS[digest], body
        assert body["id"] == f"{put.name}-{seq}" and put.seq == seq, (body, put)
        assert body["id"] not in self.ids, body
        self.ids.add(body["id"])
        life = self.open.get(digest)
        if kind == "room.started":
            assert life is None and seq == 1, (body, life)
            assert put.name not in self.names, "a new life has a new name"
            self.names.add(put.name)
            self.open[digest] = Life(put.name, 1, now)
            assert body["topology"] == book.rooms[digest].topology
            return
        assert life is not None and (put.name, seq) == (life.name, life.seq + 1), (body, life)
        life.seq = seq
        members, ends_at = before.get(digest, ({}, 0))
        if kind == "peer.joined":
            peer = body["peer_id"]
            assert isinstance(event, Join) and event.conn == peer and event.room == digest
            assert peer not in life.members
            assert (body["user"], body["info"], body["status"]) == (
                event.user or None, json.loads(event.info) if event.info else None,
                {k: v for k, v in (("name", event.status.name),
                                   ("user_agent", event.status.user_agent)) if v})
            life.members.append(peer)
            life.users[peer] = body["user"]
            life.joins += 1
            life.peak = max(life.peak, len(life.members))
            if body["host"] and life.host is not None:
                life.taking_over = peer  # host.changed comes next, in the same event
            elif body["host"]:
                life.host = peer
            assert life.host is not None
        elif kind == "host.changed":
            host = body["host_id"]
            assert host in life.members and host != life.host
            assert life.taking_over in ("", host), (body, life)
            life.host, life.taking_over = host, ""
            assert body["user"] == life.users[life.host]
        elif kind == "peer.left":
            peer = body["peer_id"]
            assert peer in life.members, (body, life)
            assert body["user"] == life.users.pop(peer)
            life.members.remove(peer)
            if life.host == peer:
                life.host = None  # host.changed must follow unless the room is empty
            allowed = reasons_for(event, digest, peer, members.get(peer), ends_at, now)
            assert body["reason"] in allowed, (body, event, allowed)
        else:
            assert kind == "room.finished", body
            assert life.members == [], "a room finishes only when it has no members"
            assert (body["started_at"], body["peak_members"], body["joins"]) == (
                life.started, life.peak, life.joins)
            assert body["duration_s"] == (now - life.started) / 1000
            assert book.stats.lifetimes[-1] == (body["duration_s"], body["peak_members"])
            del self.open[digest]

    def agrees(self, book: RoomBook) -> None:
        """After each event, the lives tell the book's rooms: who is in, who is host."""
        for digest in ROOMS:
            room, life = book.rooms.get(digest), self.open.get(digest)
            if room is None:
                assert life is None and digest not in self.kept, digest
                continue
            assert life is not None and life.taking_over == ""
            assert (life.members, life.host) == (list(room.members), room.host), (life, room)
            assert self.kept[digest] == book.hooks.lives[digest] == RoomLife(
                life.name, life.seq, life.started, life.peak, life.joins)


class World:
    """A book (webhooks on) fed random actions as gateways, the sweep and the app would
    send them; beside it, optionally, a book with webhooks off fed the same events."""

    def __init__(self, twin: bool = False) -> None:
        self.names = Names()
        self.book = self.fresh(webhooks=True, names=self.names)
        self.twin = self.fresh(webhooks=False) if twin else None
        self.lives = Lives()
        self.stored = Stored()
        self.now = 1000
        self.seq = 0
        self.taken_over: RoomBook | None = None

    @staticmethod
    def fresh(webhooks: bool, names: Names | None = None) -> RoomBook:
        return new_book(webhooks, capacity=P_CAPACITY, names=names, keep=P_KEEP,
                        grace_ms=P_GRACE_MS)

    def take_over(self) -> None:
        """From here on, a relay that read the shard back runs beside the first."""
        self.taken_over = self.stored.load(self.fresh(True, Names(self.names.drawn)))

    def step(self, action: tuple[Any, ...]) -> None:
        self.now += 1
        for i, event in enumerate(self.events_for(action)):
            entry_id = f"{self.now}-{i}"
            before = {d: (dict(r.members), r.ends_at) for d, r in self.book.rooms.items()}
            out: list[Effect] = []
            self.book.apply(event, entry_id, out)
            self.stored.commit(out)
            self.lives.read(self.book, event, self.now, before, out)
            if self.twin is not None:
                off: list[Effect] = []
                self.twin.apply(event, entry_id, off)
                assert typed(off) == typed(
                    [e for e in out if not isinstance(e, HOOK_EFFECTS)]), event
            if self.taken_over is not None:
                again: list[Effect] = []
                self.taken_over.apply(event, entry_id, again)
                assert typed(again) == typed(out), event

    def events_for(self, action: tuple[Any, ...]) -> list[AnyEvent]:
        kind = action[0]
        book = self.book
        self.seq += 1
        if kind == "wait":
            self.now += action[1]
            return []
        if kind == "sweep":
            return [*book.expired(self.now), *book.ended(self.now)]
        if kind == "gateway_lost":
            return list(book.departures().get(action[1], []))
        if kind in ("remove_peer", "remove_user", "close_room", "deadline", "message"):
            return [self.admin_event(action)]
        conn = action[1]
        digest = book.room_of.get(conn, "")
        member = book.rooms[digest].members[conn] if digest else None
        channel = (member.socket or conn) if member is not None else conn
        if kind == "join":
            if member is not None:
                return []  # its gateway answers "already joined another room"
            _, _, room, topology, resumable, granted, user, gateway, lasts = action
            return [Join(conn=conn, room=room, gateway=gateway, seq=self.seq,
                         status=STATUSES[self.seq % 2], topology=topology,
                         token_digest=f"t{self.seq}" if resumable else "", user=user,
                         info=INFOS[user], host=granted,
                         ends_at=self.now + lasts if lasts else 0, name=DIGESTS[room])]
        if kind == "resume":
            _, _, lost, good = action
            token = member.token if member is not None and good else "bad"
            last = max(book.frame_seqs.get(conn, 0) - lost, 0)
            return [Resume(conn=conn, room="", gateway=GATEWAYS[self.seq % 2], seq=self.seq,
                           socket=f"{conn}#{self.seq}", token_digest=token,
                           new_token_digest=f"t{self.seq}", last_frame_seq=last)]
        if member is None:
            return []  # the gateway knows its socket is in no room
        if kind == "leave":
            return [Leave(conn=conn, room=digest, socket=channel)]
        if kind == "close":  # its socket closed without leave_room
            if member.resumable or action[2]:
                return [Detach(conn=conn, room=digest, socket=channel)]
            return [Leave(conn=conn, room=digest, socket=channel, reason=LeaveReason.CLOSED)]
        if kind == "send":
            return [SendToPeer(conn=conn, room=digest, peer=action[2],
                               data=b'{"event":"message"}', socket=channel)]
        assert kind == "status", action
        return [UpdateStatus(conn=conn, room=digest, status=ANN, socket=channel)]

    def admin_event(self, action: tuple[Any, ...]) -> AnyEvent:
        kind, room = action[0], action[1]
        if kind == "remove_peer":
            return RemovePeers(reply_to=ADMIN, room=room, peer=action[2])
        if kind == "remove_user":
            return RemovePeers(reply_to=ADMIN, room=room, user=action[2])
        if kind == "close_room":
            return RemoveAll(reply_to=ADMIN, room=room)
        if kind == "message":
            return ServerMessage(reply_to=ADMIN, room=room, data=NOTE)
        offset = action[2]  # past (ends the room now), cleared, or ahead
        return SetDeadline(reply_to=ADMIN, room=room,
                           ends_at=0 if offset is None else self.now + offset)

    def finish(self) -> None:
        """At the end, every life still open is a room with members, and the rest ended."""
        assert set(self.lives.open) == set(self.book.rooms)
        assert self.lives.kept == self.book.hooks.lives


peers = st.sampled_from(PEERS)
# Mostly one room, so that it fills up, changes hosts, ends and begins again.
rooms = st.sampled_from([ROOMS[0]] * 4 + ROOMS[1:])
joins = st.tuples(st.just("join"), peers, rooms,
                  st.sampled_from([None, None, None, Topology.MESH, Topology.STAR]),
                  st.booleans(),  # resumable: its socket drops and comes back, or not
                  st.sampled_from([False, False, True]), st.sampled_from(USERS),
                  st.sampled_from(GATEWAYS), st.sampled_from([0, 0, 0, 5, 30]))
# Each kind of action, and how often it comes: joins more than a third of the time, so
# that rooms fill up, hosts change, lives end and begin again.
ACTIONS: dict[str, tuple[int, st.SearchStrategy[tuple[Any, ...]]]] = {
    "join": (12, joins),
    "leave": (2, st.tuples(st.just("leave"), peers)),
    "close": (3, st.tuples(st.just("close"), peers, st.booleans())),
    # What a peer away is kept, until it is more than is kept.
    "send": (2, st.tuples(st.just("send"), peers, peers)),
    "status": (1, st.tuples(st.just("status"), peers)),
    "message": (1, st.tuples(st.just("message"), rooms)),
    "resume": (3, st.tuples(st.just("resume"), peers, st.sampled_from([0, 0, 1, P_KEEP + 1]),
                            st.booleans())),
    "wait": (2, st.tuples(st.just("wait"), st.sampled_from([P_GRACE_MS // 2,
                                                            P_GRACE_MS + 1]))),
    "sweep": (2, st.tuples(st.just("sweep"))),
    "gateway_lost": (1, st.tuples(st.just("gateway_lost"), st.sampled_from(GATEWAYS))),
    "remove_peer": (1, st.tuples(st.just("remove_peer"), rooms, peers)),
    "remove_user": (1, st.tuples(st.just("remove_user"), rooms, st.sampled_from(USERS[1:]))),
    "close_room": (1, st.tuples(st.just("close_room"), rooms)),
    # Past (it ends the room now), cleared, or ahead.
    "deadline": (1, st.tuples(st.just("deadline"), rooms, st.sampled_from([-1, None, 3, 40]))),
}
actions = st.sampled_from([kind for kind, (weight, _) in ACTIONS.items()
                           for _ in range(weight)]).flatmap(lambda kind: ACTIONS[kind][1])
scripts = st.lists(actions, min_size=10, max_size=80)

# Three lives of one room: a peer away is sent more than is kept, then its host leaves;
# a star room whose deadline a join finds passed; the life that join starts.
LIFE_AGAIN = [("join", "p0", ROOMS[0], None, False, False, "", "gw-1", 0),
              ("join", "p1", ROOMS[0], None, True, False, "u-1", "gw-2", 0),
              ("close", "p1", False), ("message", ROOMS[0]), ("message", ROOMS[0]),
              ("leave", "p0"),
              ("join", "p2", ROOMS[0], Topology.STAR, False, True, "", "gw-1", 5),
              ("wait", P_GRACE_MS + 1), ("join", "p3", ROOMS[0], None, False, False, "", "gw-1", 0)]


@settings(max_examples=500, deadline=None)
@given(scripts)
@example(LIFE_AGAIN)
def test_the_bodies_read_as_each_room_s_lives(script: list[tuple[Any, ...]]) -> None:
    world = World()
    for action in script:
        world.step(action)
    world.finish()


@settings(max_examples=300, deadline=None)
@given(scripts)
@example(LIFE_AGAIN)
def test_without_webhooks_nothing_else_changes(script: list[tuple[Any, ...]]) -> None:
    world = World(twin=True)
    for action in script:
        world.step(action)
    assert world.twin is not None and world.twin.hooks.lives == {}


@settings(max_examples=300, deadline=None)
@given(scripts, st.integers(0, 50))
@example(LIFE_AGAIN, 2)
def test_a_relay_that_takes_the_shard_over_goes_on_as_the_first_would(
        script: list[tuple[Any, ...]], split: int) -> None:
    world = World()
    for i, action in enumerate(script):
        if i == split:
            world.take_over()
        world.step(action)
    world.finish()
