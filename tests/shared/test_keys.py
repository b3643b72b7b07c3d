"""Redis names: room digests, shard routing, and the shard hash tag."""

from __future__ import annotations

import hashlib
import string

import pytest

from redis_io.nodes import slot_of
from shared import keys

NAMES = ["lobby", "room-1", "✈ trip", "my secret room", "a" * 50, " "]


def hash_tag(key: str) -> str:
    """The part of `key` Redis Cluster hashes: the first non-empty ``{...}``, else all."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1:end]
    return key


@pytest.mark.parametrize("name", NAMES)
def test_room_digest_is_the_sha512_hex_of_the_name(name: str) -> None:
    digest = keys.room_digest(name)
    assert digest == hashlib.sha512(name.encode()).hexdigest()
    assert len(digest) == 128 and set(digest) <= set(string.hexdigits.lower())


@pytest.mark.parametrize("name", ["lobby", "my secret room", "✈ trip"])
def test_room_digest_does_not_contain_the_name(name: str) -> None:
    assert name not in keys.room_digest(name)


def test_room_digests_differ_between_rooms() -> None:
    assert len({keys.room_digest(name) for name in NAMES}) == len(NAMES)


@pytest.mark.parametrize("name, shards, shard", [
    # Pinned: every gateway and relay, old or new, must route a room to the same shard.
    ("lobby", 64, 28), ("lobby", 8, 4),
    ("room-1", 64, 15), ("room-1", 8, 7),
    ("✈ trip", 64, 21), ("✈ trip", 8, 5),
])
def test_shard_of_is_stable(name: str, shards: int, shard: int) -> None:
    assert keys.shard_of(keys.room_digest(name), shards) == shard


@pytest.mark.parametrize("shards", [1, 2, 7, 64, 1000])
def test_shard_of_is_in_range_and_uses_every_shard(shards: int) -> None:
    found = {keys.shard_of(keys.room_digest(f"room-{i}"), shards) for i in range(20 * shards)}
    assert found == set(range(shards))


DIGEST = keys.room_digest("lobby")
SHARD_KEYS = [
    keys.shard_stream,
    keys.shard_lease,
    keys.shard_checkpoint,
    keys.shard_rooms,
    lambda shard: keys.room_members(shard, DIGEST),
]


@pytest.mark.parametrize("shard", [0, 1, 17, 63])
def test_all_keys_of_a_shard_share_its_hash_tag(shard: int) -> None:
    assert {hash_tag(key(shard)) for key in SHARD_KEYS} == {f"s{shard}"}


@pytest.mark.parametrize("key", SHARD_KEYS)
def test_keys_of_different_shards_differ(key: object) -> None:
    assert len({key(shard) for shard in range(64)}) == 64  # type: ignore[operator]


def test_room_member_keys_differ_between_rooms() -> None:
    other = keys.room_digest("other")
    assert keys.room_members(3, DIGEST) != keys.room_members(3, other)


def test_connection_channels_differ_between_connections_and_share_their_shards_slot() -> None:
    assert keys.connection_channel(3, "a") != keys.connection_channel(3, "b")
    assert keys.connection_channel(3, "a") != keys.connection_channel(4, "a")
    # The commit script SPUBLISHes to it: on a cluster it must hash with the shard's keys.
    assert slot_of(keys.connection_channel(3, "a")) == slot_of(keys.shard_stream(3))
