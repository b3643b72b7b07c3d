"""Webhooks through faults of the app's endpoint (docs/protocol.md, "Webhooks"): down
(503, then refusing connections) and back, slower than SWITCHBOARD_WEBHOOK_TIMEOUT_MS,
failing past SWITCHBOARD_WEBHOOK_RETRY_S, and down while more events are recorded than
SWITCHBOARD_WEBHOOK_BACKLOG keeps. Each runs a cluster of its own whose relays POST to a
receiver of the test's own (a real HTTP server checking every signature), and shows what
the app would notice: which events arrive, in which order, under which ids; what the
relays' metrics and the Redis outbox say; and that signaling never waits for the app.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import pytest
from redis.asyncio import Redis

from harness.processes import Cluster, eventually, http_get
from shared import keys
from tests.e2e.hook_receiver import SECRET, HookReceiver
from tests.faults.support import private_cluster, record, tracebacks
from tests.peers import Peer

# Each test waits for retries whose backoff doubles (1, 2, 4... s): bounded well above them.
pytestmark = pytest.mark.timeout(120)

# Well above what a join or a message takes on loopback (milliseconds), well below what
# waiting for the app would cost (its timeout, or the retries' backoff of 1 s and more).
FAST_S = 1.0


# --- the app's endpoint ----------------------------------------------------------------


@dataclass
class Attempt:
    """One POST as the endpoint saw it: when (monotonic and unix seconds), the verified
    body, and the status it answered (None: not yet, or too late: past the relay's
    timeout)."""

    at: float
    wall: float
    body: dict[str, Any]
    status: int | None


# How the endpoint treats a verified body: the status it answers, None for "too late".
Respond = Callable[[dict[str, Any]], Awaitable[int | None]]


@dataclass
class Endpoint(HookReceiver):
    """The receiver, recording every attempt with its answer (`status`, or what `respond`
    says), and able to go away (its listening socket and kept-alive connections closed:
    connections are refused) and come back on the same port."""

    status: int = 200
    respond: Respond | None = None
    attempts: list[Attempt] = field(default_factory=list)
    _connections: dict[asyncio.StreamWriter, asyncio.Task[Any]] = field(
        default_factory=dict)

    def __post_init__(self) -> None:
        self.answer = self._answer

    async def _answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        attempt = Attempt(time.monotonic(), time.time(), body, None)
        self.attempts.append(attempt)
        attempt.status = self.status if self.respond is None else await self.respond(body)
        return attempt.status or 200, {}

    async def _serve(self, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[writer] = task
        try:
            await super()._serve(reader, writer)
        finally:
            del self._connections[writer]

    async def go_away(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._connections:
            writer.close()
        if self._connections:  # their handlers see the end of their connections
            await asyncio.wait(self._connections.values(), timeout=5)
        await self._server.wait_closed()

    async def come_back(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def delivered(self, room: str) -> list[dict[str, Any]]:
        """The room's bodies answered 2xx, in the order they came."""
        return [a.body for a in self.attempts
                if a.body["room"] == room and a.status is not None and 200 <= a.status < 300]

    def failed(self) -> list[Attempt]:
        return [a for a in self.attempts if a.status is None or not 200 <= a.status < 300]

    def finished(self, *rooms: str) -> bool:
        return all(any(b["type"] == "room.finished" for b in self.delivered(room))
                   for room in rooms)


@asynccontextmanager
async def endpoint_and_cluster(gateways: int, relays: int, **env: str
                               ) -> AsyncIterator[tuple[Endpoint, Cluster]]:
    """An endpoint, and a cluster of its own POSTing webhooks to it."""
    endpoint = Endpoint()
    await endpoint.start()
    try:
        with private_cluster(gateways, relays, SWITCHBOARD_WEBHOOK_URL=endpoint.url,
                             SWITCHBOARD_WEBHOOK_SECRET=SECRET, **env) as cluster:
            yield endpoint, cluster
            assert endpoint.bad_signatures == 0
            assert tracebacks(cluster) == {}
    finally:
        await endpoint.go_away()


# --- what the relays and Redis say ------------------------------------------------------


async def relay_metrics(cluster: Cluster) -> Counter[str]:
    """Every sample of the relays' /metrics, summed over the relays."""
    summed: Counter[str] = Counter()
    for process in cluster.relays:
        status, _, text = await asyncio.to_thread(
            http_get, cluster.relay_health_ports[process.pid], "/metrics")
        assert status == 200
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                summed[name] += float(value)
    return summed


