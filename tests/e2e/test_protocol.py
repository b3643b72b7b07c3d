"""The palava protocol's core (docs/protocol.md, everything above "Extensions" but the Limits
table), end to end: real gateways and relays on a private Redis, real WebSocket clients.

The `peers` fixture alternates between the two gateways (0, 2 on one; 1, 3 on the other),
so most exchanges below cross gateways. The fixture cluster has room capacity 3.

Nothing here sleeps to synchronise: each step waits for the frame it expects (with a
timeout). "Nothing else arrived" is shown by a later frame that must be the next one on
that socket and travels the same path as what it rules out (`Peer.assert_alive` for the
gateway's own answers; `assert_room_intact`, or a `joined_room`, for a relay's), never by
waiting a while: a late frame would outlast any wait.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from harness.processes import Cluster, eventually
from harness.rawsocket import TEXT, RawSocket, encode_frame
from shared import keys
from tests.e2e import both_redis
from tests.e2e.both_redis import command_on, keys_of
from tests.peers import TIMEOUT, Peer

# Every test here on a single Redis and on a Redis Cluster.
cluster = both_redis.cluster

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
SHARDS = 64  # the fixture cluster keeps the default shard count

ANN = {"name": "Ann", "user_agent": "chrome"}
BOB = {"name": "Bob", "user_agent": "firefox"}




# --- helpers -------------------------------------------------------------------------


def peer_id(peer: Peer) -> str:
    """The id a peer was given in `joined_room`."""
    assert peer.id is not None, "the peer has not joined a room yet"
    return peer.id


async def expect_error(peer: Peer, text: str, received: str | None) -> dict[str, Any]:
    """The next frame is an error with `text` in both fields and `received_msg` as given.

    Unlike `Peer.expect_error`, `received=None` asserts that `received_msg` is absent
    (the event name is not known), rather than skipping the check."""
    frame = await peer.expect("error")
    assert frame["message"] == text, frame
    assert frame["description"] == text, frame
    assert frame.get("received_msg") == received, frame
    return frame


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate keys in {names}"
    return dict(pairs)


async def recv_strict(peer: Peer, timeout: float = 5.0) -> dict[str, Any]:
    """The next frame, parsed as JSON that must not repeat a key (a second `sender_id`
    would hide behind json.loads keeping the last one)."""
    frame = await asyncio.wait_for(peer.ws.recv(), timeout)
    assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
    decoded = json.loads(frame, object_pairs_hook=_no_duplicates)
    assert isinstance(decoded, dict)
    return decoded


async def assert_room_intact(members: list[tuple[Peer, dict[str, Any]]]) -> None:
    """The room holds exactly these members with these statuses, and no member had any
    other frame pending: each member in turn sends an empty `update_status`, and every
    member's next frame is that member's `peer_updated_status` with its unchanged status."""
    for sender, status in members:
        await sender.send(event="update_status", status={})
        expected = {"event": "peer_updated_status", "status": status, "sender_id": sender.id}
        for member, _ in members:
            assert await member.recv() == expected, f"at member {member.id}"


async def join_pair(peers: list[Peer], room: str) -> tuple[Peer, Peer]:
    """peers[0] (gateway 0) joins with ANN, then peers[1] (gateway 1) with BOB."""
    a, b = peers[0], peers[1]
    await a.join(room, ANN)
    await b.join(room, BOB)
    assert await a.expect("new_peer") == {"event": "new_peer", "peer_id": b.id, "status": BOB}
    return a, b


def room_on_the_same_shard(room: str) -> str:
    """Another room of `room`'s shard: a socket hears both on one channel, from one relay."""
    shard = keys.shard_of(keys.room_digest(room), SHARDS)
    return next(other for other in (f"{room}-{n}" for n in range(10_000))
                if keys.shard_of(keys.room_digest(other), SHARDS) == shard)


def sized(prefix: str, length: int, fill: str = "x") -> str:
    """`prefix` padded with `fill` to exactly `length` characters."""
    assert len(prefix) < length
    return prefix + fill * (length - len(prefix))


# --- info, ping, endpoints ---------------------------------------------------------------


async def test_info_reports_protocol_version(peers: list[Peer], room: str) -> None:
    a = peers[0]
    await a.send(event="info")
    info = await a.expect("info")
    assert info["protocol_version"] == "1.0.0"
    if "server" in info:  # ext: name and version
        assert isinstance(info["server"], str) and info["server"]
    # Unknown extra fields are ignored; the answer is the same inside a room.
    await a.join(room)
    await a.send(event="info", extra={"x": 1})
    assert (await a.expect("info"))["protocol_version"] == "1.0.0"


async def test_ping_answers_pong(peers: list[Peer]) -> None:
    for peer in peers[:2]:  # both gateways
        await peer.send(event="ping")
        assert await peer.recv() == {"event": "pong"}
        await peer.send(event="ping", room_id="ignored", data={"x": 1})
        assert await peer.recv() == {"event": "pong"}


