"""Every Redis key and channel name, in one place.

Keys of one shard carry the hash tag ``{sN}`` so that they share a Redis Cluster slot and
one Lua script may touch them all (docs/architecture.md, rule 3).
"""

import hashlib

GROUP = "relays"  # the one consumer group on every shard stream
RELAYS = "sig:relays"  # sorted set: relay id -> expiry (ms), how relays count each other


def room_digest(room_id: str) -> str:
    """The name a room is stored under: its SHA-512, so that names never sit in clear."""
    return hashlib.sha512(room_id.encode("utf-8", "surrogatepass")).hexdigest()


def shard_of(digest: str, shards: int) -> int:
    """The shard a room belongs to; stable for a given shard count."""
    return int(digest[:15], 16) % shards


def _tag(shard: int) -> str:
    return f"{{s{shard}}}"


def shard_stream(shard: int) -> str:
    """Stream of events for the shard's rooms, XADDed by gateways."""
    return f"sig:in:{_tag(shard)}"


# The field of a shard stream's entry that holds its event (msgpack, shared/events.py).
EVENT_FIELD = b"e"


def shard_lease(shard: int) -> str:
    """Which relay holds the shard (value: relay id; TTL: the lease)."""
    return f"sig:lease:{_tag(shard)}"


def all_leases(shards: int) -> list[str]:
    """Every shard's lease key: MGET them to see which shards have a relay."""
    return [shard_lease(shard) for shard in range(shards)]


def shard_checkpoint(shard: int) -> str:
    """Stream id of the last event whose effects were committed."""
    return f"sig:ckpt:{_tag(shard)}"


def shard_rooms(shard: int) -> str:
    """Set of the digests of the shard's non-empty rooms."""
    return f"sig:rooms:{_tag(shard)}"


def room_members(shard: int, digest: str) -> str:
    """Hash: peer id -> msgpack Member. Gone when the room empties."""
    return f"sig:room:{_tag(shard)}:{digest}"


def kept_frames(shard: int, conn: str) -> str:
    """List of the latest frames for a resumable peer (docs/protocol.md, "Resume"), oldest
    first, bounded in count (SWITCHBOARD_RESUME_BUFFER_FRAMES) and in time. Gone when
    the peer leaves."""
    return f"sig:kept:{_tag(shard)}:{conn}"


def frame_counters(shard: int) -> str:
    """Hash: resumable peer id -> the frame_seq of the last frame it was sent."""
    return f"sig:fseq:{_tag(shard)}"


def room_lives(shard: int) -> str:
    """Hash: room digest -> msgpack RoomLife, while webhooks are on: what the room's next
    lifecycle event is numbered, and its usage so far (docs/protocol.md, "Webhooks")."""
    return f"sig:lives:{_tag(shard)}"


def webhook_outbox(shard: int) -> str:
    """Stream of the shard's lifecycle events not delivered yet (fields `r`: room digest,
    `b`: the JSON body), at most SWITCHBOARD_WEBHOOK_BACKLOG long."""
    return f"sig:hooks:{_tag(shard)}"


def webhooks_dropped(shard: int) -> str:
    """How many of the shard's lifecycle events the outbox's bound dropped, ever."""
    return f"sig:hooks-dropped:{_tag(shard)}"


def gateway_alive(gateway_id: str) -> str:
    """Present while the gateway heartbeats (value: the time of its beat; TTL:
    gateway_ttl_ms); `GATEWAY_DEAD` once a relay declared it dead."""
    return f"sig:gw:{gateway_id}"


# What a relay writes into a gateway's heartbeat key (SET NX: only where the key is
# missing) before it removes that gateway's peers, for GATEWAY_DEAD_KEPT_MS: the gateway,
# whose every beat reads the key's old value, then knows that its sockets must rejoin,
# and a key that is merely missing (a failover) makes it close nothing (rule 4).
GATEWAY_DEAD = b"dead"
GATEWAY_DEAD_KEPT_MS = 600_000


def connection_channel(shard: int, socket_id: str) -> str:
    """Shard channel (SSUBSCRIBE) a gateway reads for one socket while it is in a room of
    the shard: in the shard's slot, so that its commit script may SPUBLISH there."""
    return f"sig:out:{_tag(shard)}:{socket_id}"