DELIVERED = 'switchboard_webhook_deliveries_total{outcome="delivered"}'
FAILED = 'switchboard_webhook_deliveries_total{outcome="failed"}'
TIMEOUT = 'switchboard_webhook_deliveries_total{outcome="timeout"}'
UNREACHABLE = 'switchboard_webhook_deliveries_total{outcome="unreachable"}'
DROPPED_WINDOW = 'switchboard_webhooks_dropped_total{reason="retry_window"}'
DROPPED_BACKLOG = 'switchboard_webhooks_dropped_total{reason="backlog"}'
BACKLOG = "switchboard_webhook_backlog"


async def metric_reaches(cluster: Cluster, name: str, value: float, timeout: float) -> None:
    async def reached() -> bool:
        return (await relay_metrics(cluster))[name] == value

    await eventually(reached, timeout, f"{name} == {value}")


def bounded_redis(cluster: Cluster) -> Redis:
    """The test's own client of the cluster's Redis. Every reply is awaited at most 5 s,
    and a call that waited so long is sent again on a new connection (redis-py's retry):
    a fresh-clone CI run once stalled for two minutes inside this file's polling, with
    every other wait here bounded."""
    return Redis.from_url(cluster.redis.url, socket_timeout=5, socket_connect_timeout=5)


async def outbox_lengths(redis: Redis) -> dict[str, int]:
    """XLEN of every shard's webhook outbox."""
    return {key.decode(): await redis.xlen(key)
            async for key in redis.scan_iter(match="sig:hooks:*")}


# --- traffic ----------------------------------------------------------------------------


async def timed(rtts: list[tuple[float, float]], step: Awaitable[Any]) -> Any:
    """Await `step`, recording when it started and how long it took."""
    started = time.monotonic()
    result = await step
    rtts.append((started, time.monotonic() - started))
    return result


async def a_room_lives(cluster: Cluster, room: str,
                       rtts: list[tuple[float, float]]) -> tuple[str, str]:
    """Two peers join `room` (on different gateways when there are two), one messages
    the other, the second leaves, then the first: six events, started, joined, joined,
    left, left, finished. The joins' and the message's round trips go to `rtts`."""
    a = await Peer.connect(cluster.url(0))
    b = await Peer.connect(cluster.url(len(cluster.gateways) - 1))
    try:
        await timed(rtts, a.join(room))
        await timed(rtts, b.join(room))
        await a.expect("new_peer")
        assert a.id is not None and b.id is not None
        await b.send(event="send_to_peer", peer_id=a.id, data={"event": "message", "n": 1})
        frame = await timed(rtts, a.expect("message"))
        assert frame == {"event": "message", "n": 1, "sender_id": b.id}
        await b.send(event="leave_room")
        await a.expect("peer_left")
        await a.send(event="leave_room")
        await a.assert_alive()
        return a.id, b.id
    finally:
        await a.close()
        await b.close()


def life(a: str, b: str) -> list[tuple[Any, ...]]:
    """The events of `a_room_lives`, as `brief` shows them."""
    return [("room.started",), ("peer.joined", a), ("peer.joined", b), ("peer.left", b),
            ("peer.left", a), ("room.finished",)]


def brief(bodies: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(b["type"], b["peer_id"]) if "peer_id" in b else (b["type"],) for b in bodies]


def in_order(bodies: list[dict[str, Any]]) -> None:
    """One life of a room, delivered once each, as the app counts on: numbered 1..n without
    a gap, started first, finished last, ids of their own."""
    assert [b["room_seq"] for b in bodies] == list(range(1, len(bodies) + 1)), bodies
    assert bodies[0]["type"] == "room.started" and bodies[-1]["type"] == "room.finished"
    assert len({b["id"] for b in bodies}) == len(bodies)


# --- the tests --------------------------------------------------------------------------