async def test_ws_path_is_an_alias_of_root(cluster: Cluster, peers: list[Peer],
                                           room: str) -> None:
    alias = await Peer.connect(cluster.url(1) + "ws")
    try:
        await alias.assert_alive()
        await peers[0].join(room, ANN)
        joined = await alias.join(room)
        assert joined["peers"] == [{"peer_id": peers[0].id, "status": ANN}]
        assert await peers[0].expect("new_peer") == {
            "event": "new_peer", "peer_id": alias.id, "status": {}}
    finally:
        await alias.close()


async def test_frames_sent_right_behind_the_upgrade_request_are_answered(
        cluster: Cluster) -> None:
    # A client may write its first frames without waiting for the 101.
    ping = json.dumps({"event": "ping"}).encode()
    raw = await RawSocket.connect(cluster.gateways[0][1],
                                  behind=encode_frame(TEXT, ping) * 2)
    try:
        for _ in range(2):
            assert (await raw.read_frame()).json() == {"event": "pong"}
    finally:
        raw.writer.close()


async def test_plain_http_on_the_websocket_path_is_refused_and_the_gateway_carries_on(
        cluster: Cluster, peers: list[Peer]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", cluster.gateways[0][1])
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert status.startswith(b"HTTP/1.1 426 "), status
    finally:
        writer.close()
    await peers[0].assert_alive()


# --- join_room -----------------------------------------------------------------------


async def test_join_shapes_across_gateways(peers: list[Peer], room: str) -> None:
    a, b, c = peers[0], peers[1], peers[2]  # gateways 0, 1, 0

    joined_a = await a.join(room)
    assert joined_a["event"] == "joined_room"
    assert UUID4.match(joined_a["own_id"]), joined_a
    assert joined_a["peers"] == []

    joined_b = await b.join(room, ANN)
    assert UUID4.match(joined_b["own_id"]), joined_b
    assert joined_b["peers"] == [{"peer_id": a.id, "status": {}}]
    # status is always present in new_peer, `{}` when none was given
    assert await a.recv() == {"event": "new_peer", "peer_id": b.id, "status": ANN}

    joined_c = await c.join(room, {"user_agent": "safari"})
    assert UUID4.match(joined_c["own_id"]), joined_c
    # every *other* member, in join order, with its current status
    assert joined_c["peers"] == [{"peer_id": a.id, "status": {}},
                                 {"peer_id": b.id, "status": ANN}]
    expected = {"event": "new_peer", "peer_id": c.id, "status": {"user_agent": "safari"}}
    assert await a.recv() == expected
    assert await b.recv() == expected

    assert len({a.id, b.id, c.id}) == 3
    # Nobody got anything else (no new_peer about oneself, no duplicates).
    await assert_room_intact([(a, {}), (b, ANN), (c, {"user_agent": "safari"})])


async def test_new_peer_carries_empty_status_when_none_given(peers: list[Peer],
                                                             room: str) -> None:
    a, b = peers[0], peers[1]
    await a.join(room)
    await b.send(event="join_room", room_id=room)  # no status field at all
    joined = await b.expect("joined_room")
    b.id = joined["own_id"]
    assert joined["peers"] == [{"peer_id": a.id, "status": {}}]
    new_peer = await a.expect("new_peer")
    assert new_peer == {"event": "new_peer", "peer_id": b.id, "status": {}}


async def test_own_id_is_per_connection_and_kept_across_rooms(peers: list[Peer],
                                                              room: str) -> None:
    a, b = peers[0], peers[1]
    first = (await a.join(room))["own_id"]
    await a.send(event="leave_room")
    second = (await a.join(room + "-b"))["own_id"]
    await a.send(event="leave_room")
    third = (await a.join(room))["own_id"]
    assert first == second == third
    other = (await b.join(room))["own_id"]
    assert other != first
    assert await a.expect("new_peer") == {"event": "new_peer", "peer_id": other, "status": {}}


async def test_status_is_normalised(peers: list[Peer], room: str) -> None:
    a, b, c = peers[0], peers[1], peers[2]
    # Other keys dropped; a non-ASCII name shown as that many stars.
    await a.join(room, {"name": "✈✈", "user_agent": "safari", "avatar": "x.png",
                        "extra": {"nested": True}})
    joined = await b.join(room, {"name": "Zoë"})
    assert joined["peers"] == [{"peer_id": a.id, "status": {"name": "**",
                                                            "user_agent": "safari"}}]
    assert await a.recv() == {"event": "new_peer", "peer_id": b.id, "status": {"name": "***"}}
    # 50 characters is allowed (ASCII or not); 50 non-ASCII become 50 stars.
    long_ascii = sized("C", 50)
    joined = await c.join(room, {"name": long_ascii, "user_agent": "unknown"})
    assert [p["status"] for p in joined["peers"]] == [
        {"name": "**", "user_agent": "safari"}, {"name": "***"}]
    new_peer = {"event": "new_peer", "peer_id": c.id,
                "status": {"name": long_ascii, "user_agent": "unknown"}}
    assert await a.recv() == new_peer
    assert await b.recv() == new_peer
    await b.send(event="update_status", status={"name": "é" * 50})
    updated = {"event": "peer_updated_status", "status": {"name": "*" * 50},
               "sender_id": b.id}
    for peer in (a, b, c):
        assert await peer.recv() == updated
    await b.send(event="update_status", status={"name": "日本語 ok"})
    updated = {"event": "peer_updated_status", "status": {"name": "******"},
               "sender_id": b.id}
    for peer in (a, b, c):
        assert await peer.recv() == updated


async def test_every_user_agent_is_accepted(peers: list[Peer], room: str) -> None:
    a, b = peers[0], peers[1]
    await a.join(room)
    await b.join(room)
    await a.expect("new_peer")
    for agent in ("chrome", "firefox", "safari", "edge", "opera", "unknown"):
        await b.send(event="update_status", status={"user_agent": agent})
        expected = {"event": "peer_updated_status", "status": {"user_agent": agent},
                    "sender_id": b.id}
        assert await a.recv() == expected
        assert await b.recv() == expected


async def test_room_id_of_50_characters_is_allowed(peers: list[Peer], room: str) -> None:
    a, b = peers[0], peers[1]
    name = sized(room + "-", 50)
    await a.join(name)
    joined = await b.join(name)
    assert joined["peers"] == [{"peer_id": a.id, "status": {}}]
    # Characters, not bytes: 50 non-ASCII characters are 50 too.
    wide = sized(room + "-", 50, "é")
    assert (await peers[2].join(wide))["peers"] == []
    assert (await peers[3].join(wide))["peers"] == [{"peer_id": peers[2].id, "status": {}}]


async def test_rooms_are_separate(peers: list[Peer], room: str) -> None:
    a, b, c, d = peers
    await a.join(room)
    await c.join(room + "-b")
    joined = await b.join(room)
    assert joined["peers"] == [{"peer_id": a.id, "status": {}}]
    await a.expect("new_peer")
    joined = await d.join(room + "-b")
    assert joined["peers"] == [{"peer_id": c.id, "status": {}}]
    await c.expect("new_peer")
    await assert_room_intact([(a, {}), (b, {})])
    await assert_room_intact([(c, {}), (d, {})])


# --- room capacity (3 in the fixture cluster) ----------------------------------------


async def fill_room(peers: list[Peer], room: str) -> tuple[Peer, Peer, Peer]:
    a, b, c = peers[0], peers[1], peers[2]
    await a.join(room, ANN)
    await b.join(room, BOB)
    await a.expect("new_peer")
    await c.join(room)
    await a.expect("new_peer")
    await b.expect("new_peer")
    return a, b, c


async def test_full_room_refuses_and_leaves_the_peer_in_no_room(peers: list[Peer],
                                                                room: str) -> None:
    a, b, c = await fill_room(peers, room)
    d = peers[3]
    await d.send(event="join_room", room_id=room, status={"name": "Dee"})
    await expect_error(d, "room is full", "join_room")
    # Right away, d is in no room: another join succeeds.
    joined = await d.join(room + "-b")
    assert joined["peers"] == []
    assert UUID4.match(joined["own_id"])
    # The members never heard of d.
    await assert_room_intact([(a, ANN), (b, BOB), (c, {})])


async def test_refused_peer_is_not_in_any_room(peers: list[Peer], room: str) -> None:
    a, b, c = await fill_room(peers, room)
    d = peers[3]
    await d.send(event="join_room", room_id=room)
    await expect_error(d, "room is full", "join_room")
    await d.send(event="update_status", status={"name": "Dee"})
    await expect_error(d, "currently not in any room", "update_status")
    await d.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "x": 1})
    await expect_error(d, "currently not in any room", "send_to_peer")
    await d.assert_alive()
    await assert_room_intact([(a, ANN), (b, BOB), (c, {})])


