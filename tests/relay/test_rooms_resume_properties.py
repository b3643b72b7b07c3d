"""A property of resume over random sequences of events (docs/protocol.md, "Resume"): whatever
peers drop, come back (having lost frames in flight or not), leave or run out of grace, a
resumable peer's socket receives every frame numbered for it exactly once and in order,
and an attached peer has received all of them.

Redis is modelled as it behaves for the effects: a publish reaches only a socket
subscribed to that channel now, kept frames are a list trimmed to the bound, a replay
sends the last n of them to the new socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from relay.effects import DropKept, Effect, Keep, Publish, Replay
from relay.rooms import RoomBook
from shared.events import (
    AnyEvent,
    Detach,
    Join,
    Leave,
    Resume,
    SendToPeer,
    Status,
    Topology,
    UpdateStatus,
    control_decoder,
)

ROOM = "r" * 128
PEERS = [f"p{i}" for i in range(3)]
KEEP = 3
GRACE_MS = 1000


@dataclass
class Client:
    socket: str | None = None  # the channel of its socket now; None while it has none
    token: str = ""  # the digest the relay knows (the test plays the gateway)
    in_room: bool = False
    got: list[int] = field(default_factory=list)  # frame_seqs, as they arrived
    sockets: int = 0


class World:
    def __init__(self, topology: Topology) -> None:
        self.book = RoomBook(capacity=10, star_capacity=10, keep_frames=KEEP,
                             grace_ms=GRACE_MS)
        self.topology = topology
        self.clients = {conn: Client() for conn in PEERS}
        self.kept: dict[str, list[tuple[int, bytes]]] = {}
        self.now = 1000
        self.seq = 0

    def apply(self, event: AnyEvent) -> None:
        self.now += 1
        out: list[Effect] = []
        self.book.apply(event, f"{self.now}-0", out)
        for effect in out:
            self.effect(effect)

    def effect(self, effect: Effect) -> None:
        if isinstance(effect, Publish):
            self.publish(effect.channel, effect.payload)
        elif isinstance(effect, Keep):
            kept = self.kept.setdefault(effect.conn, [])
            kept.append((effect.seq, effect.payload))
            del kept[:-KEEP]
            if effect.channel:
                self.publish(effect.channel, effect.payload)
        elif isinstance(effect, Replay):
            frames = self.kept.get(effect.conn, [])
            assert len(frames) >= effect.frames, "the relay counted frames Redis lost"
            for _, payload in frames[len(frames) - effect.frames:]:
                self.publish(effect.channel, payload)
        elif isinstance(effect, DropKept):
            self.kept.pop(effect.conn, None)

    def publish(self, channel: str, payload: bytes) -> None:
        for conn, client in self.clients.items():
            if client.socket == channel:
                self.receive(conn, client, payload)

    def receive(self, conn: str, client: Client, payload: bytes) -> None:
        if not payload.startswith(b"{"):
            control = control_decoder.decode(payload)
            name = type(control).__name__
            if name == "TakenOver":
                client.socket = None
            elif name == "JoinRefused":
                client.in_room = False
            return
        frame = json.loads(payload)
        if frame["event"] == "joined_room":
            client.in_room = True
            if not frame.get("resumed"):
                client.got = []
        if "frame_seq" in frame:
            expected = (client.got[-1] if client.got else 0) + 1
            assert frame["frame_seq"] == expected, (conn, client.got, frame)
            client.got.append(frame["frame_seq"])

    # --- what clients do ---------------------------------------------------------

    def step(self, action: tuple[Any, ...]) -> None:
        kind, conn = action[0], action[1]
        client = self.clients[conn]
        member = conn in self.book.room_of
        if kind == "join" and not member:
            if client.socket is None:
                client.sockets += 1
                client.socket = f"{conn}#{client.sockets}"
            self.seq += 1
            client.token = f"t{self.seq}" if action[2] else ""
            self.apply(Join(conn=conn, room=ROOM, gateway="gw", seq=self.seq,
                            topology=self.topology, token_digest=client.token,
                            socket=client.socket))
        elif kind == "send" and member and client.socket is not None:
            self.apply(SendToPeer(conn=conn, room=ROOM, peer=action[2],
                                  data=b'{"event":"message"}'))
        elif kind == "status" and member and client.socket is not None:
            self.apply(UpdateStatus(conn=conn, room=ROOM, status=Status(name="n")))
        elif kind == "drop" and member and client.socket is not None:
            socket, client.socket = client.socket, None
            if client.token:
                self.apply(Detach(conn=conn, room=ROOM, socket=socket))
            else:
                client.in_room = False
                self.apply(Leave(conn=conn, room=ROOM))
        elif kind == "resume" and client.token:
            lost = min(action[2], len(client.got))  # frames that never arrived
            del client.got[len(client.got) - lost:]
            self.seq += 1
            client.sockets += 1
            client.socket = f"{conn}#{client.sockets}"  # the old one is given up
            client.in_room = False  # until its joined_room says otherwise
            token, client.token = client.token, f"t{self.seq}"
            self.apply(Resume(conn=conn, room="", gateway="gw", seq=self.seq,
                              socket=client.socket, token_digest=token,
                              new_token_digest=client.token,
                              last_frame_seq=client.got[-1] if client.got else 0))
            if not client.in_room:
                client.token = ""  # refused: no peer to resume any more
        elif kind == "leave" and member and client.socket is not None:
            self.apply(Leave(conn=conn, room=ROOM, socket=client.socket))
            client.token = ""
            client.in_room = False
        elif kind == "wait":
            self.now += GRACE_MS + 1
            for expire in self.book.expired(self.now):
                self.apply(expire)

    def check(self) -> None:
        for conn, client in self.clients.items():
            sent = self.book.frame_seqs.get(conn)
            member = self.book.rooms.get(ROOM)
            attached = (member is not None and conn in member.members
                        and not member.members[conn].detached_until
                        and client.socket is not None)
            if sent is not None and attached and client.in_room:
                # Attached and resumable: it has had every frame numbered for it.
                assert client.got == list(range(1, sent + 1)), (conn, client.got, sent)


peers = st.sampled_from(PEERS)
actions = st.one_of(
    st.tuples(st.just("join"), peers, st.booleans()),
    st.tuples(st.just("join"), peers, st.just(True)),
    st.tuples(st.just("send"), peers, peers),
    st.tuples(st.just("send"), peers, peers),
    st.tuples(st.just("send"), peers, peers),
    st.tuples(st.just("status"), peers),
    st.tuples(st.just("drop"), peers),
    st.tuples(st.just("resume"), peers, st.integers(0, 5)),
    st.tuples(st.just("leave"), peers),
    st.tuples(st.just("wait"), peers),
)


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from([Topology.MESH, Topology.STAR]), st.lists(actions, max_size=60))
# The edge of the bound: it lacks one frame more than is kept, so it cannot resume.
@example(Topology.MESH, [("join", "p0", True), ("join", "p1", False)]
         + [("send", "p1", "p0")] * KEEP + [("resume", "p0", KEEP + 1)])
# Away while exactly as many frames as are kept arrive, and one lost in flight before.
@example(Topology.STAR, [("join", "p0", False), ("join", "p1", True), ("send", "p0", "p1"),
                         ("drop", "p1")] + [("send", "p0", "p1")] * KEEP
         + [("resume", "p1", 1)])
def test_a_resumable_peer_gets_each_frame_once_and_in_order(
        topology: Topology, script: list[tuple[Any, ...]]) -> None:
    world = World(topology)
    for action in script:
        world.step(action)
        world.check()
