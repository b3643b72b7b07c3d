"""The relay's Redis edge for room state: read a shard back, commit a batch atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import msgspec
from redis.exceptions import ResponseError

from redis_io.clients import CALL_S, LOAD_S, RedisClient, bounded
from relay.effects import (
    CloseRoom,
    DropKept,
    DropLife,
    DropMember,
    Effect,
    Hook,
    Keep,
    OpenRoom,
    Publish,
    PutLife,
    PutMember,
    Replay,
)
from relay.rooms import RoomBook
from relay.scripts import LuaScript
from shared import keys
from shared.events import ReplayBroken, event_encoder, member_decoder
from shared.webhook_events import life_decoder, life_encoder

log = logging.getLogger(__name__)

_member_encoder = msgspec.msgpack.Encoder()

# One shard's batch, all or nothing (docs/architecture.md, rule 2). The lease and checkpoint
# checks fence off a relay that lost the shard mid-batch: its commit changes nothing.
# KEYS: lease, checkpoint, stream, room index, frame counters, then the room hashes and
# kept-frame lists the ops name by index.
# ARGV: relay id, expected checkpoint ("" for none), new checkpoint, group, id of the
# batch's first entry not yet applied ("" for none), n, n stream ids to XACK, then ops:
# P channel payload | H key# field value | D key# field | A digest | R digest |
# K channel key# frame (publish unless channel is "", and keep) |
# T key# peer seq max ttl_ms (after a batch's K: trim, expire, count) |
# Y channel key# count broken (replay the last count kept frames; `broken` if fewer) |
# X key# peer (drop the kept frames and the counter) |
# W key# room body (a lifecycle event into the shard's webhook outbox) |
# B key# counter# max (after a batch's W: bound the outbox, counting what that drops).
# Channels are shard channels in the shard's slot (SPUBLISH): on a cluster a frame then
# costs the one node that runs the script.
#
# The gap check keeps the checkpoint a true high-water mark: if a relay that lost the
# shard read entries with '>' after we took it over, they sit in its PEL, unseen by us;
# an entry between the checkpoint and our batch means exactly that, and the batch is
# refused so that we claim those entries and apply everything in stream order.
COMMIT = LuaScript("""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[2] then return -1 end
if ARGV[5] ~= '' then
  local from = ARGV[2] == '' and '-' or '(' .. ARGV[2]
  if #redis.call('XRANGE', KEYS[3], from, '(' .. ARGV[5], 'COUNT', 1) > 0 then return -2 end
end
local n = tonumber(ARGV[6])
local i = 7 + n
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'P' then
    redis.call('SPUBLISH', ARGV[i + 1], ARGV[i + 2]); i = i + 3
  elseif op == 'K' then
    if ARGV[i + 1] ~= '' then redis.call('SPUBLISH', ARGV[i + 1], ARGV[i + 3]) end
    redis.call('RPUSH', KEYS[tonumber(ARGV[i + 2])], ARGV[i + 3]); i = i + 4
  elseif op == 'H' then
    redis.call('HSET', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2], ARGV[i + 3]); i = i + 4
  elseif op == 'D' then
    redis.call('HDEL', KEYS[tonumber(ARGV[i + 1])], ARGV[i + 2]); i = i + 3
  elseif op == 'T' then
    local kept = KEYS[tonumber(ARGV[i + 1])]
    redis.call('LTRIM', kept, -tonumber(ARGV[i + 4]), -1)
    redis.call('PEXPIRE', kept, ARGV[i + 5])
    redis.call('HSET', KEYS[5], ARGV[i + 2], ARGV[i + 3]); i = i + 6
  elseif op == 'Y' then
    local count = tonumber(ARGV[i + 3])
    local frames = redis.call('LRANGE', KEYS[tonumber(ARGV[i + 2])], -count, -1)
    if #frames < count then
      redis.call('SPUBLISH', ARGV[i + 1], ARGV[i + 4])
    else
      for _, frame in ipairs(frames) do redis.call('SPUBLISH', ARGV[i + 1], frame) end
    end
    i = i + 5
  elseif op == 'X' then
    redis.call('DEL', KEYS[tonumber(ARGV[i + 1])])
    redis.call('HDEL', KEYS[5], ARGV[i + 2]); i = i + 3
  elseif op == 'W' then
    redis.call('XADD', KEYS[tonumber(ARGV[i + 1])], '*', 'r', ARGV[i + 2], 'b', ARGV[i + 3])
    i = i + 4
  elseif op == 'B' then
    local outbox = KEYS[tonumber(ARGV[i + 1])]
    local over = redis.call('XLEN', outbox) - tonumber(ARGV[i + 3])
    if over > 0 then
      redis.call('XTRIM', outbox, 'MAXLEN', ARGV[i + 3])
      redis.call('INCRBY', KEYS[tonumber(ARGV[i + 2])], over)
    end
    i = i + 4
  elseif op == 'A' then
    redis.call('SADD', KEYS[4], ARGV[i + 1]); i = i + 2
  elseif op == 'R' then
    redis.call('SREM', KEYS[4], ARGV[i + 1]); i = i + 2
  else
    return redis.error_reply('unknown commit op ' .. tostring(op))
  end