async def test_join_succeeds_once_a_full_room_has_room(peers: list[Peer], room: str) -> None:
    a, b, c = await fill_room(peers, room)
    d = peers[3]
    await d.send(event="join_room", room_id=room)
    await expect_error(d, "room is full", "join_room")
    await c.send(event="leave_room")
    left = {"event": "peer_left", "sender_id": c.id}
    assert await a.recv() == left
    assert await b.recv() == left
    joined = await d.join(room, {"name": "Dee"})
    assert joined["peers"] == [{"peer_id": a.id, "status": ANN},
                               {"peer_id": b.id, "status": BOB}]
    new_peer = {"event": "new_peer", "peer_id": d.id, "status": {"name": "Dee"}}
    assert await a.recv() == new_peer
    assert await b.recv() == new_peer
    await assert_room_intact([(a, ANN), (b, BOB), (d, {"name": "Dee"})])


# --- errors: each refused frame gets its error, and nothing else changes --------------

Frame = dict[str, Any] | str | bytes | Callable[[dict[str, str]], dict[str, Any]]

ROOM = "<room>"  # replaced by the test's room name
ERROR_CASES: list[tuple[str, str, Frame, str, str | None]] = [
    # (id, who sends it: "member" is in the room, "outsider" never joined, frame, text,
    #  received_msg)
    # malformed frames
    ("not-json", "member", "hello", "invalid message", None),
    ("truncated-json", "outsider", '{"event": "ping"', "invalid message", None),
    ("trailing-garbage", "member", '{"event": "ping"} {}', "invalid message", None),
    ("nan-is-not-json", "member", '{"event": "ping", "x": NaN}', "invalid message", None),
    ("empty-text", "member", "", "invalid message", None),
    ("json-array", "member", '["ping"]', "invalid message", None),
    ("json-string", "outsider", '"ping"', "invalid message", None),
    ("json-number", "member", "42", "invalid message", None),
    ("json-null", "member", "null", "invalid message", None),
    ("binary-frame", "member", b'{"event":"ping"}', "invalid message", None),
    ("binary-frame-outsider", "outsider", b"\x00\xff", "invalid message", None),
    ("no-event", "member", "{}", "no event given", None),
    ("no-event-with-fields", "outsider", {"room_id": ROOM}, "no event given", None),
    ("event-number", "member", {"event": 5}, "no event given", None),
    ("event-null", "member", {"event": None}, "no event given", None),
    ("event-list", "outsider", {"event": ["ping"]}, "no event given", None),
    ("unknown-event", "member", {"event": "dance"}, "unknown event", "dance"),
    ("unknown-event-case", "outsider", {"event": "PING"}, "unknown event", "PING"),
    ("peer-event-as-client-event", "member", {"event": "offer"}, "unknown event", "offer"),
    # join_room
    ("join-no-room-id", "outsider", {"event": "join_room"}, "no room id given", "join_room"),
    ("join-room-id-null", "outsider", {"event": "join_room", "room_id": None},
     "no room id given", "join_room"),
    ("join-room-id-number", "outsider", {"event": "join_room", "room_id": 5},
     "no room id given", "join_room"),
    ("join-room-id-list", "outsider", {"event": "join_room", "room_id": [ROOM]},
     "no room id given", "join_room"),
    ("join-room-id-empty", "outsider", {"event": "join_room", "room_id": ""},
     "no room id given", "join_room"),
    ("join-room-id-51", "outsider", {"event": "join_room", "room_id": "y" * 51},
     "room id too long", "join_room"),
    ("join-room-id-51-wide", "outsider", {"event": "join_room", "room_id": "é" * 51},
     "room id too long", "join_room"),
    ("join-same-room-again", "member", {"event": "join_room", "room_id": ROOM},
     "already joined another room", "join_room"),
    ("join-another-room", "member", {"event": "join_room", "room_id": ROOM + "-b"},
     "already joined another room", "join_room"),
    ("join-status-string", "outsider", {"event": "join_room", "room_id": ROOM,
                                        "status": "Ann"}, "invalid status", "join_room"),
    ("join-status-list", "outsider", {"event": "join_room", "room_id": ROOM, "status": []},
     "invalid status", "join_room"),
    ("join-status-null", "outsider", {"event": "join_room", "room_id": ROOM, "status": None},
     "invalid status", "join_room"),
    ("join-status-number", "outsider", {"event": "join_room", "room_id": ROOM, "status": 1},
     "invalid status", "join_room"),
    ("join-name-number", "outsider", {"event": "join_room", "room_id": ROOM,
                                      "status": {"name": 5}}, "invalid status", "join_room"),
    ("join-name-null", "outsider", {"event": "join_room", "room_id": ROOM,
                                    "status": {"name": None}}, "invalid status", "join_room"),
    ("join-user-agent-number", "outsider",
     {"event": "join_room", "room_id": ROOM, "status": {"user_agent": 1}},
     "invalid status", "join_room"),
    ("join-name-empty", "outsider", {"event": "join_room", "room_id": ROOM,
                                     "status": {"name": ""}},
     "blank name not allowed", "join_room"),
    ("join-name-spaces", "outsider", {"event": "join_room", "room_id": ROOM,
                                      "status": {"name": "  \t "}},
     "blank name not allowed", "join_room"),
    ("join-name-51", "outsider", {"event": "join_room", "room_id": ROOM,
                                  "status": {"name": "n" * 51}}, "name too long", "join_room"),
    ("join-name-51-wide", "outsider", {"event": "join_room", "room_id": ROOM,
                                       "status": {"name": "✈" * 51}},
     "name too long", "join_room"),
    ("join-user-agent-unknown", "outsider",
     {"event": "join_room", "room_id": ROOM, "status": {"user_agent": "netscape"}},
     "unknown user agent", "join_room"),
    ("join-user-agent-capitalised", "outsider",
     {"event": "join_room", "room_id": ROOM, "status": {"name": "Cy", "user_agent": "Chrome"}},
     "unknown user agent", "join_room"),
    # update_status
    ("status-not-in-room", "outsider", {"event": "update_status", "status": {"name": "Cy"}},
     "currently not in any room", "update_status"),
    ("status-string", "member", {"event": "update_status", "status": "Bob"},
     "invalid status", "update_status"),
    ("status-list", "member", {"event": "update_status", "status": [{"name": "X"}]},
     "invalid status", "update_status"),
    ("status-null", "member", {"event": "update_status", "status": None},
     "invalid status", "update_status"),
    ("status-name-number", "member", {"event": "update_status", "status": {"name": 7}},
     "invalid status", "update_status"),
    ("status-user-agent-bool", "member",
     {"event": "update_status", "status": {"user_agent": False}},
     "invalid status", "update_status"),
    ("status-name-empty", "member", {"event": "update_status", "status": {"name": ""}},
     "blank name not allowed", "update_status"),
    ("status-name-blank", "member", {"event": "update_status", "status": {"name": " \n "}},
     "blank name not allowed", "update_status"),
    ("status-name-51", "member", {"event": "update_status", "status": {"name": "m" * 51}},
     "name too long", "update_status"),
    ("status-user-agent-unknown", "member",
     {"event": "update_status", "status": {"name": "Bo", "user_agent": "ie6"}},
     "unknown user agent", "update_status"),
    ("status-user-agent-empty", "member",
     {"event": "update_status", "status": {"user_agent": ""}},
     "unknown user agent", "update_status"),
    # send_to_peer
    ("send-not-in-room", "outsider",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": {"event": "offer"}},
     "currently not in any room", "send_to_peer"),
    ("send-data-missing", "member", lambda ids: {"event": "send_to_peer", "peer_id": ids["a"]},
     "cannot send raw data", "send_to_peer"),
    ("send-data-string", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": "v=0 sdp"},
     "cannot send raw data", "send_to_peer"),
    ("send-data-list", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": [{"event": "offer"}]},
     "cannot send raw data", "send_to_peer"),
    ("send-data-number", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": 12},
     "cannot send raw data", "send_to_peer"),
    ("send-data-null", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": None},
     "cannot send raw data", "send_to_peer"),
    ("send-peer-missing", "member", {"event": "send_to_peer", "data": {"event": "offer"}},
     "unknown peer", "send_to_peer"),
    ("send-peer-number", "member",
     {"event": "send_to_peer", "peer_id": 5, "data": {"event": "offer"}},
     "unknown peer", "send_to_peer"),
    ("send-peer-empty", "member",
     {"event": "send_to_peer", "peer_id": "", "data": {"event": "offer"}},
     "unknown peer", "send_to_peer"),
    ("send-peer-stranger", "member",
     {"event": "send_to_peer", "peer_id": str(uuid.uuid4()), "data": {"event": "answer"}},
     "unknown peer", "send_to_peer"),
    ("send-peer-upper-case", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"].upper(),
                  "data": {"event": "message"}},
     "unknown peer", "send_to_peer"),
    ("send-data-no-event", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": {"sdp": "v=0"}},
     "event not allowed", "send_to_peer"),
    ("send-data-event-unknown", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": {"event": "hack"}},
     "event not allowed", "send_to_peer"),
    ("send-data-event-number", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": {"event": 1}},
     "event not allowed", "send_to_peer"),
    ("send-data-event-server-frame", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"],
                  "data": {"event": "peer_left", "sender_id": ids["b"]}},
     "event not allowed", "send_to_peer"),
    ("send-data-event-capitalised", "member",
     lambda ids: {"event": "send_to_peer", "peer_id": ids["a"], "data": {"event": "Offer"}},
     "event not allowed", "send_to_peer"),
]


