"""Redis Cluster faults under traffic (docs/architecture.md, rules 5 and 9): a master killed -9
and failed over to its replica, and a busy shard's slot migrated with
`redis-cli --cluster reshard`.

Each test has a Redis Cluster of its own (three masters with a replica each, node timeout
2 s: harness/redis_cluster.py), since it kills or moves parts of it, and 2 gateways + 2
relays on it. In every room a pair of peers, one on each gateway, send numbered messages
both ways at a fixed cadence all along; a resumable peer closed with 1012 resumes, on the
other gateway first. Each (sender, receiver) stream is counted: sent, delivered, replayed
after a resume, lost, duplicated, reordered; the figures of each category of rooms are
recorded (tests/artifacts/faults.jsonl), and what every peer sent and got is kept beside
the processes' logs (talkers.json). A lost message is told apart by when it was sent:
before the kill (acknowledged by the dead master, maybe never replicated), or shortly
before its sender saw its own socket close (see IN_FLIGHT_S).

The master holding a gateway's heartbeat key killed, then a relay killed -9 and the old
master started again: see the last of these tests.

Required: rooms of a killed master's slots are served again within 10 s of
its kill -9, with no process restarted; rooms elsewhere lose nothing and keep their
sockets; a socket whose frames stop is closed with 1012, never left open with a gap;
nothing arrives twice or out of order; a migrated slot loses nothing from Redis, so its
resumable peers lack nothing once resumed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from socket import gethostname
from typing import Any

import pytest
import websockets
from redis.asyncio import RedisCluster as AsyncRedisCluster

from harness.processes import Cluster, Process, eventually, start_cluster
from harness.redis_cluster import RedisCluster, running_redis_cluster
from redis_io.clients import get_many
from shared import keys
from shared.close_codes import CloseCode
from tests.faults.support import processes, record
from tests.peers import Peer

pytestmark = pytest.mark.timeout(120)

SHARDS = 64  # the default shard count, which these processes keep
STEP_S = 0.02  # each peer sends a message every 20 ms (50/s)...
BUSY_STEP_S = 0.005  # ...and every 5 ms in the busy rooms of the migrated slot
WARM_UP_S = 1.5  # traffic before the fault
AFTER = 50  # messages every live sender sends once the last peer is back, before the end
RECOVERY_BOUND_S = 10.0  # service back within 10 s of a master's kill -9
RESUME_WITHIN_S = 12.0  # a closed resumable peer tries this long (its grace is 15 s)
RETRY_S = 0.2  # a client's pause between two attempts to resume or join
TRY_EVERY_S = 0.5  # the recovery probe starts a fresh pair this often...
MAX_TRIES_AT_ONCE = 12  # ...with at most this many waiting for their answers
# A message the sender wrote within this long before it saw its socket close 1012 may
# have reached the gateway after its close frame had gone out. The gateway now reads such
# frames on until the client's close frame (gateway/ws_connection.py, `read_on`) and
# relays them; a plain receiver whose own socket closed meanwhile cannot get them. They
# are counted apart, as `lost_in_flight_at_close`: during a slot migration a resumable
# sender's last messages before the 1012 (sent ~10 ms before it, so read while the socket
# was open) were still seen never to reach the relay, in 1 of 3 runs (left open).
IN_FLIGHT_S = 0.05
ENV = {"SWITCHBOARD_SHUTDOWN_SECONDS": "0", "SWITCHBOARD_FRAME_RATE": "1000",
       "SWITCHBOARD_FRAME_BURST": "1000", "SWITCHBOARD_WIRE_FRAME_RATE": "1000"}


# --- the services ----------------------------------------------------------------------


@contextmanager
def services(**env: str) -> Iterator[tuple[RedisCluster, Cluster]]:
    """A Redis Cluster of this test's own and 2 relays + 2 gateways on it; all stopped
    after (by pid), the processes' logs kept."""
    with running_redis_cluster() as redis:
        cluster = start_cluster(redis, gateways=2, relays=2, **{**ENV, **env})
        try:
            yield redis, cluster
        finally:
            cluster.stop()
            print(f"\nprocess logs in {cluster.workdir}")


