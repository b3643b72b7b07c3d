"""Webhooks under churn and kills (docs/protocol.md, "Webhooks"): peers join, leave, close,
drop and resume, are removed by the app, and rooms hit deadlines, on 3 gateways and 2
relays of the test's own; in the middle a relay and a gateway are killed -9. Per room, the
events the receiver got read as lives: gap-free, in order, started first and finished
last, consistent with what the peers themselves saw, and no event came twice unless its
first delivery was in flight when its relay was killed (the receiver always answers 2xx,
so it provokes no retry)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import websockets

from tests.e2e.admin_support import ADMIN_KEY, Admin, room_path
from tests.e2e.hook_receiver import SECRET, HookReceiver
from tests.faults.support import private_cluster, record
from tests.peers import Peer
from tests.resume_support import ResumablePeer

ROOMS = 10
CHURN_S = 8.0
CLIENTS_PER_ROOM = 3  # at once: each leaves by one of the ways below, and another comes
LEASE_TTL_MS = 2000
ENV = {"SWITCHBOARD_WEBHOOK_SECRET": SECRET, "SWITCHBOARD_ADMIN_KEY": ADMIN_KEY,
       "SWITCHBOARD_RESUME_GRACE_S": "1", "SWITCHBOARD_GATEWAY_TTL_MS": "1500",
       "SWITCHBOARD_LEASE_TTL_MS": str(LEASE_TTL_MS)}
WAYS_OUT = ("leave", "close", "drop", "drop_and_resume", "removed")


@dataclass
class Seen:
    """What the peers themselves saw, per room: the ids they joined as."""

    joined: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    ways: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: int = 0  # clients whose gateway (or join) went with a kill


async def client(urls: list[str], admin: Admin, room: str, seen: Seen,
                 rng: random.Random) -> None:
    """One peer's life: join, stay a moment, go one of WAYS_OUT."""
    way = rng.choice(WAYS_OUT)
    url = rng.choice(urls)
    try:
        async with asyncio.timeout(20):
            if way.startswith("drop"):
                peer = await ResumablePeer.join(url, room)
                seen.joined[room].add(peer.id)
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                peer.drop()
                if way == "drop_and_resume":
                    await peer.resume(rng.choice(urls), timeout=15)
                    await asyncio.sleep(rng.uniform(0.05, 0.3))
                    await peer.close()
            else:
                plain = await Peer.connect(url)
                joined = await plain.join(room)
                seen.joined[room].add(joined["own_id"])
                await asyncio.sleep(rng.uniform(0.05, 0.5))
                if way == "leave":
                    await plain.send(event="leave_room")
                elif way == "removed":
                    await admin.call("POST", room_path(room, "remove"),
                                     {"peer_id": joined["own_id"]})
                await plain.close()
        seen.ways[way] += 1
    except (OSError, TimeoutError, AssertionError, websockets.ConnectionClosed,
            websockets.InvalidHandshake):
        # Its gateway was killed (mid-handshake: no HTTP answer), or its join waited
        # out a takeover.
        seen.failed += 1


async def churn(urls: list[str], admin: Admin, rooms: list[str], seen: Seen,
                until: float) -> None:
    rng = random.Random(7)

    async def room_churn(room: str, lane: int) -> None:
        lane_rng = random.Random(rng.random() + lane)
        while time.monotonic() < until:
            await client(urls, admin, room, seen, lane_rng)

    async def deadlines() -> None:
        # Now and then a room's deadline comes: every member leaves, `expired`.
        while time.monotonic() < until:
            await asyncio.sleep(1.0)
            room = rng.choice(rooms)
            await admin.call("PUT", room_path(room, "deadline"),
                             {"ends_at": int(time.time()) + 1})

    await asyncio.gather(deadlines(), *(room_churn(room, lane) for room in rooms
                                        for lane in range(CLIENTS_PER_ROOM)))


