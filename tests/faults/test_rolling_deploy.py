"""Rolling deploy: processes of two adjacent versions share the Redis streams.

During a rollout, gateways and relays of version N and N+1 run side by side, so each
version must read what the other writes (style.md: msgspec structs only gain fields with
defaults, unknown fields are tolerated). The "next" and "previous" versions are modelled
here as copies of today's structs with a field added or taken away, under the same tags.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest
import redis

from harness.processes import Cluster, eventually
from shared import events
from shared.keys import GROUP, room_digest, shard_of, shard_stream
from tests.faults.support import private_cluster, record, tracebacks
from tests.peers import Peer

# --- the next version: every struct gained a field with a default -------------------------

class NextStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str | None = None
    user_agent: str | None = None
    avatar: str | None = None  # new


class NextEvent(msgspec.Struct, frozen=True, tag_field="t", kw_only=True):
    # A default on the base comes before the subclasses' required fields: msgspec wants
    # kw_only for that. The wire format (a map by field name) is the same.
    conn: str
    room: str
    trace_id: str = ""  # new, on every event


class NextJoin(NextEvent, tag="join", frozen=True):
    gateway: str
    seq: int
    status: NextStatus = NextStatus()
    topology: str | None = None
    token_digest: str = ""
    socket: str = ""
    user: str = ""
    info: bytes = b""
    host: bool = False
    ends_at: int = 0
    name: str = ""
    resumable: bool = False  # new


class NextLeave(NextEvent, tag="leave", frozen=True):
    socket: str = ""
    reason: str = "left"  # with reasons today's version does not know
    by: str = ""  # new


class NextUpdateStatus(NextEvent, tag="status", frozen=True):
    status: NextStatus
    socket: str = ""


class NextSendToPeer(NextEvent, tag="send", frozen=True):
    peer: str
    data: bytes
    socket: str = ""
    priority: int = 0  # new


class NextKick(NextEvent, tag="kick", frozen=True):
    """An event type the next version adds: today's relay must skip it, not stop."""

    by: str


class NextMember(msgspec.Struct, frozen=True):
    status: NextStatus
    gateway: str
    joined: str
    topology: str = "mesh"
    token: str = ""
    socket: str = ""
    detached_until: int = 0
    detached_seq: int = 0
    user: str = ""
    info: bytes = b""
    host: bool = False
    ends_at: int = 0
    room_name: str = ""
    spent: str = ""
    resumable: bool = False  # new


class NextControl(msgspec.Struct, frozen=True, tag_field="t"):
    pass


class NextJoinRefused(NextControl, tag="join_refused", frozen=True):
    seq: int
    reason: str = "full"  # new


NextAnyEvent = NextJoin | NextLeave | NextUpdateStatus | NextSendToPeer | NextKick
next_event_decoder = msgspec.msgpack.Decoder(NextAnyEvent)


# --- the previous version: optional fields not there yet ----------------------------------

class PreviousStatus(msgspec.Struct, frozen=True, omit_defaults=True):
    name: str | None = None  # no user_agent yet


class PreviousEvent(msgspec.Struct, frozen=True, tag_field="t"):
    conn: str
    room: str


class PreviousJoin(PreviousEvent, tag="join", frozen=True):
    gateway: str
    seq: int  # no status yet


class PreviousUpdateStatus(PreviousEvent, tag="status", frozen=True):
    status: PreviousStatus


ROOM = room_digest("rolling")
CONN, PEER = str(uuid.uuid4()), str(uuid.uuid4())
NEXT_STATUS = NextStatus(name="Ada", user_agent="firefox", avatar="a.png")
STATUS = events.Status(name="Ada", user_agent="firefox")

