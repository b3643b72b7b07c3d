"""Properties of the room state machine over random sequences of events, in both topologies.

Each peer is modelled as a client would be: it builds its view of the room (the other
members it knows, with their statuses and the `user` and `info` their tokens gave, and the
host) from nothing but the frames the book
publishes to it. After every event, each member's view must equal what a fresh
`join_room` would show it, computed here from a model of the rooms that follows
docs/protocol.md independently of the book. A frame that reaches someone not allowed to see
its subject breaks a view (a client told of another client, a `peer_left` of a peer it
never saw), so the same check shows that frames go only where they may.

The app acts too (docs/protocol.md, "Admin API", "Removal", "Deadlines"): it removes peers
and users, closes rooms, sends server messages and sets deadlines, and rooms end at their
deadline; a removed client is told, closed, and in no room.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from relay.effects import (
    CloseRoom,
    DropKept,
    DropMember,
    Effect,
    OpenRoom,
    Publish,
    PutMember,
)
from relay.rooms import RoomBook
from shared.events import (
    AdminEvent,
    AdminReply,
    AnyEvent,
    EndRoom,
    Evicted,
    Join,
    JoinRefused,
    Leave,
    Member,
    RemoveAll,
    RemovePeers,
    SendToPeer,
    ServerMessage,
    SetDeadline,
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
ADMIN = "adm-gw-1"  # the channel admin replies go to
NOTE = b'{"text":"class ends in 5 minutes"}'


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
    ends_at: int = 0  # the deadline (ms), 0 for none

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
    removed: str | None = None  # the reason of the `removed` frame it was just sent
    closed: bool = False  # its socket was closed by the gateway (Evicted) this step


def shown(status: Status) -> dict[str, str]:
    return {k: v for k, v in (("name", status.name), ("user_agent", status.user_agent)) if v}


def entry_of(frame: dict[str, Any]) -> dict[str, Any]:
    """A `peers[]` entry or a `new_peer` frame as the view keeps it: all but the id."""
    return {k: v for k, v in frame.items() if k not in ("event", "peer_id")}


def author(event: AnyEvent) -> str:
    """The channel an answer to the event goes to: the sender's, or the app's admin reply's."""
    return event.reply_to if isinstance(event, AdminEvent) else event.conn


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
        self.expected_reply: tuple[int, dict[str, Any]] | None = None
        self.removing: tuple[str, set[str]] = ("", set())  # reason, who is told so
        self.messaged: set[str] = set()

    def step(self, action: tuple[Any, ...]) -> None:
        self.tick += 1  # ms: each event comes a millisecond after the one before
        event = self.event_for(action)
        if event is None:
            return
        for client in self.clients.values():
            client.removed, client.closed = None, False
        self.expected_reply, self.removing, self.messaged = None, ("", set()), set()
        out: list[Effect] = []
        self.book.apply(event, f"{self.tick}-0", out)
        expected_accept = self.model_apply(event)
        self.deliver(event, out, expected_accept)
        if self.expected_reply is not None:
            raise AssertionError(f"no admin reply to {event}")
        told = {conn for conn, client in self.clients.items() if client.closed}
        assert told == self.removing[1], (event, told, self.removing)
        self.check_views()

    # -- what a gateway would send for an action (it refuses the rest itself) --------

    def event_for(self, action: tuple[Any, ...]) -> AnyEvent | None:
        kind, conn = action[0], action[1]
        if kind in ADMIN_ACTIONS:
            return self.admin_event(action)
        client = self.clients[conn]
        if kind == "join":
            if client.room is not None:
                return None  # the gateway answers "already joined another room"
            _, _, room, topology, status, user, granted, lasts = action
            self.seq += 1
            client.room = room
            return Join(conn=conn, room=room, gateway="gw", seq=self.seq, status=status,
                        topology=topology, user=user, info=INFOS[user], host=granted,
                        ends_at=self.tick + lasts if lasts else 0)
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

    def admin_event(self, action: tuple[Any, ...]) -> AnyEvent | None:
        kind, room = action[0], action[1]
        if kind == "remove_peer":
            return RemovePeers(reply_to=ADMIN, room=room, peer=action[2])
        if kind == "remove_user":
            return RemovePeers(reply_to=ADMIN, room=room, user=action[2])
        if kind == "close":
            return RemoveAll(reply_to=ADMIN, room=room)
        if kind == "message":
            return ServerMessage(reply_to=ADMIN, room=room, data=NOTE, peer=action[2])
        if kind == "deadline":
            return SetDeadline(reply_to=ADMIN, room=room, ends_at=self.tick + action[2]
                               if action[2] is not None else 0)
        # The sweep: it sends EndRoom for a room whose deadline passed, naming it.
        model = self.model.get(room)
        if model is None or not model.ends_at or model.ends_at > self.tick:
            return None
        return EndRoom(conn="", room=room, at=model.ends_at)

    # -- docs/protocol.md, applied to the model -------------------------------------------

    def end(self, digest: str, reason: str) -> list[str]:
        """Every member removed at once; the room is gone."""
        room = self.model.pop(digest)
        self.removing = (reason, set(room.members))
        return list(room.members)

    def model_admin(self, event: AdminEvent | EndRoom) -> None:
        room = self.model.get(event.room)
        if isinstance(event, EndRoom):
            assert room is not None and room.ends_at == event.at
            self.end(event.room, "expired")
            return
        if room is None:
            self.expected_reply = (404, {"error": "room has no members"})
            return
        if isinstance(event, RemovePeers):
            chosen = ([event.peer] if event.peer in room.members else []) if event.peer else [
                conn for conn, member in room.members.items() if member.user == event.user]
            self.removing = ("removed", set(chosen))
            for conn in chosen:
                del room.members[conn]
            if not room.members:
                del self.model[event.room]
            self.expected_reply = (200, {"removed": chosen})
        elif isinstance(event, RemoveAll):
            self.expected_reply = (200, {"removed": self.end(event.room, "closed")})
        elif isinstance(event, ServerMessage):
            chosen = ([event.peer] if event.peer in room.members else []) if event.peer else (
                list(room.members))
            self.messaged = set(chosen)
            self.expected_reply = (200, {"delivered": chosen})
        else:
            assert isinstance(event, SetDeadline)
            if event.ends_at and event.ends_at <= self.tick:
                self.end(event.room, "expired")
            else:
                room.ends_at = event.ends_at
            self.expected_reply = (200, {"ends_at": event.ends_at / 1000 if event.ends_at
                                         else None})

    def model_apply(self, event: AnyEvent) -> bool:
        """Change the model as the spec says; whether a join or send is accepted."""
        if isinstance(event, AdminEvent | EndRoom):
            self.model_admin(event)
            return True
        room = self.model.get(event.room)
        if isinstance(event, Join):
            joiner = ModelMember(event.status, event.user, event.host)
            if room is not None and room.ends_at and room.ends_at <= self.tick:
                self.end(event.room, "expired")  # the join comes before the sweep
                room = None
            if room is None:
                self.model[event.room] = ModelRoom(event.topology or Topology.MESH,
                                                   {event.conn: joiner}, event.ends_at)
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
        removed = self.removing[1]
        for effect in out:
            if isinstance(effect, Publish):
                if effect.channel == ADMIN:
                    self.admin_reply(effect.payload)
                    continue
                # Only members hear of the room; the event's author may hear an answer,
                # and a removed member that it was removed.
                assert effect.channel in members | removed or effect.channel == author(event), (
                    effect, event)
                self.receive(effect.channel, effect.payload, event, accepted)
            elif isinstance(effect, PutMember):
                self.stored.setdefault(effect.room, {})[effect.conn] = effect.member
            elif isinstance(effect, DropMember):
                del self.stored[effect.room][effect.conn]
            elif isinstance(effect, CloseRoom):
                assert self.stored.pop(effect.room) == {}
            elif isinstance(effect, DropKept):
                raise AssertionError("no peer of this test is resumable")
            else:
                assert isinstance(effect, OpenRoom) and effect.room not in self.stored
        if isinstance(event, SendToPeer) and accepted:
            assert [e for e in out if isinstance(e, Publish)][0].channel == event.peer

    def admin_reply(self, payload: bytes) -> None:
        reply = control_decoder.decode(payload)
        assert isinstance(reply, AdminReply)
        assert (reply.status, json.loads(reply.body)) == self.expected_reply
        self.expected_reply = None

    def receive(self, conn: str, payload: bytes, event: AnyEvent, accepted: bool) -> None:
        client = self.clients[conn]
        if client.closed:
            return  # its gateway closed the socket: nothing more reaches the client
        if not payload.startswith(b"{"):
            control = control_decoder.decode(payload)
            if isinstance(control, Evicted):
                # Its gateway closes the socket (4003), after the `removed` frame.
                assert client.removed == self.removing[0] and conn in self.removing[1]
                assert (control.conn, control.room) == (conn, client.room)
                client.closed = True
                client.room, client.view, client.host = None, None, None
                return
            assert isinstance(control, JoinRefused)
            assert isinstance(event, Join) and not accepted and conn == event.conn
            client.room = None
            return
        frame = json.loads(payload)
        kind = frame["event"]
        if kind == "removed":
            assert client.removed is None and conn in self.removing[1]
            client.removed = frame["reason"]
            return
        if kind == "server_message":
            assert conn in self.messaged and frame["data"] == json.loads(NOTE)
            self.messaged.discard(conn)  # exactly once
            return
        if kind == "error":
            assert conn == author(event) and not accepted, (frame, event)
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
        assert {d: (r.topology, list(r.members), r.host, r.ends_at)
                for d, r in book.rooms.items()} == {
            d: (r.topology, list(r.members), r.host, r.ends_at) for d, r in self.model.items()}


