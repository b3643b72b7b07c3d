"""The structs that cross Redis (shared/events.py): identities add no bytes when unused, and
records written before they existed still decode (a rolling deploy mixes both)."""

from __future__ import annotations

import msgspec

from shared.events import (
    Join,
    Member,
    RemovePeers,
    Status,
    event_decoder,
    event_encoder,
    member_decoder,
)

OLD_MEMBER = {"status": {"name": "Ann"}, "gateway": "gw-1", "joined": "5-0"}


def test_a_member_without_identity_is_the_bytes_of_an_old_record() -> None:
    member = Member(status=Status(name="Ann"), gateway="gw-1", joined="5-0")
    assert msgspec.msgpack.encode(member) == msgspec.msgpack.encode(OLD_MEMBER)
    old = member_decoder.decode(msgspec.msgpack.encode(OLD_MEMBER))
    assert (old.user, old.info, old.host) == ("", b"", False)


def test_a_member_and_a_join_keep_their_identity_across_redis() -> None:
    member = Member(status=Status(), gateway="gw-1", joined="5-0", user="u-1",
                    info=b'{"name":"U"}', host=True)
    assert member_decoder.decode(msgspec.msgpack.encode(member)) == member
    join = Join(conn="c", room="r", gateway="gw-1", seq=1, user="u-1", info=b"{}", host=True)
    assert event_decoder.decode(event_encoder.encode(join)) == join
    plain = Join(conn="c", room="r", gateway="gw-1", seq=1)
    assert b"user" not in event_encoder.encode(plain) and b"host" not in event_encoder.encode(plain)


def test_an_admin_events_reply_channel_is_still_conn_on_the_wire() -> None:
    """`reply_to` was the inherited `conn` field: a gateway and a relay of either version
    read each other's admin events."""
    wire = {"t": "remove", "conn": "reply-ch", "room": "r", "peer": "p"}
    event = RemovePeers(reply_to="reply-ch", room="r", peer="p")
    assert msgspec.msgpack.decode(event_encoder.encode(event)) == wire
    assert event_decoder.decode(msgspec.msgpack.encode(wire)) == event