async def test_an_endpoint_down_then_back_gets_every_event_in_order_under_its_ids(
        room: str) -> None:
    async with endpoint_and_cluster(2, 2) as (endpoint, cluster):
        endpoint.status = 503
        rtts: list[tuple[float, float]] = []
        # A room whose first event is refused: deliveries fail from here on.
        watched = f"{room}-w"
        watcher = await Peer.connect(cluster.url(0))
        await timed(rtts, watcher.join(watched))
        await endpoint.until(lambda: bool(endpoint.failed()))
        failing_since = endpoint.failed()[0].at

        # Three rooms live and finish meanwhile, their joins and messages as fast as ever.
        rooms = [f"{room}-{n}" for n in range(3)]
        members = await asyncio.gather(*(a_room_lives(cluster, r, rtts) for r in rooms))
        done = time.monotonic()
        await watcher.send(event="leave_room")
        await watcher.assert_alive()
        await watcher.close()
        # Still refused after the last round trip: the signaling did not wait for the app.
        await endpoint.until(lambda: endpoint.failed()[-1].at > done, timeout=10)
        assert all(a.status == 503 for a in endpoint.attempts)  # (none was delivered)

        # Then the endpoint goes away altogether: connections are refused...
        await endpoint.go_away()
        await eventually(lambda: _grown(cluster, UNREACHABLE), 10, "an unreachable endpoint")
        # ...and comes back: every event arrives.
        refused = await relay_metrics(cluster)
        endpoint.status = 200
        back = time.monotonic()
        await endpoint.come_back()
        await endpoint.until(lambda: endpoint.finished(watched, *rooms), timeout=20)
        caught_up = time.monotonic() - back

        assert brief(endpoint.delivered(watched)) == [
            ("room.started",), ("peer.joined", watcher.id), ("peer.left", watcher.id),
            ("room.finished",)]
        for name, (a, b) in zip(rooms, members, strict=True):
            assert brief(endpoint.delivered(name)) == life(a, b)
        everything: dict[str, dict[str, Any]] = {}
        for name in (watched, *rooms):
            bodies = endpoint.delivered(name)
            in_order(bodies)
            everything.update((b["id"], b) for b in bodies)
        # Every refused attempt was an event delivered since, under the same id, unchanged.
        failed = endpoint.failed()
        assert failed and {a.body["id"] for a in failed} <= set(everything)
        assert all(a.body == everything[a.body["id"]] for a in failed)
        assert all(r.headers["webhook-id"] == r.body["id"] for r in endpoint.received)
        # Each room's first event was the one retried: its room's next waited for it.
        assert {a.body["id"] for a in failed} == {
            endpoint.delivered(name)[0]["id"] for name in (watched, *rooms)}
        # Each event was delivered once, and the outboxes are empty.
        ok = [a for a in endpoint.attempts if a.status == 200]
        assert len(ok) == len(everything) == 4 + 6 * 3
        metrics = await relay_metrics(cluster)
        assert metrics[DELIVERED] == len(everything)
        assert metrics[FAILED] == len(failed)
        assert refused[UNREACHABLE] >= 1
        assert metrics[DROPPED_WINDOW] == metrics[DROPPED_BACKLOG] == 0
        await metric_reaches(cluster, BACKLOG, 0, 5)

        slowest = max(rtt for _, rtt in rtts)
        assert all(failing_since < started for started, _ in rtts[1:])
        assert slowest < FAST_S, rtts
        record("test_an_endpoint_down_then_back_gets_every_event_in_order_under_its_ids",
               fault="webhook endpoint 503 then refusing, then back", events=len(everything),
               refused_attempts=len(failed), unreachable=int(refused[UNREACHABLE]),
               round_trips=len(rtts), slowest_round_trip_s=round(slowest, 3),
               caught_up_s=round(caught_up, 2))


async def _grown(cluster: Cluster, name: str) -> bool:
    return (await relay_metrics(cluster))[name] > 0


TIMEOUT_MS = 300


