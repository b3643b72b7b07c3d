"""The load generator: one worker process drives its slice of the clients of a scenario.

A worker is forked by bench.scenarios, runs uvloop, and talks to its parent over a pipe:

    worker -> ("ready", None)      its clients are connected (and joined), or it is set up
    parent -> ("go", t0_ns)        start at t0 (CLOCK_MONOTONIC, the same in every process)
    worker -> ("result", dict)     counts and latency samples, before any socket closes
    parent -> ("close", None)
    worker -> ("closed", None)     its sockets are closed; it exits
    worker -> ("failed", text)     at any point, instead of the above

The WebSocket client is picows (Cython, callback-based: no task or await per frame): on
this machine it needs about 2.5x less CPU per message than the `websockets` asyncio
client, and the load generator shares the 2 cores with the servers under test.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import traceback
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

import uvloop
from picows import WSCloseCode, WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

from bench.identities import join_token
from bench.protocols import ADAPTERS, HEARTBEAT_SECONDS, Adapter

_now = time.monotonic_ns
_TEXT = WSMsgType.TEXT
_LEAVE = b'{"event":"leave_room"}'  # Switchboard's (the churn runs on it alone)


@dataclass(frozen=True)
class Task:
    """What one worker does. Clients and pairs are dealt to workers by index modulo `workers`."""

    # "closed" (throughput), "paced" (latency, CPU), "storm", "idle", "rooms", "joins"
    kind: str
    protocol: str
    port: int
    tag: str  # unique per scenario run: room names and client ids start with it
    worker: int
    workers: int
    pairs: int = 0
    window: int = 8  # closed loop: messages in flight per direction
    rate: float = 0.0  # paced: messages/s offered by all workers together
    warmup: float = 1.0  # seconds sent but not measured
    seconds: float = 10.0  # measured seconds
    clients: int = 0  # storm, idle
    room_size: int = 4
    concurrency: int = 100  # connections being opened at once, by all workers together
    drain_timeout: float = 10.0
    topology: str | None = None  # rooms: "star", or None (mesh)
    resumable: bool = False  # joins ask for resume (Switchboard)
    ports: tuple[int, ...] = ()  # several gateways: clients go to each in turn
    # Set (the servers' SWITCHBOARD_JOIN_SECRET): every join carries a token for its room
    # with a user and its info (bench.identities); pairs mint theirs while setting up.
    join_secret: str = ""
    # Paced runs (Switchboard): besides the pairs, `churn_rooms` rooms of 2 (all workers
    # together) whose two members join and leave over and over, `churn_rate` joins/s in
    # all: every join and leave a room event (with webhooks on, a webhook each).
    churn_rate: float = 0.0
    churn_rooms: int = 0


class Run:
    """Measurement windows and tallies shared by the directions of one worker."""

    def __init__(self, closed: bool, window_start: int, window_end: int, stop: int) -> None:
        self.closed = closed
        self.window_start = window_start
        self.window_end = window_end
        self.stop = stop
        self.counted = 0  # closed loop: received within the window
        self.latencies = array("q")  # paced: ns, for messages sent within the window
        self.sent_in_window = 0


class Direction:
    """Messages from one client to another: sequence numbers, counts, the closed loop."""

    __slots__ = ("src", "template", "run", "sent", "received", "disorder")

    def __init__(self, src: Client, template: bytes, run: Run) -> None:
        self.src = src
        self.template = template
        self.run = run
        self.sent = 0
        self.received = 0
        self.disorder = 0

    def send(self) -> None:
        now = _now()
        transport = self.src.transport
        assert transport is not None
        transport.send(_TEXT, self.template % (self.sent, now))
        self.sent += 1
        run = self.run
        if run.window_start <= now < run.window_end:
            run.sent_in_window += 1

    def on_received(self, seq: int, sent_ns: int) -> None:
        now = _now()
        if seq != self.received:
            self.disorder += 1
        self.received += 1
        run = self.run
        if run.closed:
            if run.window_start <= now < run.window_end:
                run.counted += 1
            if now < run.stop:
                self.send()
        elif run.window_start <= sent_ns < run.window_end:
            run.latencies.append(now - sent_ns)


class Client(WSListener):
    """One WebSocket: decodes each frame once and hands it to the protocol adapter."""

    def __init__(self, adapter: Adapter, client_id: str, errors: list[str]) -> None:
        super().__init__()
        self.adapter = adapter
        self.client_id = client_id
        self.errors = errors
        self.transport: WSTransport | None = None
        self.own_id = ""
        self.room = ""
        self.peers: list[str] = []
        self.joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.joined_ns = 0
        self.frames = 0  # text frames received
        self.new_peers = 0
        self.last_event_ns = 0
        self.inbound: Direction | None = None
        self.closing = False
        # Set: an error before joined_room fails the join at once (instead of its timeout).
        self.refusable = False

    # picows callbacks
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is _TEXT:
            self.frames += 1
            self.adapter.dispatch(self, frame.get_payload_as_bytes())
        elif kind is WSMsgType.CLOSE:
            if not self.closing:
                self.errors.append(f"closed by the server: {frame.get_close_code()} "
                                   f"{frame.get_close_message()!r}")
                self.closing = True
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if not self.closing:
            self.errors.append("connection lost")
            self.closing = True

    # adapter callbacks
    def on_candidate(self, seq: int, sent_ns: int) -> None:
        inbound = self.inbound
        if inbound is None:
            self.errors.append("a candidate for a client that expects none")
            return
        inbound.on_received(seq, sent_ns)

    def on_joined(self, own_id: str, peers: list[str]) -> None:
        self.own_id = own_id
        self.peers = peers
        self.joined_ns = self.last_event_ns = _now()
        if not self.joined.done():
            self.joined.set_result(None)

    def on_new_peer(self, peer_id: str) -> None:
        self.new_peers += 1
        self.last_event_ns = _now()

    def on_error(self, text: str) -> None:
        self.errors.append(text)
        if self.refusable and not self.joined.done():
            self.joined.set_exception(ConnectionError(f"join refused: {text}"))

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.send(_TEXT, data)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None and not self.transport.is_disconnected:
            self.transport.send_close(WSCloseCode.OK)
            self.transport.disconnect()


class Worker:
    """The clients of one worker process and the scenario they run."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.adapter = ADAPTERS[task.protocol]
        self.errors: list[str] = []
        self.clients: list[Client] = []
        self.dealt = 0  # clients dealt to fronts in turn so far
        self.directions: list[Direction] = []
        self.connecting = asyncio.Semaphore(max(1, task.concurrency // task.workers))
        self.heartbeats: asyncio.Task[None] | None = None
        self.firsts: list[tuple[int, Client]] = []  # rooms: each room's first member
        self.run: Run | None = None
        self.users = itertools.count()  # join tokens: each join a user of its own
        self.joiners: list[tuple[int, int, Client]] = []  # joins: (room, size, client)
        self.warmed = 0  # joins: joins made before go, not timed
        self.churners: list[tuple[str, Client, Client]] = []  # churn: (room, a, b)
        self.churn = {"joins": 0, "leaves": 0, "late": 0}
        self.churn_latencies = array("q")

    async def connect(self, front: int | None = None) -> Client:
        """A new client, on the `front`th of several gateways (or front processes), else
        on the next in turn."""
        adapter, client_id = self.adapter, self.adapter.new_client_id()
        ports = self.task.ports
        if front is None:
            front = self.dealt
            self.dealt += 1  # now, not after the connect: others connect meanwhile
        port = ports[front % len(ports)] if ports else self.task.port
        url = adapter.url(port, client_id)
        _, listener = await ws_connect(lambda: Client(adapter, client_id, self.errors), url,
                                       websocket_handshake_timeout=30)
        if listener is None:  # picows gives no listener when the upgrade went wrong
            raise ConnectionError(f"no WebSocket on port {port}")
        client = cast(Client, listener)
        self.clients.append(client)
        return client

    async def join(self, room: str, topology: str | None = None,
                   front: int | None = None) -> Client:
        """Connect (to `front`, as `connect`) and join `room` (PeerJS: connect and wait for
        OPEN)."""
        task = self.task
        token = (join_token(room, f"{task.tag}-{task.worker}-{next(self.users)}",
                            task.join_secret) if task.join_secret else "")
        client = await self.connect(front)
        client.room = room
        frame = self.adapter.join_frame(room, topology, task.resumable, token)
        if frame is not None:
            client.send(frame)
        try:
            await asyncio.wait_for(client.joined, 30)
        except TimeoutError:
            raise TimeoutError("no reply to the join within 30 s") from None
        return client

    def start_heartbeats(self) -> None:
        if self.adapter.heartbeat is not None:
            self.heartbeats = asyncio.get_running_loop().create_task(self._heartbeats())

    async def _heartbeats(self) -> None:
        """Every client sends one every HEARTBEAT_SECONDS, a fifth of them each second."""
        heartbeat = self.adapter.heartbeat
        assert heartbeat is not None
        tick = 0
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS / 5)
            for client in self.clients[tick % 5::5]:
                if not client.closing:
                    client.send(heartbeat)
            tick += 1

    # pairs: throughput (closed loop) and fixed rate (paced)

    async def setup_pairs(self) -> None:
        task = self.task
        mine = range(task.worker, task.pairs, task.workers)
        await asyncio.gather(*(self._pair(f"{task.tag}-{index}", index) for index in mine))
        self.start_heartbeats()

    async def _pair(self, room: str, index: int) -> None:
        """The pair's two clients on different fronts of several: every front sends to
        every other, and as much as any other does."""
        fronts = max(1, len(self.task.ports))
        first = index % fronts
        second = (first + 1 + (index // fronts) % max(1, fronts - 1)) % fronts
        async with self.connecting:
            a = await self.join(room, front=first)
            b = await self.join(room, front=second)
        if self.adapter.has_rooms:
            await _poll(lambda: a.new_peers >= 1, 30, "new_peer")
        else:
            a.peers, b.peers = [b.own_id], [a.own_id]
        self.directions.append(Direction(a, self.adapter.candidate_template(b.own_id), _IDLE))
        self.directions.append(Direction(b, self.adapter.candidate_template(a.own_id), _IDLE))
        b.inbound, a.inbound = self.directions[-2], self.directions[-1]

    async def run_pairs(self, t0: int) -> dict[str, Any]:
        task = self.task
        start = t0 + int(task.warmup * 1e9)
        stop = start + int(task.seconds * 1e9)
        self.run = run = Run(task.kind == "closed", start, stop, stop)
        for direction in self.directions:
            direction.run = run
        usage = os.times()
        if run.closed:
            for direction in self.directions:
                for _ in range(task.window):
                    direction.send()
            await asyncio.sleep(max(0.0, (stop - _now()) / 1e9))
        else:
            churn = (asyncio.get_running_loop().create_task(self._churn(t0, stop))
                     if self.churners else None)
            await self._paced(t0, stop, task.rate / task.workers)
            if churn is not None:
                await churn
        await _poll(lambda: all(d.received >= d.sent for d in self.directions),
                    task.drain_timeout, None)
        after = os.times()
        sent = sum(d.sent for d in self.directions)
        received = sum(d.received for d in self.directions)
        return {"pairs": len(self.directions) // 2, "sent": sent, "received": received,
                # Counted per direction: an extra frame on one cannot hide a loss on another.
                "lost": sum(max(0, d.sent - d.received) for d in self.directions),
                "disorder": sum(d.disorder for d in self.directions),
                "counted": run.counted, "sent_in_window": run.sent_in_window,
                "latencies": run.latencies.tobytes(), "errors": self.errors[:20],
                "error_count": len(self.errors),
                "client_cpu": after.user + after.system - usage.user - usage.system,
                **{f"churn_{key}": value for key, value in self.churn.items()},
                "churn_latencies": self.churn_latencies.tobytes()}

    async def _paced(self, t0: int, stop: int, rate: float) -> None:
        """Offer `rate` messages/s from t0 to stop, round robin over the directions."""
        directions = self.directions
        if not directions or rate <= 0:
            await asyncio.sleep(max(0.0, (stop - _now()) / 1e9))
            return
        period = 1e9 / rate
        count, sent, turn = len(directions), 0, 0
        while (now := _now()) < stop:
            due = int((now - t0) / period) + 1 - sent
            for _ in range(due):
                directions[turn].send()
                turn = turn + 1 if turn + 1 < count else 0
            sent += max(due, 0)
            # At least 1 ms: the loop's timers have that resolution, a shorter sleep spins.
            await asyncio.sleep(max(0.001, (t0 + sent * period - _now()) / 1e9))

    # churn: rooms of 2 whose members join and leave over and over, beside paced pairs

    async def setup_churn(self) -> None:
        """Connect this worker's churning clients, two a room (not joined yet)."""
        task = self.task

        async def two(index: int) -> tuple[str, Client, Client]:
            async with self.connecting:
                return f"{task.tag}-churn-{index}", await self.connect(), await self.connect()

        self.churners = list(await asyncio.gather(
            *(two(index) for index in range(task.worker, task.churn_rooms, task.workers))))

    async def _churn(self, t0: int, stop: int) -> None:
        """From t0 to stop, start a cycle (both join, both leave) of a free room every
        period, `churn_rate` joins/s over all workers; a cycle due when no room is free
        is counted late (and not made up)."""
        if self.task.churn_rate <= 0:
            return
        loop = asyncio.get_running_loop()
        period = 1e9 / (self.task.churn_rate / 2 / self.task.workers)
        free = deque(self.churners)
        cycles: set[asyncio.Task[None]] = set()
        due_so_far = 0
        while (now := _now()) < stop:
            due = int((now - t0) / period) + 1 - due_so_far
            for _ in range(due):
                if not free:
                    self.churn["late"] += 1
                    continue
                cycle = loop.create_task(self._cycle(free.popleft(), free))
                cycles.add(cycle)
                cycle.add_done_callback(cycles.discard)
            due_so_far += max(due, 0)
            await asyncio.sleep(max(0.001, (t0 + due_so_far * period - _now()) / 1e9))
        await asyncio.gather(*list(cycles))

    async def _cycle(self, slot: tuple[str, Client, Client],
                     free: deque[tuple[str, Client, Client]]) -> None:
        room, a, b = slot
        frame = self.adapter.join_frame(room)
        assert frame is not None
        try:
            for client in (a, b):
                client.joined = asyncio.get_running_loop().create_future()
                started = _now()
                client.send(frame)
                await asyncio.wait_for(client.joined, 30)
                self.churn_latencies.append(client.joined_ns - started)
                self.churn["joins"] += 1
            for client in (a, b):
                client.send(_LEAVE)
                self.churn["leaves"] += 1
        except Exception as exc:  # timed out, closed: counted, the room not used again
            self.errors.append(f"churn: {exc!r}")
            return
        free.append(slot)

    # join storm and idle connections: clients join rooms of `room_size`

    async def join_rooms(self) -> tuple[int, array[int]]:
        """Every client of this worker's rooms connects and joins; return (expected new_peer
        frames, join latencies in ns)."""
        task = self.task
        rooms = -(-task.clients // task.room_size)
        latencies = array("q")
        expected = 0

        async def one(room: int) -> None:
            nonlocal expected
            async with self.connecting:
                started = _now()
                try:
                    client = await self.join(f"{task.tag}-{room}")
                except Exception as exc:  # refused, reset, timed out: all count as lost
                    # Counted as a lost join (Task.clients - joined), not a crash.
                    self.errors.append(f"join failed: {exc!r}")
                    return
                latencies.append(client.joined_ns - started)
            size = min(task.room_size, task.clients - room * task.room_size)
            if self.adapter.has_rooms:
                expected += size - 1 - len(client.peers)

        await asyncio.gather(*(one(room) for room in range(task.worker, rooms, task.workers)
                               for _ in range(min(task.room_size,
                                                  task.clients - room * task.room_size))))
        return expected, latencies

    async def run_storm(self, t0: int) -> dict[str, Any]:
        expected, latencies = await self.join_rooms()
        await _poll(lambda: sum(c.new_peers for c in self.clients) >= expected,
                    self.task.drain_timeout, None)
        new_peers = sum(c.new_peers for c in self.clients)
        return {"clients": len(self.clients), "joined": sum(c.joined.done() for c in self.clients),
                "start_ns": t0, "last_joined_ns": max((c.joined_ns for c in self.clients),
                                                      default=t0),
                "last_event_ns": max((c.last_event_ns for c in self.clients), default=t0),
                "new_peers": new_peers, "expected_new_peers": expected,
                "lost": expected - new_peers, "latencies": latencies.tobytes(),
                "errors": self.errors[:20], "error_count": len(self.errors)}

    # rooms: the first member of every room is in before the storm (in a star room, the
    # host); then `clients` more join, dealt to the workers by index, `room_size - 1` a room.

    def _room_of(self, client: int) -> int:
        return client // (self.task.room_size - 1)

    def _joiners(self, room: int) -> int:
        per_room = self.task.room_size - 1
        return min(per_room, self.task.clients - room * per_room)

    async def setup_rooms(self) -> None:
        task = self.task
        rooms = self._room_of(task.clients - 1) + 1
        self.firsts = [(room, await self.join(f"{task.tag}-{room}", task.topology))
                       for room in range(task.worker, rooms, task.workers)]

    async def run_rooms(self, t0: int) -> dict[str, Any]:
        task = self.task
        for client in self.clients:
            client.frames = client.new_peers = 0
        latencies = array("q")
        # The first of each room hears of every joiner; in a mesh room, each joiner also of
        # those after it (a star room's clients hear of nobody).
        expected = sum(self._joiners(room) for room, _ in self.firsts)

        async def one(index: int) -> Client | None:
            nonlocal expected
            room = self._room_of(index)
            async with self.connecting:
                started = _now()
                try:
                    client = await self.join(f"{task.tag}-{room}", task.topology)
                except Exception as exc:  # refused, reset, timed out: a lost join
                    self.errors.append(f"join failed: {exc!r}")
                    return None
                latencies.append(client.joined_ns - started)
            if task.topology != "star":
                expected += self._joiners(room) - len(client.peers)
            return client

        joiners = [c for c in await asyncio.gather(
            *(one(i) for i in range(task.worker, task.clients, task.workers))) if c]
        await _poll(lambda: sum(c.new_peers for c in self.clients) >= expected,
                    task.drain_timeout, None)
        new_peers = sum(c.new_peers for c in self.clients)
        return {"joined": len(joiners), "start_ns": t0,
                "last_joined_ns": max((c.joined_ns for c in joiners), default=t0),
                "last_event_ns": max((c.last_event_ns for c in self.clients), default=t0),
                "frames": sum(c.frames for c in self.clients), "new_peers": new_peers,
                "expected_new_peers": expected, "lost": expected - new_peers,
                "latencies": latencies.tobytes(), "errors": self.errors[:20],
                "error_count": len(self.errors)}

    # joins: every client connects while setting up; at go, they join rooms of
    # `room_size`, `concurrency` joins in flight (all workers together), each timed from
    # its join_room sent to its joined_room received (the connection is not in it).

    def _my_rooms(self) -> list[tuple[int, int]]:
        """(room, members) of this worker's rooms: rooms dealt to workers by index."""
        task = self.task
        rooms = -(-task.clients // task.room_size)
        return [(room, min(task.room_size, task.clients - room * task.room_size))
                for room in range(task.worker, rooms, task.workers)]

    async def setup_joins(self) -> None:
        async def one() -> Client:
            async with self.connecting:
                client = await self.connect()
            client.refusable = True
            return client

        members = [(room, size) for room, size in self._my_rooms() for _ in range(size)]
        connected = await asyncio.gather(*(one() for _ in members))
        self.joiners = [(room, size, client)
                        for (room, size), client in zip(members, connected, strict=True)]
        # Warm-up, not timed: twice the joins in flight, as the timed joins go (so that the
        # server's first joins, e.g. its first connections to a join hook, are not timed).
        in_flight = self._joins_in_flight()
        warming = asyncio.Semaphore(in_flight)

        async def warm(index: int) -> None:
            async with warming:
                await self.join(f"{self.task.tag}-w{self.task.worker}-{index // 2}")

        self.warmed = 2 * in_flight
        await asyncio.gather(*(warm(index) for index in range(self.warmed)))

    def _joins_in_flight(self) -> int:
        """This worker's share of `concurrency`, exactly (the scenario runs no more
        workers than joins in flight)."""
        task = self.task
        return max(1, task.concurrency // task.workers +
                   (task.worker < task.concurrency % task.workers))

    async def run_joins(self, t0: int) -> dict[str, Any]:
        task = self.task
        joining = asyncio.Semaphore(self._joins_in_flight())
        latencies = array("q")
        expected = 0
        joined: list[Client] = []

        async def one(room: int, size: int, client: Client) -> None:
            nonlocal expected
            frame = self.adapter.join_frame(f"{task.tag}-{room}")
            assert frame is not None
            async with joining:
                started = _now()
                client.send(frame)
                try:
                    await asyncio.wait_for(asyncio.shield(client.joined), 30)
                except Exception as exc:  # refused, timed out: a lost join
                    self.errors.append(f"join failed: {exc!r}")
                    return
                latencies.append(client.joined_ns - started)
            joined.append(client)
            # The room's other members: in the joined_room's peers, or each a new_peer.
            expected += size - 1 - len(client.peers)

        await asyncio.gather(*(one(*joiner) for joiner in self.joiners))
        timed = [client for _, _, client in self.joiners]  # not the warm-up's
        await _poll(lambda: sum(c.new_peers for c in timed) >= expected,
                    task.drain_timeout, None)
        new_peers = sum(c.new_peers for c in timed)
        return {"clients": len(timed), "joined": len(joined), "warmup_joins": self.warmed,
                "start_ns": t0,
                "last_joined_ns": max((c.joined_ns for c in joined), default=t0),
                "last_event_ns": max((c.last_event_ns for c in timed), default=t0),
                "new_peers": new_peers, "expected_new_peers": expected,
                "lost": expected - new_peers, "latencies": latencies.tobytes(),
                "errors": self.errors[:20], "error_count": len(self.errors)}

    async def setup_idle(self) -> None:
        await self.join_rooms()
        self.start_heartbeats()

    def close(self) -> None:
        if self.heartbeats is not None:
            self.heartbeats.cancel()
        for client in self.clients:
            client.close()


_IDLE = Run(True, 0, 0, 0)


async def _poll(check: Callable[[], bool], timeout: float, what: str | None) -> None:
    """Wait until check() holds; past `timeout`, raise if `what` names it, else return."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            if what is None:
                return
            raise TimeoutError(f"no {what} within {timeout} s")
        await asyncio.sleep(0.005)


async def _command(conn: Connection) -> tuple[str, Any]:
    """The parent's next command, read without blocking the event loop."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(conn.fileno(), wake)
    try:
        await readable
    finally:
        loop.remove_reader(conn.fileno())
        os.set_blocking(conn.fileno(), True)  # the loop made it non-blocking; results are big
    return cast(tuple[str, Any], conn.recv())


async def _work(conn: Connection, task: Task) -> None:
    worker = Worker(task)
    if task.kind in ("closed", "paced"):
        await worker.setup_pairs()
        if task.churn_rooms:
            await worker.setup_churn()
    elif task.kind == "idle":
        await worker.setup_idle()
    elif task.kind == "rooms":
        await worker.setup_rooms()
    elif task.kind == "joins":
        await worker.setup_joins()
    conn.send(("ready", None))
    _, t0 = await _command(conn)
    await asyncio.sleep(max(0.0, (t0 - _now()) / 1e9))
    if task.kind == "storm":
        result = await worker.run_storm(t0)
    elif task.kind == "rooms":
        result = await worker.run_rooms(t0)
    elif task.kind == "joins":
        result = await worker.run_joins(t0)
    elif task.kind == "idle":
        joined = sum(c.joined.done() for c in worker.clients)
        result = {"clients": joined, "lost": 0, "errors": worker.errors[:20],
                  "error_count": len(worker.errors)}
    else:
        result = await worker.run_pairs(t0)
    conn.send(("result", result))
    await _command(conn)
    worker.close()
    await asyncio.sleep(0.2)  # let the close frames go out
    conn.send(("closed", None))


def worker_main(conn: Connection, task: Task) -> None:
    """Entry point of a forked worker process."""
    try:
        uvloop.run(_work(conn, task))
    except BaseException:
        conn.send(("failed", traceback.format_exc()))
    finally:
        conn.close()