NEXT_TO_TODAY: list[tuple[Any, Any]] = [
    (NextJoin(conn=CONN, room=ROOM, gateway="gw-2", seq=3, status=NEXT_STATUS,
              resumable=True, trace_id="t1"),
     events.Join(conn=CONN, room=ROOM, gateway="gw-2", seq=3, status=STATUS)),
    (NextLeave(conn=CONN, room=ROOM, reason="kicked", by="admin"),
     events.Leave(conn=CONN, room=ROOM, reason="kicked")),
    (NextUpdateStatus(conn=CONN, room=ROOM, status=NEXT_STATUS),
     events.UpdateStatus(conn=CONN, room=ROOM, status=STATUS)),
    (NextSendToPeer(conn=CONN, room=ROOM, peer=PEER, data=b'{"event":"offer"}', priority=2),
     events.SendToPeer(conn=CONN, room=ROOM, peer=PEER, data=b'{"event":"offer"}')),
]


@pytest.mark.parametrize(("newer", "today"), NEXT_TO_TODAY,
                         ids=[type(t).__name__ for _, t in NEXT_TO_TODAY])
def test_next_version_events_decode_today(newer: Any, today: Any) -> None:
    assert events.event_decoder.decode(msgspec.msgpack.encode(newer)) == today


@pytest.mark.parametrize(("newer", "today"), NEXT_TO_TODAY,
                         ids=[type(t).__name__ for _, t in NEXT_TO_TODAY])
def test_todays_events_decode_in_the_next_version(newer: Any, today: Any) -> None:
    """The other half of a rollout: a new relay reading an old gateway's events."""
    decoded = next_event_decoder.decode(events.event_encoder.encode(today))
    assert type(decoded) is type(newer)
    # Every field today's struct has comes through; the new ones take their defaults.
    for field in today.__struct_fields__:
        value = getattr(decoded, field)
        if isinstance(value, NextStatus):
            assert (value.name, value.user_agent, value.avatar) == (
                getattr(today, field).name, getattr(today, field).user_agent, None)
        else:
            assert value == getattr(today, field)
    new_fields = [f for f in msgspec.structs.fields(type(newer))
                  if f.name not in today.__struct_fields__]
    assert new_fields
    assert all(getattr(decoded, f.name) == f.default for f in new_fields)


def test_previous_version_events_decode_today() -> None:
    old_join = msgspec.msgpack.encode(PreviousJoin(conn=CONN, room=ROOM, gateway="gw-0", seq=1))
    assert events.event_decoder.decode(old_join) == events.Join(
        conn=CONN, room=ROOM, gateway="gw-0", seq=1, status=events.EMPTY_STATUS)
    old_status = msgspec.msgpack.encode(
        PreviousUpdateStatus(conn=CONN, room=ROOM, status=PreviousStatus(name="Bo")))
    assert events.event_decoder.decode(old_status) == events.UpdateStatus(
        conn=CONN, room=ROOM, status=events.Status(name="Bo"))


def test_member_records_and_controls_cross_versions() -> None:
    """Relays of both versions read each other's member records; gateways of both read
    the relays' control messages."""
    member = NextMember(status=NEXT_STATUS, gateway="gw-2", joined="1-0", resumable=True)
    assert events.member_decoder.decode(msgspec.msgpack.encode(member)) == events.Member(
        status=STATUS, gateway="gw-2", joined="1-0")
    refused = NextJoinRefused(seq=4, reason="banned")
    assert events.control_decoder.decode(msgspec.msgpack.encode(refused)) == \
        events.JoinRefused(seq=4)


def test_a_new_event_type_is_refused_by_the_decoder_not_misread() -> None:
    """What the relay is given to skip (below, end to end) when a newer gateway sends a
    kind of event it does not know: a decode error, never another event."""
    kick = msgspec.msgpack.encode(NextKick(conn=CONN, room=ROOM, by=PEER))
    with pytest.raises(msgspec.ValidationError):
        events.event_decoder.decode(kick)


# --- end to end: a next-version gateway's events in a live shard stream --------------------

def _gateway_id(cluster: Cluster) -> str:
    """The id the (only) gateway heartbeats under: the relay keeps its peers while it lives."""
    keys = cluster.redis.cli("--scan", "--pattern", "sig:gw:*").split()
    assert len(keys) == 1, keys
    return keys[0].removeprefix("sig:gw:")