async def test_a_slow_endpoint_is_retried_under_the_same_id_in_order(room: str) -> None:
    async with endpoint_and_cluster(2, 2, SWITCHBOARD_WEBHOOK_TIMEOUT_MS=str(TIMEOUT_MS)
                                    ) as (endpoint, cluster):
        delayed: set[str] = set()

        async def slow_once(body: dict[str, Any]) -> int | None:
            """Each id's first POST answered after 1 s (past the relays' timeout)."""
            if body["id"] in delayed:
                return 200
            delayed.add(body["id"])
            await asyncio.sleep(1.0)
            return None

        endpoint.respond = slow_once
        rtts: list[tuple[float, float]] = []
        rooms = [f"{room}-{n}" for n in range(2)]
        members = await asyncio.gather(*(a_room_lives(cluster, r, rtts) for r in rooms))
        await endpoint.until(lambda: endpoint.finished(*rooms), timeout=25)

        for name, (a, b) in zip(rooms, members, strict=True):
            bodies = endpoint.delivered(name)
            assert brief(bodies) == life(a, b)
            in_order(bodies)
            # Each event twice, the late attempt then its retry: same id, same body, and
            # the room's next event only after the retry was answered.
            seen = [a.body for a in endpoint.attempts if a.body["room"] == name]
            assert seen == [body for body in bodies for _ in range(2)]
        attempts = Counter(a.body["id"] for a in endpoint.attempts)
        assert {id for id, n in attempts.items() if n > 1} == delayed
        assert set(attempts.values()) == {2}
        assert all(a.headers["webhook-id"] == a.body["id"] for a in endpoint.received)
        events = len(attempts)
        assert events == 12
        await metric_reaches(cluster, TIMEOUT, events, 5)
        metrics = await relay_metrics(cluster)
        assert metrics[DELIVERED] == events and metrics[FAILED] == 0
        assert metrics[DROPPED_WINDOW] == metrics[DROPPED_BACKLOG] == 0
        slowest = max(rtt for _, rtt in rtts)
        assert slowest < FAST_S, rtts
        record("test_a_slow_endpoint_is_retried_under_the_same_id_in_order",
               fault="webhook endpoint slower than its timeout", timeout_ms=TIMEOUT_MS,
               events=events, timeouts=int(metrics[TIMEOUT]),
               slowest_round_trip_s=round(slowest, 3))


RETRY_S = 3


async def test_an_endpoint_failing_past_the_retry_window_loses_events_counted(
        room: str) -> None:
    async with endpoint_and_cluster(2, 2, SWITCHBOARD_WEBHOOK_RETRY_S=str(RETRY_S)
                                    ) as (endpoint, cluster):
        endpoint.status = 500
        redis = bounded_redis(cluster)
        try:
            rtts: list[tuple[float, float]] = []
            lost = [f"{room}-{n}" for n in range(2)]
            await asyncio.gather(*(a_room_lives(cluster, r, []) for r in lost))
            await endpoint.until(lambda: bool(endpoint.failed()))
            failing_since = endpoint.failed()[0].at
            # While those are retried, other peers join and talk as fast as ever.
            busy = f"{room}-busy"
            await a_room_lives(cluster, busy, rtts)
            done = time.monotonic()
            await endpoint.until(lambda: endpoint.failed()[-1].at > done, timeout=10)
            events = 6 * 3
            await metric_reaches(cluster, DROPPED_WINDOW, events, 5 + 2 * RETRY_S)
            dropped_after = time.monotonic() - done

            assert all(a.status == 500 for a in endpoint.attempts)
            tried = {a.body["id"]: a.body for a in endpoint.attempts}
            assert len(tried) == events  # each was tried before it was dropped
            for name in (*lost, busy):
                # ...in order: a room's next event not before the previous was given up
                seqs = [a.body["room_seq"] for a in endpoint.attempts
                        if a.body["room"] == name]
                assert seqs == sorted(seqs) and set(seqs) == set(range(1, 7)), seqs
            # No attempt after the event's window (a relay's clock is this machine's).
            late = [a for a in endpoint.attempts
                    if a.wall * 1000 > a.body["at"] + RETRY_S * 1000 + 500]
            assert not late, [(a.body["id"], a.wall * 1000 - a.body["at"]) for a in late]
            metrics = await relay_metrics(cluster)
            assert metrics[FAILED] == len(endpoint.attempts) and metrics[DELIVERED] == 0
            assert metrics[DROPPED_BACKLOG] == 0
            # Nothing is kept for them: the outboxes are empty.
            await metric_reaches(cluster, BACKLOG, 0, 5)
            lengths = await outbox_lengths(redis)
            assert lengths and set(lengths.values()) == {0}, lengths
            # Nothing arrives later either: a new event is the next thing the app gets.
            endpoint.status = 200
            seen = len(endpoint.attempts)
            after = f"{room}-after"
            async with _joined(cluster, after):
                await endpoint.until(lambda: bool(endpoint.delivered(after)), timeout=10)
            assert {a.body["room"] for a in endpoint.attempts[seen:]} == {after}

            slowest = max(rtt for _, rtt in rtts)
            assert all(failing_since < started for started, _ in rtts)
            assert slowest < FAST_S, rtts
            record("test_an_endpoint_failing_past_the_retry_window_loses_events_counted",
                   fault="webhook endpoint failing past the retry window", retry_s=RETRY_S,
                   events=events, attempts=seen, dropped_s_after_last=round(dropped_after, 2),
                   slowest_round_trip_s=round(slowest, 3))
        finally:
            await redis.aclose()