def lives_of(bodies: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A room's events by life (the id's first part), each in the order first received."""
    lives: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for body in bodies:
        lives[body["id"].rsplit("-", 1)[0]].append(body)
    return lives


async def test_every_room_life_reads_whole_and_in_order_through_kills(room: str) -> None:
    receiver = HookReceiver()
    await receiver.start()
    rooms = [f"{room}-{n}" for n in range(ROOMS)]
    with private_cluster(gateways=2, relays=2, **ENV,
                         SWITCHBOARD_WEBHOOK_URL=receiver.url) as cluster:
        doomed, doomed_port = cluster.start_gateway()
        urls = [cluster.url(0), cluster.url(1), f"ws://127.0.0.1:{doomed_port}/"]
        admin = Admin(cluster.gateways[0][1])
        seen = Seen()
        started = time.monotonic()
        # A plain peer that stays on the gateway to be killed: its leave is `gateway_lost`
        # whatever the churn's own peers there happen to be doing at the kill.
        anchor = await Peer.connect(urls[2])
        seen.joined[rooms[0]].add((await anchor.join(rooms[0]))["own_id"])
        work = asyncio.ensure_future(churn(urls, admin, rooms, seen, started + CHURN_S))
        await asyncio.sleep(CHURN_S / 3)
        victim = cluster.relays[0]
        victim.signal(signal.SIGKILL)
        relay_killed = time.time()
        await asyncio.sleep(CHURN_S / 3)
        doomed.signal(signal.SIGKILL)
        await work
        assert await asyncio.to_thread(victim.wait, 5) == -signal.SIGKILL
        assert await asyncio.to_thread(doomed.wait, 5) == -signal.SIGKILL
        await anchor.ws.close()  # (its gateway is gone: nothing to say)
        cluster.relays.remove(victim)
        cluster.gateways.remove((doomed, doomed_port))

        def first_receipts() -> list[dict[str, Any]]:
            firsts: dict[str, dict[str, Any]] = {}
            for got in receiver.received:
                firsts.setdefault(got.body["id"], got.body)
            return list(firsts.values())

        def all_finished() -> bool:
            by_room: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for body in first_receipts():
                by_room[body["room"]].append(body)
            return set(by_room) == set(rooms) and all(
                life[-1]["type"] == "room.finished"
                for bodies in by_room.values() for life in lives_of(bodies).values())

        # Detached peers expire (1 s), the dead gateway's peers leave (1.5 s), the dead
        # relay's shards are taken over (2 s): then every life has finished.
        await receiver.until(all_finished, timeout=30)
        await receiver.stop()

    firsts = first_receipts()
    receipts = defaultdict(list)
    for index, got in enumerate(receiver.received):
        receipts[got.body["id"]].append(index)
    duplicated = [i for i, at in receipts.items() if len(at) > 1]
    lives = gaps = out_of_order = 0
    reasons: dict[str, int] = defaultdict(int)
    for name in rooms:
        by_life = lives_of([b for b in firsts if b["room"] == name])
        joined_in_room: set[str] = set()
        for life in by_life.values():
            lives += 1
            seqs = [b["room_seq"] for b in life]
            gaps += len(set(range(1, max(seqs) + 1)) - set(seqs))
            out_of_order += seqs != sorted(seqs)
            assert seqs == list(range(1, len(life) + 1)), (name, seqs)
            assert life[0]["type"] == "room.started" and life[-1]["type"] == "room.finished"
            assert all(b["type"] not in ("room.started", "room.finished") for b in life[1:-1])
            joins = [b["peer_id"] for b in life if b["type"] == "peer.joined"]
            leaves = [b["peer_id"] for b in life if b["type"] == "peer.left"]
            assert sorted(joins) == sorted(leaves) and len(set(joins)) == len(joins), name
            assert life[-1]["joins"] == len(joins)
            joined_in_room.update(joins)
            for b in life:
                if b["type"] == "peer.left":
                    reasons[b["reason"]] += 1
        # Every peer that saw its joined_room is in the room's lives (a join whose answer
        # went with its gateway may be there too).
        assert seen.joined[name] <= joined_in_room, name
    assert receiver.bad_signatures == 0
    # A duplicate only of what was in flight when its relay died.
    unprovoked = [i for i in duplicated
                  if not any(abs(receiver.received[at].when - relay_killed) < 2
                             for at in receipts[i][:1])]
    record("webhook churn", fault="relay and gateway SIGKILL under churn", rooms=ROOMS,
           lives=lives, events=len(firsts), receipts=len(receiver.received), gaps=gaps,
           out_of_order=out_of_order, duplicates=len(duplicated),
           duplicates_not_in_flight_at_a_kill=len(unprovoked), reasons=dict(reasons),
           ways_out=dict(seen.ways), clients_lost_to_kills=seen.failed)
    assert gaps == 0 and out_of_order == 0 and not unprovoked
    for reason in ("left", "closed", "grace_expired", "gateway_lost", "removed", "expired"):
        assert reasons[reason] > 0, (reason, dict(reasons))