def _fill_room(value: Any, room: str) -> Any:
    if isinstance(value, str):
        return value.replace(ROOM, room)
    if isinstance(value, list):
        return [_fill_room(v, room) for v in value]
    if isinstance(value, dict):
        return {k: _fill_room(v, room) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("who", "frame", "text", "received"),
                         [case[1:] for case in ERROR_CASES],
                         ids=[case[0] for case in ERROR_CASES])
async def test_error(peers: list[Peer], room: str, who: str, frame: Frame, text: str,
                     received: str | None) -> None:
    a, b = await join_pair(peers, room)  # gateways 0 and 1
    outsider = peers[3]  # gateway 1, never joined
    sender = b if who == "member" else outsider

    if isinstance(frame, (str, bytes)):
        await sender.send_raw(frame)
    else:
        built = frame({"a": peer_id(a), "b": peer_id(b)}) if callable(frame) else frame
        await sender.send_raw(json.dumps(_fill_room(built, room)))
    await expect_error(sender, text, received)

    # The connection stays open and works; nothing else was sent to it.
    await sender.assert_alive()
    # The other members are unaffected: same members, same statuses, no stray frames.
    await assert_room_intact([(a, ANN), (b, BOB)])
    if sender is outsider:
        # A refused frame put the outsider in no room: it can still join this one.
        joined = await outsider.join(room, {"name": "Cy"})
        assert joined["peers"] == [{"peer_id": a.id, "status": ANN},
                                   {"peer_id": b.id, "status": BOB}]
        new_peer = {"event": "new_peer", "peer_id": outsider.id, "status": {"name": "Cy"}}
        assert await a.recv() == new_peer
        assert await b.recv() == new_peer
        await assert_room_intact([(a, ANN), (b, BOB), (outsider, {"name": "Cy"})])