@asynccontextmanager
async def _joined(cluster: Cluster, room: str) -> AsyncIterator[Peer]:
    peer = await Peer.connect(cluster.url(0))
    try:
        await peer.join(room)
        yield peer
    finally:
        await peer.close()


BOUND = 5
OUTBOX, DROPS = keys.webhook_outbox(0), keys.webhooks_dropped(0)


@asynccontextmanager
async def watched_length(redis: Redis, key: str) -> AsyncIterator[list[int]]:
    """The longest `key` (a stream) was, sampled all along: [longest]."""
    longest = [0]

    async def sample() -> None:
        while True:
            longest[0] = max(longest[0], await redis.xlen(key))
            await asyncio.sleep(0.002)

    sampler = asyncio.create_task(sample())
    try:
        yield longest
    finally:
        sampler.cancel()
        with suppress(asyncio.CancelledError):
            await sampler


async def outbox_bodies(redis: Redis) -> list[dict[str, Any]]:
    return [json.loads(fields[b"b"]) for _, fields in await redis.xrange(OUTBOX)]


async def recorded(redis: Redis, count: int) -> None:
    """Until `count` events were recorded in the outbox (kept or dropped by its bound)."""
    async def all_there() -> bool:
        return await redis.xlen(OUTBOX) + int(await redis.get(DROPS) or 0) == count

    await eventually(all_there, 5, f"{count} events recorded")


async def emptied(redis: Redis) -> None:
    async def empty() -> bool:
        return await redis.xlen(OUTBOX) == 0

    await eventually(empty, 5, "an empty outbox")


async def test_a_full_outbox_drops_its_oldest_events_counted(room: str) -> None:
    async with endpoint_and_cluster(1, 1, SWITCHBOARD_SHARDS="1",
                                    SWITCHBOARD_WEBHOOK_BACKLOG=str(BOUND)
                                    ) as (endpoint, cluster):
        redis = bounded_redis(cluster)
        endpoint.status = 503
        try:
            rooms = [f"{room}-{n}" for n in range(3)]
            async with watched_length(redis, OUTBOX) as longest:
                for n, name in enumerate(rooms):
                    await a_room_lives(cluster, name, [])
                    await recorded(redis, 6 * (n + 1))
                    assert await redis.xlen(OUTBOX) == min(6 * (n + 1), BOUND)
            assert longest[0] == BOUND
            events = 6 * len(rooms)
            assert int(await redis.get(DROPS)) == events - BOUND
            await metric_reaches(cluster, DROPPED_BACKLOG, events - BOUND, 5)
            # The outbox keeps the newest: the last room's events but its first.
            kept = await outbox_bodies(redis)
            assert [(b["room"], b["room_seq"]) for b in kept] == [
                (rooms[-1], seq) for seq in range(2, 7)]

            endpoint.status = 200
            # The last room's first event may be waiting out its backoff (up to 32 s).
            await endpoint.until(lambda: endpoint.finished(rooms[-1]), timeout=45)
            await metric_reaches(cluster, BACKLOG, 0, 5)
            assert await redis.xlen(OUTBOX) == 0
            # The newest arrive, in order, unchanged...
            assert endpoint.delivered(rooms[-1])[-BOUND:] == kept
            # ...and of the oldest, dropped (and counted), none: not even a room's first,
            # which was being retried when the bound pushed it out.
            delivered = [a.body for a in endpoint.attempts if a.status == 200]
            assert [b for b in delivered if b not in kept] == []
            metrics = await relay_metrics(cluster)
            assert metrics[DELIVERED] == len(delivered) == BOUND
            record("test_a_full_outbox_drops_its_oldest_events_counted",
                   fault="webhook endpoint down past the outbox's bound", bound=BOUND,
                   events=events, longest_outbox=longest[0],
                   dropped=int(metrics[DROPPED_BACKLOG]), delivered=len(delivered))
        finally:
            await redis.aclose()


