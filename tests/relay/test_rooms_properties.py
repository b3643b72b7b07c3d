"""Properties of the room state machine over random sequences of events, in both topologies.

Each peer is modelled as a client would be: it builds its view of the room (the other
members it knows, with their statuses and the `user` and `info` their tokens gave, and the
host) from nothing but the frames the book
publishes to it. After every event, each member's view must equal what a fresh
`join_room` would show it, computed here from a model of the rooms that follows
docs/protocol.md independently of the book. A frame that reaches someone not allowed to see
its subject breaks a view (a client told of another client, a `peer_left` of a peer it
never saw), so the same check shows that frames go only where they may.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.effects import CloseRoom, DropMember, Effect, OpenRoom, Publish, PutMember
from relay.rooms import RoomBook
from shared.events import (
    AnyEvent,
    Join,
    JoinRefused,
    Leave,
    Member,
    SendToPeer,
    Status,
    Topology,
    UpdateStatus,
    control_decoder,
)

PEERS = [f"p{i}" for i in range(7)]
ROOMS = ["r-one", "r-two"]
CAPACITY = {Topology.MESH: 3, Topology.STAR: 5}
STATUSES = [Status(), Status(name="Ann"), Status(user_agent="firefox"),
            Status(name="Bo", user_agent="chrome")]
# Identities from join tokens: none, or a user (shared by several peers) with its info.
USERS = ["", "u-1", "u-2"]
INFOS = {"": b"", "u-1": b'{"name":"One"}', "u-2": b'{"name":"Two","role":"teacher"}'}


@dataclass
class ModelMember:
    status: Status
    user: str = ""
    host: bool = False  # the host grant

    def shown(self) -> dict[str, Any]:
        """How others are shown this member: what a `peers[]` entry holds but the id."""
        out: dict[str, Any] = {"status": shown(self.status)}
        if self.user:
            out.update(user=self.user, info=json.loads(INFOS[self.user]))
        return out


@dataclass
class ModelRoom:
    """docs/protocol.md's room: members in join order, a topology. The host is the first
    member holding the grant, or the first member when none does."""

    topology: Topology
    members: dict[str, ModelMember] = field(default_factory=dict)

    @property
    def host(self) -> str:
        granted = [conn for conn, member in self.members.items() if member.host]
        return (granted or list(self.members))[0]

    def fresh_view(self, viewer: str) -> dict[str, dict[str, Any]]:
        """What `joined_room.peers` would list for `viewer` now."""
        if self.topology is Topology.STAR and viewer != self.host:
            return {self.host: self.members[self.host].shown()}
        return {conn: member.shown() for conn, member in self.members.items()
                if conn != viewer}


@dataclass
class Client:
    """What one peer knows, from the frames it received."""

    room: str | None = None  # where its gateway believes it is
    view: dict[str, dict[str, Any]] | None = None
    host: str | None = None


def shown(status: Status) -> dict[str, str]:
    return {k: v for k, v in (("name", status.name), ("user_agent", status.user_agent)) if v}


def entry_of(frame: dict[str, Any]) -> dict[str, Any]:
    """A `peers[]` entry or a `new_peer` frame as the view keeps it: all but the id."""
    return {k: v for k, v in frame.items() if k not in ("event", "peer_id")}


def merged(old: Status, update: Status) -> Status:
    return Status(name=update.name or old.name, user_agent=update.user_agent or old.user_agent)


class World:
    """The book under test, the model beside it, and the clients the book talks to."""

    def __init__(self) -> None:
        self.book = RoomBook(CAPACITY[Topology.MESH], CAPACITY[Topology.STAR])
        self.model: dict[str, ModelRoom] = {}
        self.clients = {conn: Client() for conn in PEERS}
        self.stored: dict[str, dict[str, Member]] = {}  # what Redis would hold
        self.seq = 0
        self.tick = 0

    def step(self, action: tuple[Any, ...]) -> None:
        event = self.event_for(action)
        if event is None:
            return
        self.tick += 1
        out: list[Effect] = []
        self.book.apply(event, f"{self.tick}-0", out)
        expected_accept = self.model_apply(event)
        self.deliver(event, out, expected_accept)
        self.check_views()

    # -- what a gateway would send for an action (it refuses the rest itself) --------

    def event_for(self, action: tuple[Any, ...]) -> AnyEvent | None:
        kind, conn = action[0], action[1]
        client = self.clients[conn]
        if kind == "join":
            if client.room is not None:
                return None  # the gateway answers "already joined another room"
            _, _, room, topology, status, user, granted = action
            self.seq += 1
            client.room = room
            return Join(conn=conn, room=room, gateway="gw", seq=self.seq, status=status,
                        topology=topology, user=user, info=INFOS[user], host=granted)
        if client.room is None:
            return None  # "currently not in any room", answered by the gateway
        if kind == "leave":
            room, client.room = client.room, None
            client.view, client.host = None, None
            return Leave(conn=conn, room=room)
        if kind == "status":
            return UpdateStatus(conn=conn, room=client.room, status=action[2])
        return SendToPeer(conn=conn, room=client.room, peer=action[2],
                          data=b'{"event":"message","n":1}')

    # -- docs/protocol.md, applied to the model -------------------------------------------

    def model_apply(self, event: AnyEvent) -> bool:
        """Change the model as the spec says; whether a join or send is accepted."""
        room = self.model.get(event.room)
        if isinstance(event, Join):
            joiner = ModelMember(event.status, event.user, event.host)
            if room is None:
                self.model[event.room] = ModelRoom(event.topology or Topology.MESH,
                                                   {event.conn: joiner})
                return True
            if event.topology is not None and event.topology != room.topology:
                return False
            if len(room.members) >= CAPACITY[room.topology]:
                return False
            room.members[event.conn] = joiner
            return True
        assert room is not None and event.conn in room.members
        if isinstance(event, Leave):
            del room.members[event.conn]
            if not room.members:
                del self.model[event.room]
            return True
        if isinstance(event, UpdateStatus):
            member = room.members[event.conn]
            member.status = merged(member.status, event.status)
            return True
        assert isinstance(event, SendToPeer)
        target_seen = event.peer in room.fresh_view(event.conn)
        return event.peer in room.members and (event.peer == event.conn or target_seen)

    # -- the book's effects, as the clients and Redis receive them --------------------

    def deliver(self, event: AnyEvent, out: list[Effect], accepted: bool) -> None:
        room = self.model.get(event.room)
        members = set() if room is None else set(room.members)
        for effect in out:
            if isinstance(effect, Publish):
                # Only members hear of the room; the event's author may hear an answer.
                assert effect.channel in members or effect.channel == event.conn, (effect, event)
                self.receive(effect.channel, effect.payload, event, accepted)
            elif isinstance(effect, PutMember):
                self.stored.setdefault(effect.room, {})[effect.conn] = effect.member
            elif isinstance(effect, DropMember):
                del self.stored[effect.room][effect.conn]
            elif isinstance(effect, CloseRoom):
                assert self.stored.pop(effect.room) == {}
            else:
                assert isinstance(effect, OpenRoom) and effect.room not in self.stored
        if isinstance(event, SendToPeer) and accepted:
            assert [e for e in out if isinstance(e, Publish)][0].channel == event.peer

    def receive(self, conn: str, payload: bytes, event: AnyEvent, accepted: bool) -> None:
        client = self.clients[conn]
        if not payload.startswith(b"{"):
            assert isinstance(control_decoder.decode(payload), JoinRefused)
            assert isinstance(event, Join) and not accepted and conn == event.conn
            client.room = None
            return
        frame = json.loads(payload)
        kind = frame["event"]
        if kind == "error":
            assert conn == event.conn and not accepted, (frame, event)
            return
        if kind == "joined_room":
            assert isinstance(event, Join) and accepted and conn == event.conn
            client.view = {p["peer_id"]: entry_of(p) for p in frame["peers"]}
            client.host = frame["host_id"]
            assert frame["topology"] == self.model[event.room].topology
            assert frame.get("user", "") == event.user
            assert frame.get("info") == (json.loads(event.info) if event.info else None)
            return
        view = client.view
        assert view is not None, f"{conn} got {frame} outside a room"
        if kind == "new_peer":
            assert frame["peer_id"] not in view
            view[frame["peer_id"]] = entry_of(frame)
        elif kind == "peer_left":
            del view[frame["sender_id"]]
        elif kind == "host_changed":
            client.view = {p["peer_id"]: entry_of(p) for p in frame["peers"]}
            client.host = frame["host_id"]
        elif kind == "peer_updated_status":
            sender = frame["sender_id"]
            if sender != conn:
                assert sender in view, f"{conn} told of {sender}, whom it does not see"
                view[sender]["status"] = frame["status"]
        else:
            assert kind == "message" and accepted
            assert frame["sender_id"] in view or frame["sender_id"] == conn

    def check_views(self) -> None:
        for digest, room in self.model.items():
            for conn in room.members:
                client = self.clients[conn]
                assert client.view == room.fresh_view(conn), (conn, digest)
                assert client.host == room.host, (conn, digest)
        for conn, client in self.clients.items():
            if client.room is None or client.room not in self.model or (
                    conn not in self.model[client.room].members):
                assert client.room is None, f"{conn} thinks it is in a room it is not in"

    def check_reload(self) -> None:
        """A relay that takes the shard over reads the same rooms back (rule 3)."""
        book = RoomBook(CAPACITY[Topology.MESH], CAPACITY[Topology.STAR])
        for digest, members in self.stored.items():
            book.load(digest, dict(members), {})
        assert {d: (r.topology, list(r.members), r.host) for d, r in book.rooms.items()} == {
            d: (r.topology, list(r.members), r.host) for d, r in self.model.items()}


topologies = st.sampled_from([None, Topology.MESH, Topology.STAR])
peers = st.sampled_from(PEERS)
# Mostly one room, and joins as often as everything else together: rooms fill up, so
# that hosts leave full rooms and clients of star rooms try each other.
joins = st.tuples(st.just("join"), peers, st.sampled_from([ROOMS[0]] * 3 + ROOMS[1:]),
                  topologies, st.sampled_from(STATUSES), st.sampled_from(USERS),
                  st.booleans())
actions = st.one_of(
    joins, joins, joins,
    st.tuples(st.just("leave"), peers),
    st.tuples(st.just("status"), peers, st.sampled_from(STATUSES)),
    st.tuples(st.just("send"), peers, peers),
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(actions, max_size=80))
def test_every_view_equals_a_fresh_join_and_frames_reach_only_those_allowed(
        script: list[tuple[Any, ...]]) -> None:
    world = World()
    for action in script:
        world.step(action)
        world.check_reload()