async def both_relays_hold_half(redis: RedisCluster) -> None:
    """Before any traffic: shards still moving between the relays would blur what the
    fault did."""
    client = AsyncRedisCluster.from_url(redis.url)
    try:
        async def balanced() -> bool:
            held = Counter(await get_many(client, keys.all_leases(SHARDS), 5.0))
            return held[None] == 0 and len(held) == 2 and set(held.values()) == {SHARDS // 2}

        await eventually(balanced, 20, "both relays to hold half of the shards each")
    finally:
        await client.aclose()


def room_shard(room: str) -> int:
    return keys.shard_of(keys.room_digest(room), SHARDS)


def shard_masters(redis: RedisCluster) -> dict[int, int]:
    """The port of the master serving each shard now."""
    slots = {shard: redis.key_slot(keys.shard_stream(shard)) for shard in range(SHARDS)}
    owners = redis.masters_of_slots(slots.values())
    return {shard: owners[slot] for shard, slot in slots.items()}


def rooms_on(shards: Iterable[int], prefix: str) -> Iterator[str]:
    """Room names of this process whose shard is one of `shards`, endlessly."""
    wanted = set(shards)
    names = (f"{prefix}-{os.getpid()}-{n}" for n in itertools.count())
    return (room for room in names if room_shard(room) in wanted)


# --- a peer that talks all along -------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    n: int
    at: float  # monotonic seconds, once the socket took it
    socket: int  # which of the talker's sockets (0, then one more per resume)


@dataclass(frozen=True)
class Got:
    n: int
    at: float
    socket: int


@dataclass(frozen=True)
class Close:
    at: float  # when the client saw it
    code: int | None


class Talker:
    """One peer of a pair: sends `{"event": "message", "n": k}` to its partner every
    `step` seconds while its socket is up, and reads everything that comes, with the
    time. A resumable one closed with 1012 resumes (docs/protocol.md, "Resume") on the other
    gateway first, with the last frame_seq it got, as its client would; a plain one is
    done. frame_seq is recorded, not checked: after a master's death it may jump back."""

    def __init__(self, name: str, urls: list[str], home: int, resumable: bool,
                 step: float) -> None:
        self.name = name
        self.urls = urls
        self.home = home
        self.resumable = resumable
        self.step = step
        self.partner: Talker = self
        self.peer: Peer | None = None
        self.socket = 0
        self.id = ""
        self.token = ""
        self.last_seq = 0
        self.sent: list[Sent] = []
        self.got: list[Got] = []
        self.seqs: list[tuple[int, int]] = []  # (frame_seq, socket)
        self.closes: list[Close] = []
        self.resumed_at: dict[int, float] = {}  # socket -> when its joined_room came
        self.gateways: list[str] = [urls[home]]  # each socket's gateway
        self.resume_attempts = 0
        self.resume_errors: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []  # error frames on its sockets
        self.up = asyncio.Event()
        self.done = False  # closed for good (plain), or could not resume
        self.ending = False  # the test closes its socket now
        self.fin_sent = False
        self.fin_got = False
        self._reading: asyncio.Task[None] | None = None
        self.talking: asyncio.Task[None] | None = None

    async def join(self, room: str) -> None:
        self.peer = await Peer.connect(self.urls[self.home])
        frame: dict[str, Any] = {"event": "join_room", "room_id": room}
        if self.resumable:
            frame["resumable"] = True
        await self.peer.send(**frame)
        joined = await self.peer.expect("joined_room")
        self.id = joined["own_id"]
        self.token = joined.get("resume_token", "")
        self.peer.id = self.id
        self.up.set()

    def start(self, stop: asyncio.Event) -> None:
        self._reading = asyncio.create_task(self._read())
        self.talking = asyncio.create_task(self._talk(stop))

    async def _talk(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set() and not self.done:
            peer = self.peer
            if self.up.is_set() and peer is not None:
                n, socket = len(self.sent), self.socket
                try:
                    await peer.send(event="send_to_peer", peer_id=self.partner.id,
                                    data={"event": "message", "n": n})
                    self.sent.append(Sent(n, time.monotonic(), socket))
                except websockets.ConnectionClosed:
                    if self.peer is peer:
                        self.up.clear()  # the reader resumes, or finds it done
            due = max(due + self.step, loop.time())  # a late loop does not catch up
            await asyncio.sleep(due - loop.time())  # the cadence, not a wait
        if self.up.is_set() and self.peer is not None and not self.done:
            # After every numbered one, on the same socket: once it arrived, all did
            # that were not lost.
            try:
                await self.peer.send(event="send_to_peer", peer_id=self.partner.id,
                                     data={"event": "message", "fin": True})
                self.fin_sent = True
            except websockets.ConnectionClosed:
                pass

    async def _read(self) -> None:
        while True:
            peer, socket = self.peer, self.socket
            assert peer is not None
            try:
                async for raw in peer.ws:
                    self._take(json.loads(raw), socket)
            except websockets.ConnectionClosed:
                pass
            if self.ending:
                return
            self.closes.append(Close(time.monotonic(), peer.ws.close_code))
            self.up.clear()
            if not (self.resumable and peer.ws.close_code == CloseCode.SERVICE_RESTART
                    and await self._resume()):
                self.done = True
                return

    def _take(self, frame: dict[str, Any], socket: int) -> None:
        at = time.monotonic()
        if "frame_seq" in frame:
            self.seqs.append((frame["frame_seq"], socket))
            self.last_seq = frame["frame_seq"]
        event = frame.get("event")
        if event == "message":
            if "n" in frame:
                self.got.append(Got(frame["n"], at, socket))
            elif frame.get("fin"):
                self.fin_got = True
        elif event == "error":
            self.errors.append(frame)

    async def _resume(self) -> bool:
        """Resume on a new socket, the other gateway first, until it works or the
        grace period nears its end; False if it never did."""
        deadline = time.monotonic() + RESUME_WITHIN_S
        while time.monotonic() < deadline:
            url = self.urls[(self.home + 1 + self.resume_attempts) % len(self.urls)]
            self.resume_attempts += 1
            try:
                peer = await Peer.connect(url)
            except (OSError, websockets.InvalidHandshake, TimeoutError):
                await asyncio.sleep(RETRY_S)
                continue
            try:
                await peer.send(event="resume", resume_token=self.token,
                                last_frame_seq=self.last_seq)
                # Beyond the 8 s a gateway's XADD may wait for a failover.
                frame = await peer.recv(10.0)
            except (TimeoutError, websockets.ConnectionClosed):
                frame = {"event": "error", "message": "no answer"}
            if frame.get("event") == "joined_room" and frame.get("resumed"):
                self.token = frame["resume_token"]
                self.peer, self.socket = peer, self.socket + 1
                peer.id = self.id
                self.resumed_at[self.socket] = time.monotonic()
                self.gateways.append(url)
                self.up.set()
                return True
            self.resume_errors[str(frame.get("message", frame))] += 1
            await peer.close()
            if frame.get("message") == "cannot resume":
                return False  # refused by the relay: trying again cannot help
            await asyncio.sleep(RETRY_S)
        return False

    async def close(self) -> None:
        self.ending = True
        if self.peer is not None:
            await self.peer.close()
        tasks = [task for task in (self._reading, self.talking) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def closed_in_flight(self, sent: Sent, after: float | None) -> bool:
        """`sent` was written shortly before its socket closed 1012 (and after `after`)."""
        if sent.socket >= len(self.closes) or (after is not None and sent.at < after):
            return False
        close = self.closes[sent.socket]
        return close.code == CloseCode.SERVICE_RESTART and close.at - sent.at < IN_FLIGHT_S


@dataclass
class Pair:
    room: str
    kind: str  # plain or resumable
    a: Talker
    b: Talker

    @property
    def talkers(self) -> tuple[Talker, Talker]:
        return self.a, self.b


async def open_pair(urls: list[str], room: str, kind: str, step: float,
                    stop: asyncio.Event) -> Pair:
    """a on gateway 0, b on gateway 1, talking from now on."""
    resumable = kind == "resumable"
    a = Talker(f"{room}/a", urls, 0, resumable, step)
    b = Talker(f"{room}/b", urls, 1, resumable, step)
    await a.join(room)
    await b.join(room)
    a.partner, b.partner = b, a
    a.start(stop)
    b.start(stop)
    return Pair(room, kind, a, b)


async def finish(pairs: list[Pair], stop: asyncio.Event) -> None:
    """Stop the traffic, and wait until each receiver got its live partner's last word."""
    stop.set()
    everyone = [t for p in pairs for t in p.talkers]
    await asyncio.gather(*(t.talking for t in everyone if t.talking is not None))
    await eventually(lambda: all(t.fin_got for t in everyone
                                 if t.partner.fin_sent and not t.done),
                     15, "every live sender's last message to arrive")


def flowing_again(pairs: list[Pair]) -> Any:
    """True once, in each pair, each peer is done (closed for good) or has received a
    message its partner sent from now on (after a resume, if it had to)."""
    base = {t.name: len(t.sent) for p in pairs for t in p.talkers}

    def flowing() -> bool:
        return all(t.done or t.partner.done or any(
            got.n >= base[t.partner.name] for got in t.got[-5:])
            for p in pairs for t in p.talkers)

    return flowing


def each_sent(talkers: list[Talker], more: int) -> Any:
    """True once every live talker has sent `more` messages from now."""
    base = {t.name: len(t.sent) for t in talkers}
    return lambda: all(len(t.sent) >= base[t.name] + more for t in talkers if not t.done)


# --- counting ---------------------------------------------------------------------------


@dataclass
class Category:
    """The figures of one category of rooms, over all its (sender, receiver) streams."""

    streams: int = 0
    sent: int = 0
    delivered: int = 0
    replayed: int = 0
    lost: int = 0
    # Sent before the kill: to a resumable receiver, acknowledged by the dead master and
    # never replicated; to a plain one, also what its closed socket did not get.
    lost_before_kill: int = 0
    lost_in_flight_at_close: int = 0  # see IN_FLIGHT_S
    duplicated: int = 0
    reordered: int = 0
    holes_on_open_socket: int = 0  # a receiver's socket skipped messages and went on
    sockets_closed_1012: int = 0
    sockets_closed_other: int = 0
    resumed: int = 0
    resume_failed: int = 0
    resume_errors: Counter[str] = field(default_factory=Counter)
    error_frames: Counter[str] = field(default_factory=Counter)  # on the talkers' sockets
    frame_seq_gaps: int = 0
    frame_seq_repeats: int = 0
    lost_detail: list[str] = field(default_factory=list)

    def count(self, pairs: list[Pair], kill_at: float | None = None) -> Category:
        for pair in pairs:
            for sender in pair.talkers:
                self._stream(sender, sender.partner, kill_at)
            for talker in pair.talkers:
                self._talker(talker)
        return self

    def _stream(self, sender: Talker, receiver: Talker, kill_at: float | None) -> None:
        numbers = [got.n for got in receiver.got]
        unique = set(numbers)
        sent_at = {sent.n: sent.at for sent in sender.sent}
        self.streams += 1
        self.sent += len(sender.sent)
        self.delivered += len(numbers)
        self.duplicated += len(numbers) - len(unique)
        self.reordered += sum(1 for x, y in itertools.pairwise(numbers) if y <= x)
        self.replayed += sum(1 for got in receiver.got if got.socket in receiver.resumed_at
                             and sent_at[got.n] < receiver.resumed_at[got.socket])
        in_flight: set[int] = set()  # lost as the sender's socket closed: never read
        for sent in sender.sent:
            if sent.n in unique:
                continue
            self.lost += 1
            if kill_at is not None and sent.at < kill_at:
                self.lost_before_kill += 1
            elif sender.closed_in_flight(sent, kill_at):
                self.lost_in_flight_at_close += 1
                in_flight.add(sent.n)
            if len(self.lost_detail) < 12:
                close = (f"{1000 * (sender.closes[sent.socket].at - sent.at):.1f} ms before"
                         f" its socket closed" if sent.socket < len(sender.closes)
                         else "its socket stayed open")
                since = "" if kill_at is None else f"{1000 * (sent.at - kill_at):+.1f} ms from the kill, "
                self.lost_detail.append(f"{sender.name} n={sent.n}: {since}{close}")
        # A gap the receiver's socket skipped over is a hole of the delivery path, unless
        # every number in it was lost at the sender's close (counted above).
        by_socket: dict[int, list[int]] = {}
        for got in receiver.got:
            by_socket.setdefault(got.socket, []).append(got.n)
        self.holes_on_open_socket += sum(
            1 for ns in by_socket.values() for x, y in itertools.pairwise(ns)
            if y > x + 1 and not in_flight.issuperset(range(x + 1, y)))

    def _talker(self, talker: Talker) -> None:
        for close in talker.closes:
            if close.code == CloseCode.SERVICE_RESTART:
                self.sockets_closed_1012 += 1
            else:
                self.sockets_closed_other += 1
        self.resumed += len(talker.resumed_at)
        self.resume_failed += talker.resumable and talker.done
        self.resume_errors.update(talker.resume_errors)
        self.error_frames.update(f"{e.get('received_msg')}: {e.get('message')}"
                                 for e in talker.errors)
        seqs = [seq for seq, _ in talker.seqs]
        self.frame_seq_gaps += sum(1 for x, y in itertools.pairwise(seqs) if y > x + 1)
        self.frame_seq_repeats += sum(1 for x, y in itertools.pairwise(seqs) if y <= x)

    def figures(self) -> dict[str, Any]:
        out = {name: value for name, value in vars(self).items()
               if name not in ("resume_errors", "error_frames", "lost_detail")}
        out["resume_errors"] = dict(self.resume_errors)
        out["error_frames"] = dict(self.error_frames)
        out["lost_detail"] = self.lost_detail
        return out


def dump(pairs: list[Pair], cluster: Cluster, since: float) -> None:
    """What every talker sent and got, with times from `since`, beside the processes'
    logs (talkers.json): what an investigation starts from."""
    def rel(at: float) -> float:
        return round(1000 * (at - since), 2)  # ms

    talkers = {t.name: {
        "id": t.id, "gateways": t.gateways, "sent": [(x.n, rel(x.at), x.socket) for x in t.sent],
        "got": [(x.n, rel(x.at), x.socket) for x in t.got], "seqs": t.seqs,
        "closes": [(rel(c.at), c.code) for c in t.closes],
        "resumed_at": {k: rel(v) for k, v in t.resumed_at.items()}, "errors": t.errors,
    } for p in pairs for t in p.talkers}
    (cluster.workdir / "talkers.json").write_text(json.dumps(talkers))


def assert_untouched(pairs: list[Pair]) -> None:
    """Nothing closed, every message delivered once, in order (rule 5)."""
    for pair in pairs:
        for talker in pair.talkers:
            assert talker.closes == [], (talker.name, talker.closes)
            numbers = [got.n for got in talker.got]
            assert numbers == list(range(len(talker.partner.sent))), (
                talker.name, len(talker.partner.sent), _gaps(numbers))


def assert_closed_where_stopped(pairs: list[Pair]) -> None:
    """Plain peers: what arrived is an unbroken start of what was sent, and a receiver
    that missed anything was closed with 1012 (never a silent gap on an open socket)."""
    for pair in pairs:
        for talker in pair.talkers:
            numbers = [got.n for got in talker.got]
            assert numbers == list(range(len(numbers))), (talker.name, _gaps(numbers))
            assert all(c.code == CloseCode.SERVICE_RESTART for c in talker.closes), (
                talker.name, talker.closes)
            if len(numbers) < len(talker.partner.sent):
                assert talker.closes, (talker.name, "missed messages on an open socket")


def _gaps(numbers: list[int]) -> list[tuple[int, int]]:
    return [(x, y) for x, y in itertools.pairwise(numbers) if y != x + 1][:10]


async def first_exchange(urls: list[str], rooms: Iterator[str], since: float,
                         bound: float) -> tuple[float, int]:
    """Fresh pairs, one on each gateway, join a room of `rooms` (a new one each try) and
    one sends the other a message, until one pair can: how long after `since`, and in
    how many tries. A new try starts every `TRY_EVERY_S` while earlier ones wait for their
    answers (as users who give up and retry would), so a try that began before the
    service was back does not hide that it is. Fails past `bound` seconds."""
    failures: list[str] = []
    running: set[asyncio.Task[str | None]] = set()
    try:
        for attempt in itertools.count(1):
            running.add(asyncio.create_task(_try_pair(urls, next(rooms), since)))
            done, running = await asyncio.wait(running, timeout=TRY_EVERY_S,
                                               return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                failure = task.result()
                if failure is None:
                    return time.monotonic() - since, attempt
                failures.append(failure)
            waited = time.monotonic() - since
            assert waited < bound, f"no pair could talk in {waited:.1f} s: {failures}"
            if len(running) >= MAX_TRIES_AT_ONCE:
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
    raise AssertionError("unreachable")


async def _try_pair(urls: list[str], room: str, since: float) -> str | None:
    """One try of `first_exchange`: None when the message arrived, else what went wrong."""
    joined: list[Peer] = []
    began = time.monotonic() - since
    try:
        for url in urls[:2]:
            peer = await Peer.connect(url)
            joined.append(peer)
            await peer.join(room)
        a, b = joined
        await a.send(event="send_to_peer", peer_id=b.id,
                     data={"event": "message", "probe": True})
        if (await b.recv()).get("probe"):
            return None
        return f"{began:.1f} s: no probe"
    except (AssertionError, TimeoutError, OSError, websockets.ConnectionClosed,
            websockets.InvalidHandshake) as exc:
        # Refused (service unavailable), or not answered in time.
        return f"{began:.1f} s: {type(exc).__name__} {exc}"[:120]
    finally:
        for peer in joined:
            await peer.close()


# --- a master killed -9 -----------------------------------------------------------------


@pytest.mark.parametrize("wait_replicas", [0, 1], ids=["wait0", "wait1"])
async def test_master_killed_under_traffic(wait_replicas: int) -> None:
    fault = f"redis master kill -9 (WAIT {wait_replicas})"
    test = f"test_master_killed_under_traffic[wait{wait_replicas}]"
    with services(SWITCHBOARD_REDIS_WAIT_REPLICAS=str(wait_replicas)) as (redis, cluster):
        await both_relays_hold_half(redis)
        pids = [process.pid for process in processes(cluster)]
        urls = [cluster.url(0), cluster.url(1)]
        owner = shard_masters(redis)
        masters = redis.masters()
        assert len(masters) == 3 and set(owner.values()) == set(masters)
        # Not the node REDIS_URL names, so that what is measured is a failover alone.
        victim = next(port for port in masters if port != redis.nodes[0].port)
        stop = asyncio.Event()
        pairs: dict[int, list[Pair]] = {}
        for master in masters:
            names = rooms_on([s for s, m in owner.items() if m == master], f"m{master}")
            pairs[master] = [await open_pair(urls, next(names), kind, STEP_S, stop)
                             for kind in ("plain", "plain", "resumable", "resumable")]
        everyone = [pair for group in pairs.values() for pair in group]
        talkers = [t for pair in everyone for t in pair.talkers]
        try:
            await eventually(each_sent(talkers, int(WARM_UP_S / STEP_S)), 10,
                             "the traffic before the kill")
            killed_at = await asyncio.to_thread(redis.kill_master, victim)
            failover = asyncio.create_task(asyncio.to_thread(redis.wait_failover, victim))
            fresh = rooms_on([s for s, m in owner.items() if m == victim], f"fresh{victim}")
            recovery_s, tries = await first_exchange(urls, fresh, killed_at, RECOVERY_BOUND_S)
            _, failover_s = await failover
            failed = pairs[victim]
            await eventually(flowing_again(failed), RESUME_WITHIN_S + 11,
                             "the resumable peers to be back")
            await eventually(each_sent(talkers, AFTER), 10, "the traffic after the resumes")
            await finish(everyone, stop)
        finally:
            stop.set()
            for talker in talkers:
                await talker.close()

        dump(everyone, cluster, killed_at)
        alive = [process.alive() for process in processes(cluster)]
        surviving = [p for m, group in pairs.items() if m != victim for p in group]
        categories = {
            "surviving masters": Category().count(surviving, killed_at),
            "failed master, plain": Category().count(
                [p for p in failed if p.kind == "plain"], killed_at),
            "failed master, resumable": Category().count(
                [p for p in failed if p.kind == "resumable"], killed_at),
        }
        for category, tally in categories.items():
            record(test, fault=fault, category=category, rooms=tally.streams // 2,
                   **tally.figures(), recovery_s=round(recovery_s, 2),
                   recovery_tries=tries, redis_failover_s=round(failover_s, 2),
                   processes_alive=sum(alive))

        # No process was restarted, and elsewhere nothing happened.
        assert all(alive) and [p.pid for p in processes(cluster)] == pids
        assert_untouched(surviving)
        # On the failed master: plain peers lose only what their closed sockets missed.
        plain = categories["failed master, plain"]
        assert_closed_where_stopped([p for p in failed if p.kind == "plain"])
        assert (plain.duplicated, plain.reordered, plain.holes_on_open_socket) == (0, 0, 0)
        assert plain.sockets_closed_1012 == plain.streams  # both of every pair
        # Resumable peers: each closed 1012 and back (or refused, counted); nothing twice.
        resumable = categories["failed master, resumable"]
        assert resumable.sockets_closed_other == 0
        assert resumable.resumed + resumable.resume_failed == resumable.sockets_closed_1012
        assert (resumable.duplicated, resumable.reordered) == (0, 0), resumable.figures()
        # And the service was back in time.
        assert recovery_s < RECOVERY_BOUND_S, f"served again {recovery_s:.1f} s after the kill"


# --- a busy shard's slot migrated --------------------------------------------------------


async def test_busy_slot_migrated_under_traffic() -> None:
    fault = "redis-cli --cluster reshard of a busy shard's slot"
    test = "test_busy_slot_migrated_under_traffic"
    with services() as (redis, cluster):
        await both_relays_hold_half(redis)
        pids = [process.pid for process in processes(cluster)]
        urls = [cluster.url(0), cluster.url(1)]
        owner = shard_masters(redis)
        # The busy shard: the one whose slot is the lowest of a shard on its master, so
        # that a reshard from that master of as many slots as reach it (redis-cli takes
        # a source's lowest slots first) moves it and no other shard's.
        slot_of = {shard: redis.key_slot(keys.shard_stream(shard)) for shard in range(SHARDS)}

        def reach(shard: int) -> int:
            return sum(max(0, min(high, slot_of[shard]) - low + 1)
                       for low, high in redis.slot_ranges(owner[shard]))

        reaches = {shard: reach(shard) for shard in range(SHARDS)}
        busy = min(reaches, key=reaches.__getitem__)
        source = owner[busy]
        target = next(port for port in redis.masters() if port != source)
        moved = {s for s in range(SHARDS)
                 if owner[s] == source and slot_of[s] <= slot_of[busy]}
        assert moved == {busy}, moved
        stop = asyncio.Event()
        quiet_shards = [s for s in range(SHARDS) if s != busy]
        # Quiet rooms spread over the masters: the source's other slots, the target's, ...
        by_master = {m: rooms_on([s for s in quiet_shards if owner[s] == m], f"q{m}")
                     for m in redis.masters()}
        spread = itertools.cycle([source, target, *[m for m in by_master
                                                    if m not in (source, target)]])
        quiet = [await open_pair(urls, next(by_master[next(spread)]), kind, STEP_S, stop)
                 for kind in ("plain",) * 4 + ("resumable",) * 2]
        busy_names = rooms_on([busy], "busy")
        busy_plain = await open_pair(urls, next(busy_names), "plain", BUSY_STEP_S, stop)
        busy_resumable = await open_pair(urls, next(busy_names), "resumable", BUSY_STEP_S,
                                         stop)
        everyone = [*quiet, busy_plain, busy_resumable]
        talkers = [t for pair in everyone for t in pair.talkers]
        try:
            await eventually(each_sent(talkers, int(WARM_UP_S / STEP_S)), 10,
                             "the traffic before the migration")
            started = time.monotonic()
            await asyncio.to_thread(redis.reshard, source, target, reaches[busy])
            reshard_s = time.monotonic() - started
            assert redis.master_of_slot(slot_of[busy]) == target
            # Its peers carry on, or were closed (and the resumable ones are back).
            await eventually(flowing_again([busy_plain, busy_resumable]),
                             RESUME_WITHIN_S + 11, "the busy rooms to flow again")
            closes = [c.at for t in busy_plain.talkers for c in t.closes]
            plain_again_s: float | None = None
            if closes:  # a new pair must be able to talk there (fresh rooms of its
                # shard: the probe's tries overlap, and one room would mix their peers)
                plain_again_s, _ = await first_exchange(
                    urls, rooms_on([busy], f"again{busy}"), min(closes), RECOVERY_BOUND_S)
            await eventually(each_sent(talkers, AFTER), 10, "the traffic after the move")
            await finish(everyone, stop)
        finally:
            stop.set()
            for talker in talkers:
                await talker.close()

        dump(everyone, cluster, started)
        alive = [process.alive() for process in processes(cluster)]
        resumable_again_s = _flowing_again_s(busy_resumable)
        categories = {
            "slots not moved": Category().count(quiet),
            "moved slot, plain": Category().count([busy_plain]),
            "moved slot, resumable": Category().count([busy_resumable]),
        }
        for category, tally in categories.items():
            record(test, fault=fault, category=category, rooms=tally.streams // 2,
                   **tally.figures(), busy_shard=busy, busy_slot=slot_of[busy],
                   slots_moved=reaches[busy], reshard_s=round(reshard_s, 2),
                   busy_rate_per_peer=round(1 / BUSY_STEP_S),
                   plain_room_talks_again_s=_rounded(plain_again_s),
                   resumable_room_flows_again_s=_rounded(resumable_again_s),
                   processes_alive=sum(alive))

        assert all(alive) and [p.pid for p in processes(cluster)] == pids
        assert_untouched(quiet)
        plain = categories["moved slot, plain"]
        assert_closed_where_stopped([busy_plain])
        assert (plain.duplicated, plain.reordered, plain.holes_on_open_socket) == (0, 0, 0)
        # A migration loses nothing from Redis, and these peers resumed: the resume
        # replayed what they missed. They lack nothing but what their sender sent in its
        # socket's last moment before the 1012 (see IN_FLIGHT_S: left open).
        resumable = categories["moved slot, resumable"]
        assert resumable.sockets_closed_other == 0 and resumable.resume_failed == 0
        assert resumable.resumed == resumable.sockets_closed_1012
        assert (resumable.lost - resumable.lost_in_flight_at_close, resumable.duplicated,
                resumable.reordered, resumable.holes_on_open_socket) == (0, 0, 0, 0), \
            resumable.figures()
        assert (resumable.frame_seq_gaps, resumable.frame_seq_repeats) == (0, 0)


def _flowing_again_s(pair: Pair) -> float | None:
    """From the first close in `pair` to the first message, sent after its sender was
    back, that arrived (the later of both directions); None if nothing closed."""
    closes = [c.at for t in pair.talkers for c in t.closes]
    if not closes:
        return None
    firsts = []
    for receiver in pair.talkers:
        sender = receiver.partner
        back = max(sender.resumed_at.values(), default=0.0)
        sent_at = {sent.n: sent.at for sent in sender.sent}
        firsts.append(min((got.at for got in receiver.got if sent_at[got.n] > back),
                          default=float("nan")))
    return max(firsts) - min(closes)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 2)


# --- the whole cluster gone ---------------------------------------------------------------


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_processes_stop_on_sigterm_while_the_whole_cluster_is_down(outage: str) -> None:
    """With no node reachable, redis-py's cluster client raises an error that is no
    RedisError (from `initialize` up to redis-py 8.1, from every command since 8.2); it
    once killed the gateway's heartbeat task and made its SIGTERM hang. Nodes that accept
    connections but answer nothing (SIGSTOP) held calls instead. Either way a gateway that
    has a peer in a room, and a relay, must still stop at once."""
    with services() as (redis, cluster):
        [url] = [f"ws://127.0.0.1:{port}/" for _, port in cluster.gateways[:1]]
        peer = await Peer.connect(url)
        await peer.join("before-the-outage")
        nodes = [node.process for node in redis.nodes]
        try:
            if outage == "stopped":
                redis.stop()
                assert await peer.closed_with() == CloseCode.SERVICE_RESTART
            else:
                for node in nodes:
                    node.signal(signal.SIGSTOP)
            await eventually(lambda: _logged(cluster, "heartbeat failed", 2), 15,
                             "the gateway's heartbeat to fail twice (its task is alive)")
            for process in processes(cluster):
                started = time.monotonic()
                process.signal(signal.SIGTERM)
                await asyncio.to_thread(process.wait, 10)
                assert time.monotonic() - started < 5, f"{process.name} took long to stop"
        finally:
            for node in nodes:
                node.signal(signal.SIGCONT)
            await peer.close()


def _logged(cluster: Cluster, text: str, times: int) -> bool:
    """Whether every gateway's log has `text` at least `times` times."""
    return all(process.log().count(text) >= times for process, _ in cluster.gateways)


# --- the master of a gateway's heartbeat killed, then a relay, then that master back -----

# The failover must outlast the heartbeat's TTL: node timeout 3 s, so
# the promotion comes 3-5 s after the kill, and a TTL of 2 s, renewed every 0.67 s.
HEARTBEAT_TTL_MS = 2000
HEARTBEAT_NODE_TIMEOUT_MS = 3000


def _heartbeat_slot(redis: RedisCluster) -> tuple[str, int]:
    """One gateway's heartbeat key and its slot, moved off the node REDIS_URL names (so
    that what is killed is a failover alone) if it was there."""
    found = [key for port in redis.masters()
             for key in redis.cli(port, "keys", keys.gateway_alive("*")).split()]
    assert len(found) == 2, found
    key = sorted(found)[0]
    slot = redis.key_slot(key)
    if redis.master_of_slot(slot) == redis.nodes[0].port:
        redis.move_slot(slot, next(p for p in redis.masters() if p != redis.nodes[0].port))
    return key, slot


def _owner_of(cluster: Cluster, key: str) -> Process:
    """The gateway whose heartbeat `key` is: its id (shared/process_id.py) names its pid."""
    gateway_id = key.removeprefix(keys.gateway_alive(""))
    [owner] = [process for process, _ in cluster.gateways
               if gateway_id.startswith(f"gateway-{gethostname()}-{process.pid}-")]
    return owner


async def test_heartbeat_master_killed_then_a_relay_and_the_old_master_back() -> None:
    """The master holding a gateway's heartbeat key is killed -9 and
    its replica promoted after the key's TTL, while rooms on every master carry traffic:
    the rooms of the other masters keep their sockets and lose nothing (the gateway once
    closed all of its sockets 1012, and relays removed its peers while their sockets were
    open: sends answered `not in any room`, frames kept for a detached peer and never
    sent). Then a relay is killed -9 and the old master started again (a replica now):
    nothing sent after the promotion is lost, twice or out of order, nobody's id lost."""
    test = "test_heartbeat_master_killed_then_a_relay_and_the_old_master_back"
    env = {"SWITCHBOARD_GATEWAY_TTL_MS": str(HEARTBEAT_TTL_MS)}
    with running_redis_cluster(node_timeout_ms=HEARTBEAT_NODE_TIMEOUT_MS) as redis:
        cluster = start_cluster(redis, gateways=2, relays=2, **{**ENV, **env})
        try:
            await _heartbeat_scenario(test, redis, cluster)
        finally:
            cluster.stop()
            print(f"\nprocess logs in {cluster.workdir}")


async def _heartbeat_scenario(test: str, redis: RedisCluster, cluster: Cluster) -> None:
    await both_relays_hold_half(redis)
    key, slot = _heartbeat_slot(redis)
    victim = redis.master_of_slot(slot)
    urls = [cluster.url(0), cluster.url(1)]
    owner = shard_masters(redis)
    stop = asyncio.Event()
    pairs: dict[int, list[Pair]] = {}
    for master in redis.masters():
        names = rooms_on([s for s, m in owner.items() if m == master], f"h{master}")
        pairs[master] = [await open_pair(urls, next(names), kind, STEP_S, stop)
                         for kind in ("plain", "resumable", "resumable")]
    everyone = [pair for group in pairs.values() for pair in group]
    talkers = [t for pair in everyone for t in pair.talkers]
    failed = pairs[victim]
    surviving = [p for m, group in pairs.items() if m != victim for p in group]
    relay = cluster.relays[0]
    finished = True
    try:
        await eventually(each_sent(talkers, int(WARM_UP_S / STEP_S)), 10,
                         "the traffic before the kill")
        killed_at = await asyncio.to_thread(redis.kill_master, victim)
        _, failover_s = await asyncio.to_thread(redis.wait_failover, victim)
        promoted_at = killed_at + failover_s
        await eventually(flowing_again(failed), RESUME_WITHIN_S + 11,
                         "the failed master's resumable peers to be back")
        # Phase 1 ends here: the rooms of the other masters must not have noticed.
        phase1_closes = sum(len(t.closes) for p in surviving for t in p.talkers)
        await asyncio.sleep(max(0.0, promoted_at + 3.0 - time.monotonic()))
        relay.signal(signal.SIGKILL)
        relay_killed_at = time.monotonic()
        await asyncio.to_thread(relay.wait, 5)
        await asyncio.sleep(6.0)  # its shards are taken over (lease 4 s) meanwhile
        await asyncio.to_thread(redis.restart_node, victim)
        restarted_at = time.monotonic()
        await asyncio.sleep(6.0)
        await eventually(each_sent(talkers, AFTER), 15, "the traffic after the restart")
        try:
            await finish(everyone, stop)
        except AssertionError:
            finished = False
    finally:
        stop.set()
        for talker in talkers:
            await talker.close()

    dump(everyone, cluster, killed_at)
    lost_after = 0
    detail: list[str] = []
    for pair in everyone:
        for sender in pair.talkers:
            receiver = sender.partner
            got = {g.n for g in receiver.got}
            for sent in sender.sent:
                # (A plain receiver closed 1012 is gone: rule 5, checked below.)
                gone = not receiver.resumable and bool(receiver.closes)
                if (sent.at > promoted_at and sent.n not in got and not gone
                        and not sender.closed_in_flight(sent, promoted_at)):
                    lost_after += 1
                    if len(detail) < 12:
                        detail.append(f"{sender.name} n={sent.n} "
                                      f"{sent.at - killed_at:+.2f} s from the kill")
    categories = {
        "other masters": Category().count(surviving, killed_at),
        "failed master": Category().count(failed, killed_at),
    }
    for category, tally in categories.items():
        record(test, fault="heartbeat master kill -9, relay kill -9, old master back",
               category=category, rooms=tally.streams // 2, **tally.figures(),
               redis_failover_s=round(failover_s, 2),
               other_masters_sockets_closed_in_failover=phase1_closes,
               lost_sent_after_promotion=lost_after, lost_after_detail=detail,
               relay_killed_s=round(relay_killed_at - killed_at, 2),
               old_master_back_s=round(restarted_at - killed_at, 2),
               every_last_word_arrived=finished, heartbeat_key=key)
    # The scenario happened: the failover outlasted the key's TTL, and the gateway whose
    # key it was found it missing (and set it again, closing nothing).
    assert failover_s * 1000 > HEARTBEAT_TTL_MS, f"the failover took {failover_s:.2f} s"
    heartbeat_log = _owner_of(cluster, key).log()
    assert f"heartbeat {key} was missing" in heartbeat_log, heartbeat_log[-4000:]
    # Phase 1: the rooms on the other masters kept their sockets through the failover.
    assert phase1_closes == 0
    other = categories["other masters"]
    assert (other.sockets_closed_1012, other.sockets_closed_other, other.lost,
            other.duplicated, other.reordered) == (0, 0, 0, 0, 0), other.figures()
    # Phase 2: after the promotion nothing was lost, nobody's id was lost.
    assert finished and lost_after == 0, detail
    for tally in categories.values():
        assert (tally.duplicated, tally.reordered, tally.holes_on_open_socket,
                tally.resume_failed) == (0, 0, 0, 0), tally.figures()
        assert not tally.error_frames, tally.figures()
