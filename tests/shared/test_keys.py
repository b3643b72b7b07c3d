"""Redis names: room digests, shard routing, and the shard hash tag."""

from __future__ import annotations

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


# Pinned: every gateway and relay, old or new, must store a room under the same name. Each
# value is the SHA-512 of the name's UTF-8 bytes, computed outside Python with coreutils:
#   printf '%s' 'lobby' | sha512sum     (likewise 'room-1', '✈ trip', ' ')
#   printf '\xed\xa0\x80' | sha512sum   (a lone surrogate, U+D800, as "surrogatepass" encodes it)
DIGESTS = [
    ("lobby", "fec7258772b4c5c9ee70c7d58e5b7aec2688416866548c74a193775012328fd3"
              "c9711efc0e831717b65c616142dc74bf54c3445ddffbc0f68cc3ff8153227947"),
    ("room-1", "7c60dab8a9f0d4f656b598d498edcb473023dde6b3ef7d799bb566d2c05066ed"
               "dabb23ee03b536b41a5f5a86a55a8002870cc29e012ac1174b4ad4ee8d77d5ec"),
    ("✈ trip", "e1de38b227e32959a3e4a8c311228c80599d394e44f601b4e27962066134d493"
               "9ca82bb852fe5c941943fdcffe61d355b0c77820e95bcdff27cab28515e53b89"),
    (" ", "f90ddd77e400dfe6a3fcf479b00b1ee29e7015c5bb8cd70f5f15b4886cc33927"
          "5ff553fc8a053f8ddc7324f45168cffaf81f8c3ac93996f6536eef38e5e40768"),
    ("\ud800", "3ad9a0cf6dcecc01719e340f5d4a066082a32328eddfb06d98f195a736e8eeaf"
               "12e65b7f1240744d74d58c6ffc17aabf8fd34b7d92ed8582c844e3e364c5798c"),
]


@pytest.mark.parametrize("name, digest", DIGESTS)
def test_room_digest_is_the_sha512_hex_of_the_name(name: str, digest: str) -> None:
    assert keys.room_digest(name) == digest


@pytest.mark.parametrize("name", NAMES)
def test_room_digest_is_128_lower_case_hex_digits(name: str) -> None:
    digest = keys.room_digest(name)
    assert len(digest) == 128 and set(digest) <= set(string.hexdigits.lower())


@pytest.mark.parametrize("name", ["lobby", "my secret room", "✈ trip"])
def test_room_digest_does_not_contain_the_name(name: str) -> None:
    assert name not in keys.room_digest(name)


def test_room_digests_differ_between_rooms() -> None:
    assert len({keys.room_digest(name) for name in NAMES}) == len(NAMES)


@pytest.mark.parametrize("name, shards, shard", [
    # Pinned: every gateway and relay, old or new, must route a room to the same shard.
    # Computed outside Python: the first 15 hex digits of the digest above, modulo shards:
    #   d=$(printf '%s' lobby | sha512sum | cut -c1-15); echo $((16#$d % 64)) $((16#$d % 8))
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