async def test_send_to_member_of_another_room_is_unknown_peer(peers: list[Peer],
                                                              room: str) -> None:
    a, b = await join_pair(peers, room)
    c, d = peers[2], peers[3]
    await c.join(room + "-b")
    await d.join(room + "-b")
    await c.expect("new_peer")
    await a.send(event="send_to_peer", peer_id=d.id, data={"event": "offer", "sdp": "v=0"})
    await expect_error(a, "unknown peer", "send_to_peer")
    await a.assert_alive()
    await assert_room_intact([(a, ANN), (b, BOB)])
    await assert_room_intact([(c, {}), (d, {})])  # d got nothing


async def test_errors_in_a_row_keep_the_connection(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    await b.send_raw(b"\x01\x02")
    await b.send_raw("{")
    await b.send(event="nope")
    await b.send(event="update_status", status={"name": ""})
    await b.send(event="send_to_peer", peer_id=a.id, data={"event": "bad"})
    await expect_error(b, "invalid message", None)
    await expect_error(b, "invalid message", None)
    await expect_error(b, "unknown event", "nope")
    await expect_error(b, "blank name not allowed", "update_status")
    await expect_error(b, "event not allowed", "send_to_peer")
    await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "ok": True})
    assert await a.recv() == {"event": "message", "ok": True, "sender_id": b.id}
    await assert_room_intact([(a, ANN), (b, BOB)])


