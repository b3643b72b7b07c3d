"""A relay is killed (SIGKILL) while its rooms are busy (docs/architecture.md, "A relay dies").

Required: another relay takes the dead relay's shards over within 5 s (the lease TTL,
SWITCHBOARD_LEASE_TTL_MS, 4 s by default, plus the 0.25 s between looks for free shards);
every event a gateway XADDed is applied exactly once:
no frame is lost, none is delivered twice, and per-sender order holds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from harness.processes import Cluster, Process, eventually
from shared import keys
from tests.faults.support import Member, kill_after_renewal, pid_of, record
from tests.peers import Peer

pytestmark = pytest.mark.timeout(90)

SHARDS = 64  # the default shard count, which own_cluster keeps
LEASE_TTL_S = 4.0  # the default SWITCHBOARD_LEASE_TTL_MS, which own_cluster keeps
TAKEOVER_BOUND_S = 5.0  # another relay takes its shards over within 5 s
RATE = 20.0  # messages per second per sender: far below the 50/s (burst 200) frame limit
ROOMS_PER_RELAY = 5  # rooms on the victim's shards, and as many on the survivor's
WARM_UP = 20  # messages on every (sender, target) stream before the kill
AFTER_TAKEOVER = 10  # and after the takeover


async def test_relay_sigkill_mid_traffic_loses_and_duplicates_nothing(
    own_cluster: Cluster,
) -> None:
    cluster = own_cluster
    redis = Redis.from_url(cluster.redis.url)
    lease_keys = keys.all_leases(SHARDS)
    relay_pids = {relay.pid for relay in cluster.relays}

    async def holders() -> list[str | None]:
        return [h.decode() if h else None for h in await redis.mget(lease_keys)]

    async def balanced() -> bool:
        held = Counter(await holders())
        return held[None] == 0 and len(held) == 2 and set(held.values()) == {SHARDS // 2}

    everyone: list[Member] = []
    try:
        await eventually(balanced, 20, "both relays to hold half of the shards each")
        victim: Process = cluster.relays[0]
        lease_of = await holders()
        victim_id = next(h for h in lease_of if h and pid_of(h) == victim.pid)
        assert {pid_of(h) for h in lease_of if h} == relay_pids

        # Rooms: as many on the victim's shards ("affected") as on the survivor's.
        affected: list[str] = []
        spared: list[str] = []
        n = 0
        while len(affected) < ROOMS_PER_RELAY or len(spared) < ROOMS_PER_RELAY:
            name = f"failover-{os.getpid()}-{n}"
            n += 1
            shard = keys.shard_of(keys.room_digest(name), SHARDS)
            side = affected if lease_of[shard] == victim_id else spared
            if len(side) < ROOMS_PER_RELAY:
                side.append(name)
        rooms = affected + spared

        # 3 talkers in every other room, 2 in the rest, alternating between the gateways.
        talkers: dict[str, list[Member]] = {}
        for r, room in enumerate(rooms):
            talkers[room] = []
            for j in range(3 if r % 2 == 0 else 2):
                peer = await Peer.connect(cluster.url((r + j) % 2))
                await peer.join(room)
                talkers[room].append(Member(f"{room}/t{j}", room, peer))
        # Join and leave events issued around the kill, all in affected rooms: members that
        # leave (one by leave_room, one by closing its socket) and sockets that join.
        leavers = []
        for k, room in enumerate(affected[:2]):
            peer = await Peer.connect(cluster.url(k % 2))
            await peer.join(room)
            leavers.append(Member(f"{room}/leaver", room, peer))
        joiners = []
        for k, room in enumerate([affected[2], affected[3], affected[0]]):
            peer = await Peer.connect(cluster.url(k % 2))
            joiners.append(Member(f"{room}/joiner{k}", room, peer))
        everyone += [m for ms in talkers.values() for m in ms] + leavers + joiners
        for member in everyone:
            member.start_reading()

        # Every talker sends to every other talker of its room, round robin, at RATE/s:
        # data {"event": "message", "n": k, "t": send time}, k counting per (sender, target).
        sent: dict[tuple[str, str], list[float]] = {}
        stop = asyncio.Event()

        async def talk(sender: Member, targets: list[Member]) -> None:
            loop = asyncio.get_running_loop()
            for target in targets:
                sent[(sender.id, target.id)] = []
            due = loop.time()
            i = 0
            while not stop.is_set():
                target = targets[i % len(targets)]
                i += 1
                times = sent[(sender.id, target.id)]
                now = time.monotonic()
                await sender.peer.send(event="send_to_peer", peer_id=target.id,
                                       data={"event": "message", "n": len(times), "t": now})
                times.append(now)
                due = max(due + 1 / RATE, loop.time())  # a late loop does not catch up
                await asyncio.sleep(due - loop.time())  # pacing, not a wait
            for target in targets:  # end of stream: everything before it was sent
                await sender.peer.send(event="send_to_peer", peer_id=target.id,
                                       data={"event": "message", "fin": True})

        talking = [asyncio.create_task(talk(m, [t for t in ms if t is not m]))
                   for ms in talkers.values() for m in ms]

        def each_sent(more: int) -> Callable[[], bool]:
            """True once every (sender, target) stream has had `more` messages from now."""
            base = {pair: len(times) for pair, times in sent.items()}
            return lambda: len(sent) == pairs and all(
                len(times) >= base.get(pair, 0) + more for pair, times in sent.items())

        # Warm up, with one join shortly before the kill.
        pairs = sum(len(ms) * (len(ms) - 1) for ms in talkers.values())
        await eventually(each_sent(WARM_UP), 30, "the warm-up traffic")
        await joiners[0].peer.send(event="join_room", room_id=joiners[0].room)
        await eventually(each_sent(2), 5, "traffic after that join")

        # The worst moment: right after the victim renewed its leases, so that they live
        # on for nearly a full TTL after its death.
        watched = lease_keys[lease_of.index(victim_id)]
        killed_at, lease_left_s = await kill_after_renewal(
            victim, redis, watched, LEASE_TTL_S, "the victim to renew its leases")
        # Right after the kill, while the victim's shards have no relay: a join, a
        # leave_room, a join in the same room as that leave, and a socket that closes.
        await joiners[1].peer.send(event="join_room", room_id=joiners[1].room)
        await leavers[0].peer.send(event="leave_room")
        await joiners[2].peer.send(event="join_room", room_id=joiners[2].room)
        await leavers[1].peer.close()

        async def all_held_by_the_living() -> bool:
            now = await holders()
            return all(h is not None and h != victim_id for h in now)

        await eventually(all_held_by_the_living, 15, "the shards to be taken over")
        takeover_s = time.monotonic() - killed_at
        survivor_ids = {h for h in await holders()}
        affected_receivers = [m for room in affected for m in talkers[room]]

        def redelivered() -> bool:
            return any(frame.get("t", 0) > killed_at for m in affected_receivers
                       for _, frame in m.frames if frame.get("event") == "message")

        await eventually(redelivered, 10, "a frame sent after the kill to arrive")
        await eventually(each_sent(AFTER_TAKEOVER), 10, "traffic after the takeover")
        stop.set()
        await asyncio.gather(*talking)

        def all_fins() -> bool:
            return all(_fins(m) == len(talkers[m.room]) - 1
                       for ms in talkers.values() for m in ms)

        await eventually(all_fins, 15, "every sender's last message to arrive")
        # Everything the joiners and leavers caused must have arrived too: each talker
        # checks in with itself (send_to_peer to one's own id), which the relay applies
        # after every event XADDed before it in that room's shard.
        for ms in talkers.values():
            for m in ms:
                await m.peer.send(event="send_to_peer", peer_id=m.id,
                                  data={"event": "message", "barrier": True})
        await eventually(lambda: all(any(f.get("barrier") for f in m.events("message"))
                                     for ms in talkers.values() for m in ms),
                         10, "every talker's check-in")

        # Count every (sender, target) stream: sent, delivered, lost, duplicated, reordered.
        delivered: dict[tuple[str, str], list[tuple[float, int, float]]] = {p: [] for p in sent}
        errors = []
        for member in everyone:
            for at, frame in member.frames:
                if frame.get("event") == "error":
                    errors.append((member.name, frame))
                if frame.get("event") == "message" and "n" in frame:
                    delivered.setdefault((frame["sender_id"], member.id), []).append(
                        (at, frame["n"], frame["t"]))
        total_sent = sum(len(times) for times in sent.values())
        total_delivered = sum(len(got) for got in delivered.values())
        lost = duplicated = reordered = 0
        broken_pairs = []
        for pair, times in sent.items():
            numbers = [n for _, n, _ in delivered[pair]]
            unique = set(numbers)
            lost += len(set(range(len(times))) - unique)
            duplicated += len(numbers) - len(unique)
            reordered += sum(1 for a, b in zip(numbers, numbers[1:], strict=False) if b <= a)
            if numbers != list(range(len(times))):
                broken_pairs.append((pair, len(times), numbers[:5], len(numbers)))
        # The outage as a receiver in an affected room saw it: from the kill to the first
        # message delivered that was sent after the kill.
        first_again = min(at for m in affected_receivers for at, f in m.frames
                          if f.get("event") == "message" and f.get("t", 0) > killed_at)
        first_again_s = first_again - killed_at
        room_of = {m.id: m.room for ms in talkers.values() for m in ms}
        sent_during_outage = sum(1 for (sender, _), times in sent.items() for t in times
                                 if room_of[sender] in affected
                                 and killed_at < t < killed_at + takeover_s)

        record("test_relay_failover", fault="relay SIGKILL mid-traffic",
               rooms=len(rooms), senders=len(talking), rate_per_sender=RATE,
               lease_ttl_s=LEASE_TTL_S, lease_left_at_kill_s=lease_left_s,
               shards_taken_over_s=round(takeover_s, 3),
               first_delivery_after_kill_s=round(first_again_s, 3),
               frames_sent=total_sent, frames_delivered=total_delivered, frames_lost=lost,
               frames_duplicated=duplicated, frames_reordered=reordered,
               sent_while_shards_unowned=sent_during_outage,
               join_leave_events_around_kill=len(joiners) + len(leavers),
               errors=len(errors))

        # The shards: all held again, by living relays only, within the TTL and a margin.
        assert victim_id not in survivor_ids and None not in survivor_ids
        assert all(pid_of(h) in relay_pids - {victim.pid} for h in survivor_ids if h)
        assert takeover_s <= TAKEOVER_BOUND_S, (
            f"shards taken over {takeover_s:.2f} s after the kill")
        assert first_again_s <= TAKEOVER_BOUND_S + 0.5, (
            f"affected rooms delivered again {first_again_s:.2f} s after the kill")

        # The messages: each delivered exactly once, in order, with no error.
        assert sent_during_outage > 0, "nothing was sent while the shards had no relay"
        assert errors == [], errors[:5]
        assert (lost, duplicated, reordered) == (0, 0, 0), broken_pairs[:5]
        assert total_delivered == total_sent

        # Joins and leaves around the kill: each applied exactly once.
        for joiner in joiners:
            joined = joiner.events("joined_room")
            assert len(joined) == 1, (joiner.name, joiner.frames[:5])
            joiner.peer.id = joined[0]["own_id"]
            assert {t.id for t in talkers[joiner.room]} <= {
                p["peer_id"] for p in joined[0]["peers"]}
        for ms in talkers.values():
            for m in ms:
                new_peers = Counter(f["peer_id"] for f in m.events("new_peer"))
                left = Counter(f["sender_id"] for f in m.events("peer_left"))
                assert all(count == 1 for count in new_peers.values()), (m.name, new_peers)
                assert all(count == 1 for count in left.values()), (m.name, left)
                expected_new = {j.id for j in joiners if j.room == m.room} | {
                    o.id for o in talkers[m.room][talkers[m.room].index(m) + 1:]} | {
                    lv.id for lv in leavers if lv.room == m.room}
                assert set(new_peers) == expected_new, (m.name, new_peers, expected_new)
                assert set(left) == {lv.id for lv in leavers if lv.room == m.room}, (
                    m.name, left)
        # And in Redis each room holds exactly its members.
        for room in rooms:
            digest = keys.room_digest(room)
            stored = await redis.hkeys(keys.room_members(keys.shard_of(digest, SHARDS),
                                                         digest))
            expected = {m.id for m in talkers[room]} | {
                j.id for j in joiners if j.room == room}
            assert {k.decode() for k in stored} == expected, room
    finally:
        for member in everyone:
            await member.peer.close()
        await redis.aclose()


def _fins(member: Member) -> int:
    return sum(1 for f in member.events("message") if f.get("fin"))