topologies = st.sampled_from([None, Topology.MESH, Topology.STAR])
peers = st.sampled_from(PEERS)
# Mostly one room, and joins as often as everything else together: rooms fill up, so
# that hosts leave full rooms and clients of star rooms try each other.
# A join that starts a room may give it a deadline some events ahead.
joins = st.tuples(st.just("join"), peers, st.sampled_from([ROOMS[0]] * 3 + ROOMS[1:]),
                  topologies, st.sampled_from(STATUSES), st.sampled_from(USERS),
                  st.booleans(), st.sampled_from([0, 0, 0, 4, 12]))
rooms = st.sampled_from(ROOMS)
ADMIN_ACTIONS = frozenset({"remove_peer", "remove_user", "close", "message", "deadline",
                           "sweep"})
admin_actions = st.one_of(
    st.tuples(st.just("remove_peer"), rooms, peers),
    st.tuples(st.just("remove_user"), rooms, st.sampled_from(USERS[1:])),
    st.tuples(st.just("close"), rooms),
    st.tuples(st.just("message"), rooms, st.sampled_from(["", *PEERS])),
    # Past (it ends the room now), cleared, or ahead.
    st.tuples(st.just("deadline"), rooms, st.sampled_from([-1, None, 3, 20])),
    st.tuples(st.just("sweep"), rooms),
)
actions = st.one_of(
    joins, joins, joins,
    st.tuples(st.just("leave"), peers),
    st.tuples(st.just("status"), peers, st.sampled_from(STATUSES)),
    st.tuples(st.just("send"), peers, peers),
    admin_actions,
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(actions, max_size=80))
def test_every_view_equals_a_fresh_join_and_frames_reach_only_those_allowed(
        script: list[tuple[Any, ...]]) -> None:
    world = World()
    for action in script:
        world.step(action)
        world.check_reload()