# --- update_status -------------------------------------------------------------------


async def test_update_status_reaches_everyone_merged(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    c = peers[2]

    async def everyone_gets(status: dict[str, Any], members: list[Peer]) -> None:
        expected = {"event": "peer_updated_status", "status": status, "sender_id": a.id}
        for member in members:  # including the sender
            assert await member.recv() == expected

    await a.send(event="update_status", status={"name": "Annie"})
    await everyone_gets({"name": "Annie", "user_agent": "chrome"}, [a, b])
    await a.send(event="update_status", status={"user_agent": "edge", "mood": "happy"})
    await everyone_gets({"name": "Annie", "user_agent": "edge"}, [a, b])
    # An empty status (or one with only dropped keys) is accepted and changes nothing.
    await a.send(event="update_status", status={})
    await everyone_gets({"name": "Annie", "user_agent": "edge"}, [a, b])
    await a.send(event="update_status", status={"avatar": "x.png"}, extra=1)
    await everyone_gets({"name": "Annie", "user_agent": "edge"}, [a, b])
    await a.send(event="update_status", status={"name": "Åsa"})
    await everyone_gets({"name": "***", "user_agent": "edge"}, [a, b])
    # A newcomer sees the stored, merged status.
    joined = await c.join(room)
    assert joined["peers"] == [{"peer_id": a.id, "status": {"name": "***", "user_agent": "edge"}},
                               {"peer_id": b.id, "status": BOB}]
    await a.expect("new_peer")
    await b.expect("new_peer")
    await a.send(event="update_status", status={"name": "Ann"})
    await everyone_gets({"name": "Ann", "user_agent": "edge"}, [a, b, c])
    await assert_room_intact([(a, {"name": "Ann", "user_agent": "edge"}), (b, BOB), (c, {})])


async def test_lone_member_gets_its_own_status_update(peers: list[Peer], room: str) -> None:
    a = peers[0]
    await a.join(room)
    await a.send(event="update_status", status={"name": "Solo"})
    assert await a.recv() == {"event": "peer_updated_status", "status": {"name": "Solo"},
                              "sender_id": a.id}


async def test_update_status_after_leaving_is_refused(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    await b.send(event="leave_room")
    assert await a.recv() == {"event": "peer_left", "sender_id": b.id}
    await b.send(event="update_status", status={"name": "Late"})
    await expect_error(b, "currently not in any room", "update_status")
    await assert_room_intact([(a, ANN)])


# --- send_to_peer --------------------------------------------------------------------

OFFER = {
    "event": "offer",
    "sdp": {"type": "offer",
            "sdp": "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
                   "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"},
    "label": "héllo ✈ 😀 日本語 \"quoted\" \\ back\\slash \u0000 nul",
    "nested": {"list": [1, -2, 3.5, 1e-7, 12345678901234567890, None, True, False, "",
                        {"deep": {"deeper": ["x", {}]}}],
               "sender_id": "nested sender ids are data, kept as they are"},
    "empty": {},
}
ANSWER = {"event": "answer", "sdp": {"type": "answer", "sdp": "v=0\r\na=setup:active\r\n"},
          "sender_id": "forged-by-the-client"}
CANDIDATE = {"event": "ice_candidate", "sender_id": None,
             "candidate": {"candidate": "candidate:842163049 1 udp 1677729535 "
                                        "203.0.113.7 46154 typ srflx raddr 0.0.0.0 rport 0",
                           "sdpMid": "0", "sdpMLineIndex": 0,
                           "usernameFragment": "Ab+/"}}
MESSAGE = {"app": {"chat": "Grüße 👋", "n": [0, 0.5]}, "event": "message", "sender_id": 42}


@pytest.mark.parametrize("data", [OFFER, ANSWER, CANDIDATE, MESSAGE],
                         ids=["offer", "answer", "ice_candidate", "message"])
async def test_send_to_peer_delivers_data_with_sender_id(peers: list[Peer], room: str,
                                                         data: dict[str, Any]) -> None:
    a, b = await join_pair(peers, room)
    await a.send(event="send_to_peer", peer_id=b.id, data=data, unknown_field="ignored")
    got = await recv_strict(b)
    # Exactly the data, with sender_id added (a client-supplied one overwritten).
    assert got == {**data, "sender_id": a.id}
    # And back, across the other gateway.
    await b.send(event="send_to_peer", peer_id=a.id, data=data)
    assert await recv_strict(a) == {**data, "sender_id": b.id}
    # Nothing else went anywhere (no echo to the sender, no copy to others).
    await assert_room_intact([(a, ANN), (b, BOB)])


@pytest.mark.parametrize("forged", [False, True], ids=["plain", "with-sender-id"])
async def test_send_to_peer_passes_literal_utf8_through(peers: list[Peer], room: str,
                                                         forged: bool) -> None:
    """Text sent as raw UTF-8 rather than JSON escapes, with and without a sender_id to drop."""
    a, b = await join_pair(peers, room)
    data: dict[str, Any] = {"event": "message", "text": "Grüße ✈ 😀 日本語 \u2028 𝄞",
                            "nested": {"ключ": ["значение", {"emoji": "👩‍👩‍👧"}]}}
    if forged:
        data["sender_id"] = "ça"
    frame = {"event": "send_to_peer", "peer_id": peer_id(b), "data": data}
    await a.send_raw(json.dumps(frame, ensure_ascii=False))
    assert await recv_strict(b) == {**data, "sender_id": a.id}
    await assert_room_intact([(a, ANN), (b, BOB)])


async def test_send_to_peer_reaches_only_the_target(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    c = peers[2]
    await c.join(room)
    await a.expect("new_peer")
    await b.expect("new_peer")
    await c.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "to": "a"})
    await c.send(event="send_to_peer", peer_id=b.id, data={"event": "message", "to": "b"})
    assert await a.recv() == {"event": "message", "to": "a", "sender_id": c.id}
    assert await b.recv() == {"event": "message", "to": "b", "sender_id": c.id}
    await assert_room_intact([(a, ANN), (b, BOB), (c, {})])


async def test_peer_may_address_itself(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    data = {"event": "message", "note": "to me ✉", "sender_id": "someone else"}
    await a.send(event="send_to_peer", peer_id=a.id, data=data)
    assert await recv_strict(a) == {**data, "sender_id": a.id}
    await assert_room_intact([(a, ANN), (b, BOB)])


async def test_per_sender_order_across_gateways(peers: list[Peer], room: str) -> None:
    receiver = peers[1]  # gateway 1
    far, near = peers[0], peers[3]  # gateway 0 (crosses gateways), gateway 1
    await receiver.join(room)
    await far.join(room)
    await receiver.expect("new_peer")
    await near.join(room)
    await receiver.expect("new_peer")
    await far.expect("new_peer")
    count = 150  # per sender; under the default burst allowance of one connection

    async def burst(sender: Peer) -> None:
        for seq in range(count):
            await sender.send(event="send_to_peer", peer_id=receiver.id,
                              data={"event": "ice_candidate", "seq": seq,
                                    "candidate": {"candidate": f"candidate:{seq} 1 udp 1 "
                                                               f"10.0.0.1 {9000 + seq} typ host",
                                                  "sdpMid": "0", "sdpMLineIndex": 0}})

    await asyncio.gather(burst(far), burst(near))
    received: dict[str, list[int]] = {peer_id(far): [], peer_id(near): []}
    for _ in range(2 * count):
        frame = await receiver.expect("ice_candidate")
        received[frame["sender_id"]].append(frame["seq"])
    assert received[peer_id(far)] == list(range(count))
    assert received[peer_id(near)] == list(range(count))
    await assert_room_intact([(receiver, {}), (far, {}), (near, {})])


# --- leave_room and closed sockets -----------------------------------------------------


async def test_leave_room(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    c = peers[2]
    await c.join(room)
    await a.expect("new_peer")
    await b.expect("new_peer")

    await b.send(event="leave_room")
    left = {"event": "peer_left", "sender_id": b.id}
    assert await a.recv() == left
    assert await c.recv() == left
    # b is no member any more: unknown to the others, and hears nothing of the room.
    await a.send(event="send_to_peer", peer_id=b.id, data={"event": "offer"})
    await expect_error(a, "unknown peer", "send_to_peer")
    await assert_room_intact([(a, ANN), (c, {})])

    # Leaving again, in no room, is ignored: no answer at all. Not from the gateway, whose
    # answer would come before the pong; nor from the relay, whose frame would come before
    # the joined_room of another room of the shard (on the stream after the leave, and on
    # the channel b heard the room on).
    await b.send(event="leave_room")
    await b.assert_alive()
    # And b can join another room, which is empty, then come back.
    assert (await b.join(room_on_the_same_shard(room)))["peers"] == []
    await b.send(event="leave_room")
    joined = await b.join(room, BOB)
    assert joined["peers"] == [{"peer_id": a.id, "status": ANN}, {"peer_id": c.id, "status": {}}]
    new_peer = {"event": "new_peer", "peer_id": b.id, "status": BOB}
    assert await a.recv() == new_peer
    assert await c.recv() == new_peer
    await assert_room_intact([(a, ANN), (c, {}), (b, BOB)])


async def test_leave_room_without_a_room_is_ignored(peers: list[Peer]) -> None:
    fresh = peers[1]
    await fresh.send(event="leave_room")
    # No answer: the gateway's would come before the pong, and a relay has no channel to
    # reach a socket that never joined a room.
    await fresh.assert_alive()


async def test_closed_socket_counts_as_leave(peers: list[Peer], room: str) -> None:
    a, b = await join_pair(peers, room)
    c, d = peers[2], peers[3]  # gateways 0 and 1
    await c.join(room)
    await a.expect("new_peer")
    await b.expect("new_peer")

    await c.close()  # a clean close
    left = {"event": "peer_left", "sender_id": c.id}
    assert await a.recv() == left
    assert await b.recv() == left
    await a.send(event="send_to_peer", peer_id=c.id, data={"event": "offer"})
    await expect_error(a, "unknown peer", "send_to_peer")

    b.ws.transport.abort()  # the socket drops without a close handshake
    assert await a.recv() == {"event": "peer_left", "sender_id": b.id}

    # The two places are free again (capacity 3).
    joined = await d.join(room)
    assert joined["peers"] == [{"peer_id": a.id, "status": ANN}]
    assert await a.recv() == {"event": "new_peer", "peer_id": d.id, "status": {}}
    await assert_room_intact([(a, ANN), (d, {})])


async def test_two_gateways_share_a_room(peers: list[Peer], room: str) -> None:
    a, b = peers[0], peers[1]  # gateway 0, gateway 1
    await a.join(room, ANN)
    joined = await b.join(room)
    assert joined["peers"] == [{"peer_id": a.id, "status": ANN}]
    assert await a.expect("new_peer") == {"event": "new_peer", "peer_id": b.id, "status": {}}
    await a.send(event="send_to_peer", peer_id=b.id, data={"event": "offer", "sdp": "x"})
    assert await b.recv() == {"event": "offer", "sdp": "x", "sender_id": a.id}
    await b.send(event="send_to_peer", peer_id=a.id, data={"event": "answer", "sdp": "y"})
    assert await a.recv() == {"event": "answer", "sdp": "y", "sender_id": b.id}
    await assert_room_intact([(a, ANN), (b, {})])


# --- what Redis keeps ----------------------------------------------------------------


async def test_redis_keeps_nothing_of_an_empty_room(peers: list[Peer], room: str,
                                                    cluster: Cluster) -> None:
    redis = cluster.redis
    digest = keys.room_digest(room)
    a, b = await join_pair(peers, room)

    # While the room has members, its state is in Redis, under the digest only.
    room_keys = await eventually(lambda: [k for k in keys_of(redis) if digest in k],
                                 10, "the room's keys")
    assert all(room not in k for k in keys_of(redis))
    # Nor is the clear name in the values of the room's shard (state, index, stream).
    shard = keys.shard_of(digest, SHARDS)
    dumps = [command_on(redis, "hgetall", k) for k in room_keys]
    dumps.append(command_on(redis, "smembers", keys.shard_rooms(shard)))
    dumps.append(command_on(redis, "xrange", keys.shard_stream(shard), "-", "+"))
    assert all(room not in dump for dump in dumps), dumps

    await a.send(event="leave_room")
    assert await b.recv() == {"event": "peer_left", "sender_id": a.id}
    await b.close()  # the last member goes by closing its socket

    traces = (digest, room, peer_id(a), peer_id(b))  # of the room and of its connections

    def gone() -> bool:
        return not any(trace in k for k in keys_of(redis) for trace in traces)

    await eventually(gone, 10, "the room's keys to go")
    await eventually(lambda: digest not in command_on(
        redis, "smembers", keys.shard_rooms(shard)), 10,
        "the room to leave the shard index")
    # And the room starts afresh.
    assert (await a.join(room))["peers"] == []