async def test_an_event_is_either_delivered_or_counted_as_dropped_not_both(
        room: str) -> None:
    async with endpoint_and_cluster(1, 1, SWITCHBOARD_SHARDS="1",
                                    SWITCHBOARD_WEBHOOK_BACKLOG="2") as (endpoint, cluster):
        redis = bounded_redis(cluster)
        endpoint.status = 503
        try:
            async with _joined(cluster, room) as first:
                await endpoint.until(lambda: bool(endpoint.attempts))  # room.started, refused
                async with _joined(cluster, room) as second:
                    await recorded(redis, 3)  # the outbox dropped room.started
                    kept = await outbox_bodies(redis)
                    assert [(b["type"], b["peer_id"]) for b in kept] == [
                        ("peer.joined", first.id), ("peer.joined", second.id)]
                    endpoint.status = 200
                    await endpoint.until(lambda: endpoint.delivered(room)[-1:] == kept[-1:])
                    # From here on the outbox never overflows (which the test below is
                    # about): the second leaves once it is empty, then the first.
                    await emptied(redis)
                await endpoint.until(lambda: endpoint.delivered(room)[-1]["type"] == "peer.left")
                await emptied(redis)
            await endpoint.until(lambda: endpoint.finished(room))
            events = 6  # started, joined, joined, left, left, finished

            async def accounted() -> bool:
                dropped = (await relay_metrics(cluster))[DROPPED_BACKLOG]
                return dropped + len(endpoint.delivered(room)) == events

            await eventually(accounted, 3, "delivered + dropped == recorded")
        finally:
            await redis.aclose()


async def test_an_outbox_overflowing_while_the_endpoint_answers_keeps_delivering(
        room: str) -> None:
    async with endpoint_and_cluster(2, 1, SWITCHBOARD_SHARDS="1",
                                    SWITCHBOARD_WEBHOOK_BACKLOG="2") as (endpoint, cluster):
        redis = bounded_redis(cluster)
        try:
            async def churn(wave: int, n: int) -> None:
                for k in range(15):
                    async with _joined(cluster, f"{room}-{wave}-{n}-{k}"):
                        pass

            async def heard_of(after: str) -> None:
                async with _joined(cluster, after):
                    await endpoint.until(lambda: bool(endpoint.delivered(after)), timeout=15)
                await endpoint.until(lambda: endpoint.finished(after), timeout=15)

            for wave in range(3):  # (one wave misses the race it shows about once in 15)
                # Far more events than the outbox holds, while deliveries go on...
                await asyncio.gather(*(churn(wave, n) for n in range(30)))
                assert int(await redis.get(DROPS) or 0) > 0
                # ...then a room begins: the app hears of it.
                await heard_of(f"{room}-{wave}-after")
            await metric_reaches(cluster, DROPPED_BACKLOG, int(await redis.get(DROPS)), 5)
        finally:
            await redis.aclose()


async def test_an_endpoint_back_up_gets_what_waited_at_once_not_after_its_backoff(
        room: str) -> None:
    """A room's event refused four times (1, 2 and 4 s apart) would next be tried 8 s
    later. The endpoint comes back meanwhile and answers another room's event: the waiting
    event goes at once, not 8 s later."""
    async with endpoint_and_cluster(1, 1) as (endpoint, cluster):
        endpoint.status = 503
        waiting_room, other_room = f"{room}-waiting", f"{room}-other"
        waiter = await Peer.connect(cluster.url(0))
        await waiter.join(waiting_room)
        await endpoint.until(lambda: len(endpoint.failed()) >= 4, timeout=15)
        last_refused = endpoint.failed()[-1].at
        endpoint.status = 200
        other = await Peer.connect(cluster.url(0))
        await other.join(other_room)
        await endpoint.until(lambda: bool(endpoint.delivered(other_room)), timeout=5)
        answered_other = time.monotonic()
        await endpoint.until(lambda: bool(endpoint.delivered(waiting_room)), timeout=5)
        delivered = next(a.at for a in endpoint.attempts if a.body["room"] == waiting_room
                         and a.status == 200)
        # Its backoff would have had it wait until last_refused + 8 s; woken, it goes
        # within WAKE_SPREAD_S (1 s, spread at random so that not all go at once).
        assert delivered - answered_other < 2.0
        assert delivered < last_refused + 6.0
        # And what came after it, in order.
        await endpoint.until(lambda: len(endpoint.delivered(waiting_room)) >= 2, timeout=5)
        assert [b["type"] for b in endpoint.delivered(waiting_room)][:2] == [
            "room.started", "peer.joined"]
        await waiter.close()
        await other.close()
