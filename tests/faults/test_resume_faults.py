"""Resume under faults (docs/protocol.md, "Resume"): the old socket's gateway killed
-9, a relay killed -9 while the peer is away, the grace period running out, more frames
than are kept. Each records sent / replayed / lost / duplicated, and nothing lost or
duplicated is allowed where a resume succeeds.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from gateway.resume_tokens import token_digest
from harness.processes import Cluster, eventually
from shared import keys
from shared.events import member_decoder
from tests.faults.support import kill_after_renewal, pid_of, private_cluster, record
from tests.peers import Peer
from tests.resume_support import ResumablePeer, Tally, pair, send_messages

pytestmark = pytest.mark.timeout(90)

SHARDS = 64
GRACE_S = 2.0
KEEP = 20


@pytest.fixture(scope="module")
def short_grace() -> Iterator[Cluster]:
    """A cluster with a short grace period and a small bound on kept frames."""
    with private_cluster(gateways=2, relays=2, SWITCHBOARD_RESUME_GRACE_S=str(GRACE_S),
                         SWITCHBOARD_RESUME_BUFFER_FRAMES=str(KEEP)) as cluster:
        yield cluster


@pytest.fixture
async def redis(short_grace: Cluster) -> AsyncIterator[Redis]:
    client = Redis.from_url(short_grace.redis.url)
    yield client
    await client.aclose()


async def no_trace_of(redis: Redis, room: str, conn: str) -> bool:
    shard = keys.shard_of(keys.room_digest(room), SHARDS)
    return not (await redis.exists(keys.kept_frames(shard, conn))
                or await redis.hexists(keys.frame_counters(shard), conn)
                or await redis.exists(keys.room_members(shard, keys.room_digest(room))))


# --- the grace period and the bound ----------------------------------------------------


async def test_past_the_grace_period_the_peer_leaves_and_cannot_resume(
        short_grace: Cluster, redis: Redis, room: str) -> None:
    a, b = await pair(short_grace, room)
    try:
        a.drop()
        dropped = time.monotonic()
        assert await b.recv(GRACE_S + 4) == {"event": "peer_left", "sender_id": a.id}
        waited = time.monotonic() - dropped
        assert await b.recv() == {"event": "host_changed", "host_id": b.id, "peers": []}
        assert waited >= GRACE_S - 0.1, f"left after {waited:.2f} s"
        late = await Peer.connect(short_grace.url(1))
        await late.send(event="resume", resume_token=a.token, last_frame_seq=a.last_seq)
        await late.expect_error("cannot resume", "resume")
        await late.close()
        await b.send(event="leave_room")
        await eventually(lambda: no_trace_of(redis, room, a.id), 5, "no key left behind")
        record("test_past_the_grace_period_the_peer_leaves_and_cannot_resume",
               fault="resume after the grace period", grace_s=GRACE_S,
               peer_left_after_s=round(waited, 2), sent=0, replayed=0, lost=0, duplicated=0)
    finally:
        await a.close()
        await b.close()


async def test_more_frames_than_are_kept_while_away_and_the_peer_leaves(
        short_grace: Cluster, redis: Redis, room: str) -> None:
    a, b = await pair(short_grace, room)
    tally = Tally()
    try:
        a.drop()
        # Make sure the drop is known before counting: b's own update comes back after it.
        await b.send(event="update_status", status={"name": "Bo"})
        await b.expect("peer_updated_status")
        await send_messages(b, a.id, tally, KEEP + 1)  # frame 1 was new_peer
        assert await b.recv() == {"event": "peer_left", "sender_id": a.id}
        other = await Peer.connect(short_grace.url(1))
        await other.send(event="resume", resume_token=a.token, last_frame_seq=a.last_seq)
        await other.expect_error("cannot resume", "resume")
        await other.close()
        record("test_more_frames_than_are_kept_while_away_and_the_peer_leaves",
               fault="more frames than kept while away", kept=KEEP, sent=len(tally.sent),
               replayed=0, lost=len(tally.sent), duplicated=0)
    finally:
        await a.close()
        await b.close()


async def test_a_resume_lacking_frames_no_longer_kept_is_refused(
        short_grace: Cluster, room: str) -> None:
    a, b = await pair(short_grace, room)
    tally = Tally()
    try:
        await send_messages(b, a.id, tally, KEEP + 5)
        await a.messages_until(tally, KEEP + 4)
        old = a.peer
        other = await Peer.connect(short_grace.url(1))
        # It names frame 1: frames 2.. are more than the bound, so 2 is no longer kept.
        await other.send(event="resume", resume_token=a.token, last_frame_seq=1)
        await other.expect_error("cannot resume", "resume")
        assert await b.recv() == {"event": "peer_left", "sender_id": a.id}
        await other.close()
        await old.close()
    finally:
        await b.close()


# --- the old socket's gateway killed -9 ------------------------------------------------


async def test_the_old_gateway_killed_while_frames_flow(room: str) -> None:
    """a and c (resumable) are on the gateway that dies, b on the other, sending to both
    all along. a resumes on the surviving gateway at once and misses nothing; c does not
    resume: it is detached when the dead gateway's heartbeat lapses (7 s), and leaves when
    its grace period is over. a is not removed then: it is on a living gateway."""
    with private_cluster(gateways=2, relays=2, SWITCHBOARD_RESUME_GRACE_S="3") as cluster:
        victim, _ = cluster.gateways[0]
        a = await ResumablePeer.join(cluster.url(0), room)
        c = await ResumablePeer.join(cluster.url(0), room)
        await a.expect("new_peer")
        b = await Peer.connect(cluster.url(1))
        await b.join(room)
        tally = Tally()
        stop = asyncio.Event()

        async def talk() -> None:
            while not stop.is_set():
                await send_messages(b, a.id, tally, 1)
                await b.send(event="send_to_peer", peer_id=c.id,
                             data={"event": "message", "to": "c"})
                await asyncio.sleep(0.02)  # ~50 frames/s: pacing, not a wait

        talking = asyncio.create_task(talk())
        try:
            await eventually(lambda: len(tally.sent) >= 20, 10, "traffic before the kill")
            await a.messages_until(tally, tally.sent[-1])  # more keep coming meanwhile
            victim.signal(signal.SIGKILL)
            killed = time.monotonic()
            assert await asyncio.to_thread(victim.wait, 5) == -signal.SIGKILL
            # Frames go on to a's dead socket for a while before it comes back.
            sent_at_kill = len(tally.sent)
            await eventually(lambda: len(tally.sent) >= sent_at_kill + 10, 10,
                             "traffic while a is away")
            tally.resuming()
            await a.resume(cluster.url(1))
            resumed_after = time.monotonic() - killed
            await eventually(lambda: len(tally.sent) >= tally.sent_at_resume + 20, 10,
                             "traffic after the resume")
            stop.set()
            await talking
            await a.messages_until(tally, tally.sent[-1])
            # c, which never came back, leaves after the heartbeat lapse and its grace.
            while (frame := await b.recv(20)) != {"event": "peer_left", "sender_id": c.id}:
                assert frame.get("sender_id") != a.id, frame
            c_left_after = time.monotonic() - killed
            # a is still a member: a frame still reaches it, and b saw no peer_left for it.
            await send_messages(b, a.id, tally, 1)
            await a.messages_until(tally, tally.sent[-1])
            await b.assert_alive()
            record("test_the_old_gateway_killed_while_frames_flow",
                   fault="old gateway SIGKILL, resumed on the other", **tally.figures(),
                   resumed_after_kill_s=round(resumed_after, 2),
                   unresumed_peer_left_after_s=round(c_left_after, 2))
            assert (tally.lost, tally.duplicated, tally.in_order) == (0, 0, True)
            assert tally.replayed >= 10
            assert c_left_after >= 3.0  # at least its grace period
        finally:
            stop.set()
            await talking
            for peer in (a, b, c):
                await peer.close()


# --- a relay killed -9 while the peer is away ------------------------------------------


async def test_a_relay_killed_while_the_peer_is_away(own_cluster: Cluster, room: str) -> None:
    cluster = own_cluster
    redis = Redis.from_url(cluster.redis.url)
    try:
        async def holders() -> list[str | None]:
            return [h.decode() if h else None
                    for h in await redis.mget(keys.all_leases(SHARDS))]

        async def balanced() -> bool:
            found = await holders()
            return None not in found and len(set(found)) == 2

        await eventually(balanced, 20, "both relays holding shards")
        lease_of = await holders()
        shard = keys.shard_of(keys.room_digest(room), SHARDS)
        holder = lease_of[shard]
        assert holder is not None
        victim = next(r for r in cluster.relays if r.pid == pid_of(holder))
        a, b = await pair(cluster, room)
        tally = Tally()
        await send_messages(b, a.id, tally, 5)
        await a.messages_until(tally, 4)
        a.drop()
        killed, _ = await kill_after_renewal(victim, redis, keys.shard_lease(shard), 5,
                                             "the room's relay to renew its lease")
        await send_messages(b, a.id, tally, 20)  # wait in the stream for the next holder
        tally.resuming()
        await a.resume(cluster.url(1), timeout=15)  # applied once another relay holds it
        resumed_after = time.monotonic() - killed
        await a.messages_until(tally, 24, timeout=15)
        await send_messages(b, a.id, tally, 5)
        await a.messages_until(tally, 29)
        record("test_a_relay_killed_while_the_peer_is_away",
               fault="relay SIGKILL while the peer is away", **tally.figures(),
               resumed_after_kill_s=round(resumed_after, 2))
        assert (tally.lost, tally.duplicated, tally.in_order) == (0, 0, True)
        assert tally.replayed == 20
        await b.assert_alive()
        await a.close()
        await b.close()
    finally:
        await redis.aclose()


# --- a resume's answer lost with its gateway ---------------------------------------------


async def test_a_resume_whose_gateway_dies_before_the_answer_is_read_is_taken_again(
        room: str) -> None:
    """a is away; its resume goes to gateway 0, whose relay applies it (spending a's token)
    and publishes the answer, and gateway 0 is killed -9 before a reads it. a, which has
    only the old token, resumes on gateway 1 with it: the service takes it once more, once
    the dead gateway's socket is known gone (until then `cannot resume`, which a client
    whose last attempt lost its answer retries), and a misses nothing (docs/protocol.md,
    "Resume")."""
    with private_cluster(gateways=2, relays=2, SWITCHBOARD_GATEWAY_TTL_MS="2000",
                         SWITCHBOARD_RESUME_GRACE_S="15") as cluster:
        redis = Redis.from_url(cluster.redis.url)
        victim, _ = cluster.gateways[0]
        a = await ResumablePeer.join(cluster.url(1), room)
        b = await Peer.connect(cluster.url(1))
        try:
            await b.join(room)
            await a.expect("new_peer")
            tally = Tally()
            a.drop()
            await send_messages(b, a.id, tally, 5)  # kept while a is away
            tally.resuming()
            shard = keys.shard_of(keys.room_digest(room), SHARDS)
            members = keys.room_members(shard, keys.room_digest(room))
            spent = token_digest(a.token)

            async def token_spent() -> bool:
                raw = await redis.hget(members, a.id)
                return raw is not None and member_decoder.decode(raw).token != spent

            lost = await Peer.connect(cluster.url(0))
            await lost.send(event="resume", resume_token=a.token, last_frame_seq=a.last_seq)
            await eventually(token_spent, 10, "the relay to apply the resume")
            victim.signal(signal.SIGKILL)  # the answer is never read
            killed = time.monotonic()
            assert await asyncio.to_thread(victim.wait, 5) == -signal.SIGKILL
            lost.ws.transport.abort()
            await send_messages(b, a.id, tally, 5)  # while the peer's socket is the dead one
            # The retry with the token the client has: `cannot resume` while the socket
            # that spent it may be alive, taken once the relays know that gateway is dead
            # (its heartbeat lapsed); then every frame a lacks, in order. A client retries
            # as the Python client does, every half second.
            refusals = 0
            while True:
                a.peer = await Peer.connect(cluster.url(1))
                a.peer.id = a.id
                await a.peer.send(event="resume", resume_token=a.token,
                                  last_frame_seq=a.last_seq)
                joined = await a.peer.recv()
                if joined["event"] == "joined_room":
                    break
                assert joined["message"] == "cannot resume", joined
                await a.peer.close()
                refusals += 1
                assert time.monotonic() - killed < 15, "the spent token was never taken again"
                await asyncio.sleep(0.5)  # a client's retry pace, as the Python client's
            assert joined["resumed"] is True and "frame_seq" not in joined
            a.token = joined["resume_token"]
            retried_after = time.monotonic() - killed
            assert joined["own_id"] == a.id
            await send_messages(b, a.id, tally, 5)
            await a.messages_until(tally, tally.sent[-1])
            record("test_a_resume_whose_gateway_dies_before_the_answer_is_read_is_taken_again",
                   fault="gateway SIGKILL between a resume's commit and its answer",
                   **tally.figures(), answered_after_kill_s=round(retried_after, 2),
                   refused_before=refusals)
            assert (tally.lost, tally.duplicated, tally.in_order) == (0, 0, True)
            # b saw nothing of it: no peer_left, no new_peer.
            await b.assert_nothing_pending()
        finally:
            await a.close()
            await b.close()
            await redis.aclose()