end
redis.call('SET', KEYS[2], ARGV[3])
if n > 0 then
  redis.call('XACK', KEYS[3], ARGV[4], unpack(ARGV, 7, 6 + n))
  -- Applied entries are no longer needed: keep the stream free of user data. Exact, not
  -- '~', so that every entry up to the checkpoint goes (MINID keeps ids >= its argument).
  local ms, seq = string.match(ARGV[3], '^(%d+)-(%d+)$')
  redis.call('XTRIM', KEYS[3], 'MINID', ms .. '-' .. (tonumber(seq) + 1))
end
return 1
""")

COMMITTED, LEASE_LOST, CHECKPOINT_MOVED, ENTRIES_MISSED = 1, 0, -1, -2


@dataclass(slots=True)
class Shard:
    """What a relay holds for one leased shard."""

    number: int
    book: RoomBook
    checkpoint: str  # "" before the first commit
    # After a takeover, first re-read what earlier holders were given but never acked.
    reading_pending: bool = True
    # Entries found pending under another relay since (one that held the shard and read
    # on, unaware it had lost it): the shard is read back before its next batch.
    stranded: bool = False
    stream: str = field(init=False)

    def __post_init__(self) -> None:
        self.stream = keys.shard_stream(self.number)


async def take_over(redis: RedisClient, relay_id: str, number: int, book: RoomBook) -> Shard:
    """Claim what the shard's previous holder read but left unacknowledged (its entries
    are read again, pending ones first: `Shard.reading_pending`), and read the shard back
    into the empty `book`."""
    stream = keys.shard_stream(number)
    try:
        await bounded(redis.xgroup_create(stream, keys.GROUP, id="0", mkstream=True), CALL_S)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    start = "0-0"
    while True:
        reply = await bounded(redis.xautoclaim(
            stream, keys.GROUP, relay_id, min_idle_time=0, start_id=start, count=1000,
        ), LOAD_S)
        start = reply[0]
        if start in (b"0-0", "0-0"):
            break
    return await load_shard(redis, number, book)


async def load_shard(redis: RedisClient, number: int, book: RoomBook) -> Shard:
    """Rebuild a shard's rooms into the empty `book`, and its checkpoint, from Redis (on
    takeover)."""
    # No transaction needed: we hold the lease, so no other relay commits meanwhile.
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.shard_checkpoint(number))
    pipe.smembers(keys.shard_rooms(number))
    pipe.hgetall(keys.frame_counters(number))
    pipe.hgetall(keys.room_lives(number))
    checkpoint, digests, counters, lives = await bounded(pipe.execute(), LOAD_S)
    frame_seqs = {conn.decode(): int(seq) for conn, seq in counters.items()}
    rooms = sorted(d.decode() for d in digests)
    pipe = redis.pipeline(transaction=False)
    for digest in rooms:
        pipe.hgetall(keys.room_members(number, digest))
    for digest, raw in zip(rooms, await bounded(pipe.execute(), LOAD_S), strict=True):
        if raw:
            life = lives.get(digest.encode())
            book.load(digest, {k.decode(): member_decoder.decode(v) for k, v in raw.items()},
                      frame_seqs, None if life is None else life_decoder.decode(life))
    return Shard(number, book, checkpoint.decode() if checkpoint else "")


class Committer:
    """Turns a batch's effects into one atomic script call per shard."""

    def __init__(self, relay_id: str, keep_frames: int, kept_ttl_ms: int,
                 webhook_backlog: int = 100_000) -> None:
        self.relay_id = relay_id
        self.keep_frames = keep_frames  # the newest frames a resumable peer's list keeps
        self.kept_ttl_ms = kept_ttl_ms  # and how long after the last one it stays
        self.webhook_backlog = webhook_backlog  # the outbox's bound

    def command(
        self, shard: Shard, first_new: str, new_checkpoint: str, ids: list[bytes],
        effects: list[Effect],
    ) -> bytes:
        """The shard's commit as one EVALSHA; its result is COMMITTED or why not."""
        number = shard.number
        key_indices: dict[str, int] = {}
        key_list = [
            keys.shard_lease(number),
            keys.shard_checkpoint(number),
            shard.stream,
            keys.shard_rooms(number),
            keys.frame_counters(number),
        ]

        def key_index(key: str) -> int:
            index = key_indices.get(key)
            if index is None:
                key_list.append(key)
                index = key_indices[key] = len(key_list)
            return index

        args: list[str | bytes | int] = [
            self.relay_id, shard.checkpoint, new_checkpoint, keys.GROUP, first_new,
            len(ids), *ids,
        ]
        prefix = keys.connection_channel(number, "")
        last_kept: dict[str, int] = {}  # peer -> its batch's last frame_seq, for 'T'
        hooked = False
        for effect in effects:
            if type(effect) is Publish:
                args += ("P", prefix + effect.channel, effect.payload)
            elif type(effect) is Keep:
                kept = key_index(keys.kept_frames(number, effect.conn))
                args += ("K", prefix + effect.channel if effect.channel else "", kept,
                         effect.payload)
                last_kept[effect.conn] = effect.seq
            elif type(effect) is PutMember:
                args += ("H", key_index(keys.room_members(number, effect.room)), effect.conn,
                         _member_encoder.encode(effect.member))
            elif type(effect) is DropMember:
                args += ("D", key_index(keys.room_members(number, effect.room)), effect.conn)
            elif type(effect) is Replay:
                args += ("Y", prefix + effect.channel,
                         key_index(keys.kept_frames(number, effect.conn)), effect.frames,
                         _REPLAY_BROKEN)
            elif type(effect) is DropKept:
                last_kept.pop(effect.conn, None)  # nothing of it may stay behind
                args += ("X", key_index(keys.kept_frames(number, effect.conn)), effect.conn)
            elif type(effect) is OpenRoom:
                args += ("A", effect.room)
            elif type(effect) is CloseRoom:
                args += ("R", effect.room)
            elif type(effect) is Hook:
                args += ("W", key_index(keys.webhook_outbox(number)), effect.room, effect.body)
                hooked = True
            elif type(effect) is PutLife:
                args += ("H", key_index(keys.room_lives(number)), effect.room,
                         life_encoder.encode(effect.life))
            elif type(effect) is DropLife:
                args += ("D", key_index(keys.room_lives(number)), effect.room)
        for conn, seq in last_kept.items():
            args += ("T", key_index(keys.kept_frames(number, conn)), conn, seq,
                     self.keep_frames, self.kept_ttl_ms)
        if hooked:
            args += ("B", key_index(keys.webhook_outbox(number)),
                     key_index(keys.webhooks_dropped(number)), self.webhook_backlog)
        return COMMIT.command(key_list, args)


_REPLAY_BROKEN = event_encoder.encode(ReplayBroken())