async def test_relay_applies_next_version_events_and_skips_undecodable_ones() -> None:
    with private_cluster(gateways=1, relays=1) as cluster, \
            redis.Redis.from_url(cluster.redis.url) as client:
        room = f"roll-{uuid.uuid4().hex[:12]}"
        digest = room_digest(room)
        stream = shard_stream(shard_of(digest, 64))
        old = await Peer.connect(cluster.url(0))  # stays on today's protocol path
        await old.join(room)
        # A socket whose peer id we learn by joining elsewhere; its next joins and sends
        # come from "the next version's gateway": raw XADDs to the room's shard stream.
        newer = await Peer.connect(cluster.url(0))
        # (In a room of the same shard: a socket hears the shard channels of the rooms
        # it joined.)
        await newer.join(next(lobby for lobby in (f"{room}-lobby{n}" for n in range(10_000))
                              if shard_of(room_digest(lobby), 64) == shard_of(digest, 64)))
        await newer.send(event="leave_room")
        gateway = _gateway_id(cluster)

        def xadd(payload: bytes, field: bytes = b"e") -> None:
            client.xadd(stream, {field: payload})

        xadd(msgspec.msgpack.encode(NextJoin(
            conn=newer.id or "", room=digest, gateway=gateway, seq=9,
            status=NextStatus(name="Next", user_agent="chrome", avatar="n.png"),
            resumable=True, trace_id="abc")))
        joined = await newer.expect("joined_room")
        assert joined["own_id"] == newer.id
        assert [p["peer_id"] for p in joined["peers"]] == [old.id]
        assert await old.expect("new_peer") == {
            "event": "new_peer", "peer_id": newer.id,
            "status": {"name": "Next", "user_agent": "chrome"}}

        # Undecodable entries, and an event type today's relay does not know, come in
        # between; the relay logs and skips each and applies what follows.
        undecodable = [
            (b"e", b"\xc1 not msgpack at all"),
            (b"e", msgspec.msgpack.encode({"t": "join", "conn": 5})),  # wrong types
            (b"e", msgspec.msgpack.encode(NextKick(conn=newer.id or "", room=digest,
                                                   by=old.id or ""))),
            (b"e", b""),
            (b"x", msgspec.msgpack.encode(NextLeave(conn=old.id or "", room=digest))),
        ]
        for field, payload in undecodable:
            xadd(payload, field)
        for seq in range(3):
            xadd(msgspec.msgpack.encode(NextSendToPeer(
                conn=newer.id or "", room=digest, peer=old.id or "",
                data=b'{"event":"message","seq":%d}' % seq, priority=1, trace_id="x")))
        for seq in range(3):
            assert await old.expect("message") == {"event": "message", "seq": seq,
                                                   "sender_id": newer.id}
        # Today's gateway sends to the peer that a next-version event put in the room.
        await old.send(event="send_to_peer", peer_id=newer.id,
                       data={"event": "answer", "sdp": "v=0"})
        assert await newer.expect("answer") == {"event": "answer", "sdp": "v=0",
                                                "sender_id": old.id}
        xadd(msgspec.msgpack.encode(NextLeave(conn=newer.id or "", room=digest,
                                              reason="moved")))
        assert await old.expect("peer_left") == {"event": "peer_left", "sender_id": newer.id}
        # The Kick and the field-less Leave did nothing: what they made the relay send
        # would come before old's own message, on the stream after them.
        await old.assert_nothing_pending()

        relay = cluster.relays[0]
        assert relay.alive()
        skipped = relay.log().count("skipping undecodable event")
        assert skipped == len(undecodable), relay.log()
        # Nothing is left pending: skipped entries were acknowledged with the rest.
        await eventually(lambda: client.xpending(stream, GROUP)["pending"] == 0, 5,
                         "every entry to be acknowledged")
        record("rolling_deploy.e2e", next_version_events=5, undecodable_skipped=skipped)
        await old.close()
        await newer.close()
        assert not tracebacks(cluster)
