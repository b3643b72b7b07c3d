"""Hostile clients against one gateway, each beside a bystander pair (`--only attacks`).

Each attack runs on server processes of its own (a redis-server, a relay, a gateway, with
the gateway's own limits: none lifted as the other scenarios lift them), and in a process
of its own (forked), so that the flood does not slow the bystanders' client down: a pair of
peers in a room of their own on the same gateway, one sending the other a message every
`ROUND_TRIP_EVERY` s, which the other echoes back. Meanwhile the gateway's RSS is sampled
and its CPU counted. An attack reports how its sockets ended, as the attacker saw it
(a close frame's code, 1006 for TCP gone without one, `open`) and as the gateway counted
it (`switchboard_closes_total` on /metrics), and the figures of its own.

The attacks (`plan`), each bounded in time:
- ghost members: ~100 sockets in one room, each sending one frame that breaks RFC 6455
  (`PROTOCOL_ERRORS`), which the gateway answers with 1002; then whether the member left
  behind saw each leave (`peer_left`) and a newcomer can join (not `room is full`);
- ping floods, 4 sockets, reading, and not reading (a small SO_RCVBUF, never read);
- an empty-continuation flood: one text frame without FIN, then empty continuations;
- one-byte fragments: each socket sends up to 64,900 one-byte fragments of one message;
- a byte trickle: one byte of a frame every second, with a 4 s idle timeout;
- a frame flood of valid data frames.

The tests of the same attacks (tests/faults/test_attacks.py) call these functions: the
attacks live here, the wire client in tests/faults/rawsocket.py (as bench/servers.py takes
its processes from tests/processes.py).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import re
import shutil
import tempfile
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.procstat import cpu_seconds, rss_kib
from bench.servers import SwitchboardServer, _roles
from tests.faults.rawsocket import (
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    RawSocket,
    close_payload,
    encode_frame,
)
from tests.processes import http_get, start_cluster, start_redis

ROUND_TRIP_EVERY = 0.15  # seconds between a bystander's round trips
ROUND_TRIP_TIMEOUT = 5.0  # a round trip not back by then failed
AFTER_S = 1.0  # how long the bystanders go on after an attack, for the "after" figures
TRICKLE_IDLE_S = 4  # the idle timeout of the byte trickle's gateway (pings every 1 s)
_PING = b'{"event":"ping"}'


def _unmasked(opcode: int, payload: bytes) -> bytes:
    """A frame as a server would send it: clients must mask theirs (RFC 6455, 5.1)."""
    return bytes([0x80 | opcode, len(payload)]) + payload


def _rsv1(frame: bytes) -> bytes:
    """`frame` with RSV1 set, which no extension was agreed for (RFC 6455, 5.2)."""
    return bytes([frame[0] | 0x40]) + frame[1:]


# One frame each that fails the connection with 1002 (RFC 6455, 5.2, 5.4, 5.5, 7.4.1).
PROTOCOL_ERRORS: dict[str, bytes] = {
    "rsv1": _rsv1(encode_frame(TEXT, _PING)),
    "unmasked": _unmasked(TEXT, _PING),
    "opcode 0x3": encode_frame(0x3, b"x"),
    "ping of 126 bytes": encode_frame(PING, b"p" * 126),
    "close code 999": encode_frame(CLOSE, close_payload(999)),
    "stray continuation": encode_frame(CONTINUATION, b"x"),
}


# --- how a socket ended ---------------------------------------------------------------------

@dataclass
class Ending:
    """How an attacking socket ended, as its client saw it."""

    code: str  # "1008", "1006" (TCP gone without a close frame), or "open"
    reason: str = ""
    after_s: float | None = None  # from `since` to the close, when it closed


async def ending(raw: RawSocket, timeout: float, since: float | None = None) -> Ending:
    """Read (and drop) what the server sends until it closes, for at most `timeout` s."""
    loop = asyncio.get_running_loop()
    since = loop.time() if since is None else since
    deadline = loop.time() + timeout
    reason = ""
    try:
        while raw.close_code is None:
            frame = await raw.read_frame(timeout=max(deadline - loop.time(), 0.001))
            if frame.opcode == CLOSE and frame.payload:
                reason = frame.close_reason
    except (TimeoutError, ConnectionError, OSError):
        if raw.close_code is None:
            return Ending("open")
    return Ending(str(raw.close_code), reason, round(loop.time() - since, 3))


def tally(endings: Iterable[Ending]) -> dict[str, Any]:
    """Endings counted: close codes, reasons, the slowest close."""
    endings = list(endings)
    closed = [e.after_s for e in endings if e.after_s is not None]
    return {"codes": dict(Counter(e.code for e in endings)),
            "reasons": dict(Counter(e.reason for e in endings if e.reason)),
            "first_close_s": min(closed) if closed else None,
            "last_close_s": max(closed) if closed else None}


async def connect_all(port: int, count: int, recv_buffer: int | None = None,
                      at_once: int = 100) -> list[RawSocket]:
    """`count` raw sockets, opened `at_once` at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one() -> RawSocket:
        async with gate:
            return await RawSocket.connect(port, timeout=15, recv_buffer=recv_buffer)

    return list(await asyncio.gather(*(one() for _ in range(count))))


def _abort(sockets: Iterable[RawSocket]) -> None:
    for raw in sockets:
        raw.abort()


Go = Callable[[], Awaitable[None]]


async def _now() -> None:
    """The `go` of an attack that starts as soon as it is set up."""


# --- the attacks ----------------------------------------------------------------------------

async def flood(port: int, sockets: int, seconds: float, first: bytes, repeated: bytes,
                reading: bool = True, grace: float = 2.0, go: Go = _now) -> dict[str, Any]:
    """Each socket writes `first`, then `repeated` over and over for `seconds` (or until
    the server closes it). Reading sockets read (and drop) everything meanwhile; the others
    have a 4 KiB receive buffer and read only after the flood. Sockets still open 1 s
    after the flood (`grace` s for those that did not read) are counted `open`."""
    conns = await connect_all(port, sockets, recv_buffer=None if reading else 4096)
    await go()
    loop = asyncio.get_running_loop()
    started = loop.time()
    until = started + seconds
    watchers = [asyncio.create_task(ending(c, seconds + 60, started)) for c in conns] \
        if reading else []
    for raw in conns:
        raw.send_raw(first)
    written = await asyncio.gather(*(c.flood(repeated, until) for c in conns))
    flood_s = loop.time() - started
    if not reading:
        watchers = [asyncio.create_task(ending(c, 60, started)) for c in conns]
    endings = await _within(watchers, 1.0 if reading else grace)
    _abort(conns)
    return {**tally(endings), "bytes_sent": sum(written), "flood_s": round(flood_s, 3),
            "mb_per_s": round(sum(written) / 1e6 / max(flood_s, 1e-3), 1)}


async def ping_flood(port: int, sockets: int, seconds: float, reading: bool,
                     grace: float = 2.0, go: Go = _now) -> dict[str, Any]:
    """Pings of 125 bytes (the most a control frame may carry), as fast as TCP takes them."""
    ping = encode_frame(PING, b"p" * 125)
    result = await flood(port, sockets, seconds, b"", ping * 500, reading, grace, go)
    result["frames_per_s"] = round(result["bytes_sent"] / len(ping) / result["flood_s"])
    return result


async def continuation_flood(port: int, sockets: int, seconds: float,
                             go: Go = _now) -> dict[str, Any]:
    """One text frame without FIN, then empty continuation frames without FIN, endlessly:
    a message that never grows and never ends."""
    empty = encode_frame(CONTINUATION, b"", fin=False)
    result = await flood(port, sockets, seconds, encode_frame(TEXT, b'{"event":', fin=False),
                         empty * 1000, go=go)
    result["frames_per_s"] = round(result["bytes_sent"] / len(empty) / result["flood_s"])
    return result


async def frame_flood(port: int, sockets: int, seconds: float, go: Go = _now) -> dict[str, Any]:
    """Valid data frames (`{"event":"ping"}`), as fast as TCP takes them."""
    ping = encode_frame(TEXT, _PING)
    result = await flood(port, sockets, seconds, b"", ping * 1000, go=go)
    result["frames_per_s"] = round(result["bytes_sent"] / len(ping) / result["flood_s"])
    return result


async def one_byte_fragments(port: int, sockets: int, fragments: int, hold: float,
                             go: Go = _now) -> dict[str, Any]:
    """Each socket sends one message as `fragments` one-byte fragments, all but the last
    (so the message stays open), then holds the socket `hold` s (the gateway keeps what it
    read), reading."""
    data = encode_frame(TEXT, b"{", fin=False) + \
        encode_frame(CONTINUATION, b"x", fin=False) * (fragments - 1)
    conns = await connect_all(port, sockets)
    await go()
    loop = asyncio.get_running_loop()
    started = loop.time()
    watchers = [asyncio.create_task(ending(c, 60, started)) for c in conns]
    written = await asyncio.gather(*(c.flood(data, started + 10, len(data)) for c in conns))
    sent_s = loop.time() - started
    endings = await _within(watchers, hold)
    _abort(conns)
    return {**tally(endings), "fragments_each": fragments, "bytes_sent": sum(written),
            "sent_s": round(sent_s, 3)}


async def _within(watchers: list[asyncio.Task[Ending]], seconds: float) -> list[Ending]:
    """The endings of those that end within `seconds`; `open` for the others."""
    await asyncio.wait(watchers, timeout=seconds)
    for task in watchers:
        task.cancel()
    return [task.result() if task.done() and not task.cancelled() else Ending("open")
            for task in watchers]


async def byte_trickle(port: int, sockets: int, seconds: float, every: float = 1.0,
                       go: Go = _now) -> dict[str, Any]:
    """Each socket sends one byte of a ping message every `every` s (a frame of 22 bytes:
    never complete within `seconds`), reads what comes and answers nothing."""
    frame = encode_frame(TEXT, _PING)
    conns = await connect_all(port, sockets)
    await go()
    loop = asyncio.get_running_loop()
    started = loop.time()
    until = started + seconds
    watchers = [asyncio.create_task(ending(c, seconds + 3, started)) for c in conns]

    async def trickle(raw: RawSocket) -> None:
        for index in range(len(frame)):
            if raw.close_code is not None or loop.time() >= until:
                return
            try:
                raw.send_raw(frame[index:index + 1])
            except (ConnectionError, RuntimeError):
                return
            await asyncio.sleep(every)

    await asyncio.gather(*(trickle(c) for c in conns))
    endings = await _within(watchers, max(until - loop.time(), 0) + 0.5)
    _abort(conns)
    return {**tally(endings), "every_s": every}


class Events:
    """The events one member of a room received, counted, with waits on the counts."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.counts: Counter[str] = Counter()
        self.senders: dict[str, list[str]] = {}
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                event = frame.get("event", "")
                self.counts[event] += 1
                self.senders.setdefault(event, []).append(frame.get("sender_id", ""))
                self._changed.set()
        except websockets.ConnectionClosed:
            self._changed.set()

    async def reach(self, event: str, count: int, timeout: float) -> bool:
        """Wait until `count` `event`s came (True), or `timeout` s passed (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.counts[event] < count:
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0 or self.task.done():
                return False
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return False
        return True


async def join(ws: ClientConnection, room: str) -> dict[str, Any]:
    """Send join_room; the first answer (joined_room, or an error)."""
    await ws.send(json.dumps({"event": "join_room", "room_id": room}))
    answer: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return answer


async def ghosts(port: int, trigger: str, members: int, go: Go = _now) -> dict[str, Any]:
    """A member who stays, then `members` sockets join its room and each sends the
    `trigger` frame of PROTOCOL_ERRORS; then: did the one who stayed see each leave, and
    can a newcomer join?"""
    url = f"ws://127.0.0.1:{port}/"
    room = f"attack-{uuid.uuid4().hex[:16]}"
    survivor = await websockets.connect(url, open_timeout=15, close_timeout=2)
    survivor_id = (await join(survivor, room))["own_id"]
    survivor_events = Events(survivor)
    conns = await connect_all(port, members, at_once=50)
    ghost_ids: list[str] = []
    refused = 0
    for raw in conns:  # one at a time: the room's order is the join order
        raw.send_json(event="join_room", room_id=room)
        answer = await raw.expect_json(timeout=10)
        if answer.get("event") == "joined_room":
            ghost_ids.append(answer["own_id"])
        else:
            refused += 1
    await survivor_events.reach("new_peer", len(ghost_ids), 10)
    await go()
    loop = asyncio.get_running_loop()
    started = loop.time()
    for raw in conns:
        raw.send_raw(PROTOCOL_ERRORS[trigger])
    endings = await asyncio.gather(*(ending(raw, 10, started) for raw in conns))
    await survivor_events.reach("peer_left", len(ghost_ids), 5)
    left_ids = list(survivor_events.senders.get("peer_left", []))  # before the newcomer's
    newcomer = await websockets.connect(url, open_timeout=15, close_timeout=2)
    answer = await join(newcomer, room)
    await newcomer.close()
    await survivor.close()
    _abort(conns)
    return {**tally(endings), "trigger": trigger, "room": room, "survivor_id": survivor_id,
            "ghost_ids": ghost_ids, "refused_joins": refused,
            "peer_left": len(left_ids), "left_ids": left_ids,
            "newcomer": "joined" if answer.get("event") == "joined_room"
            else answer.get("message", str(answer))}


ATTACKS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "ghosts": ghosts, "ping_flood": ping_flood, "continuation_flood": continuation_flood,
    "frame_flood": frame_flood, "one_byte_fragments": one_byte_fragments,
    "byte_trickle": byte_trickle,
}


# --- an attack in a process of its own ------------------------------------------------------

def _attacker_main(conn: Connection, kind: str, options: dict[str, Any]) -> None:
    """The attacking process: set up, say "ready", wait for "go", attack, send the result."""
    async def go() -> None:
        conn.send(("ready", None))
        await asyncio.to_thread(conn.recv)

    try:
        result: dict[str, Any] = asyncio.run(ATTACKS[kind](**options, go=go))
        conn.send(("result", result))
    except BaseException:
        conn.send(("failed", traceback.format_exc()))


class Attacker:
    """An attack in a forked process: `await ready()`, then `await run()` for its result.

    Forked, not spawned: `python -m bench`'s main module would run again in a spawned
    child. It is forked before any sampling thread starts."""

    def __init__(self, kind: str, **options: Any) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self.process = context.Process(target=_attacker_main, args=(child, kind, options),
                                       daemon=True)
        self.process.start()
        child.close()

    async def ready(self, timeout: float = 60) -> None:
        await self._expect("ready", timeout)

    async def run(self, timeout: float) -> dict[str, Any]:
        """Start the attack; its result, or {"failed": why}."""
        self._conn.send(("go", None))
        try:
            result: dict[str, Any] = await self._expect("result", timeout)
            return result
        except RuntimeError as exc:
            return {"failed": str(exc)}
        finally:
            self.stop()

    async def _expect(self, what: str, timeout: float) -> Any:
        def receive() -> tuple[str, Any]:
            if not self._conn.poll(timeout):
                raise RuntimeError(f"the attacker sent no {what!r} within {timeout:g} s")
            try:
                return self._conn.recv()  # type: ignore[no-any-return]
            except EOFError:
                raise RuntimeError(f"the attacker died before {what!r}") from None

        kind, value = await asyncio.to_thread(receive)
        if kind == "failed":
            raise RuntimeError(f"the attacker failed:\n{value}")
        return value

    def stop(self) -> None:
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._conn.close()


# --- the bystanders ---------------------------------------------------------------------------

@dataclass
class RoundTrips:
    """What a bystander pair saw."""

    # Every round trip's time; one that failed counts with how long it was waited for.
    rtts_ms: list[float] = field(default_factory=list)
    failed: int = 0
    disconnects: list[str] = field(default_factory=list)  # "a: 1012 heartbeat lapsed"

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.rtts_ms)
        return {"ok": len(ordered) - self.failed, "failed": self.failed,
                "disconnects": self.disconnects,
                "worst_ms": round(ordered[-1], 1) if ordered else None,
                "p99_ms": round(percentile(ordered, 0.99), 1) if ordered else None,
                "p50_ms": round(percentile(ordered, 0.5), 1) if ordered else None}


def percentile(ordered: list[float], q: float) -> float:
    """The `q` quantile of sorted samples (nearest rank)."""
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


class Bystanders:
    """Two peers in a fresh room on the gateway at `url`: `a` sends `b` a message every
    `every` s, `b` echoes it back, `a` times the round trip. Neither socket should close."""

    def __init__(self, url: str, every: float = ROUND_TRIP_EVERY) -> None:
        self.url = url
        self.every = every
        self.trips = RoundTrips()
        self._waiting: dict[int, asyncio.Future[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._first = asyncio.Event()
        self._sent_at: float | None = None  # when the round trip under way started

    async def __aenter__(self) -> Bystanders:
        room = f"bystanders-{uuid.uuid4().hex[:16]}"
        self.a = await websockets.connect(self.url, open_timeout=15, close_timeout=2)
        self.b = await websockets.connect(self.url, open_timeout=15, close_timeout=2)
        self.a_id = (await join(self.a, room))["own_id"]
        self.b_id = (await join(self.b, room))["own_id"]
        await asyncio.wait_for(self.a.recv(), 10)  # a's new_peer (b)
        self._tasks = [asyncio.create_task(self._echo()), asyncio.create_task(self._read_a()),
                       asyncio.create_task(self._round_trips())]
        await asyncio.wait_for(self._first.wait(), 10)
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stopping = True
        if self._sent_at is not None:
            # A round trip still out: it failed, and took at least this long.
            self.trips.failed += 1
            self.trips.rtts_ms.append(1000 * (time.monotonic() - self._sent_at))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ws in (self.a, self.b):
            await ws.close()

    def _closed(self, name: str, ws: ClientConnection) -> None:
        if not self._stopping:
            self.trips.disconnects.append(f"{name}: {ws.close_code} {ws.close_reason or ''}"
                                          .strip())

    async def _echo(self) -> None:
        try:
            async for raw in self.b:
                frame = json.loads(raw)
                if frame.get("event") == "message":
                    await self.b.send(json.dumps({"event": "send_to_peer",
                                                  "peer_id": self.a_id, "data": {
                                                      "event": "message",
                                                      "seq": frame["seq"]}}))
        except websockets.ConnectionClosed:
            pass
        self._closed("b", self.b)

    async def _read_a(self) -> None:
        try:
            async for raw in self.a:
                frame = json.loads(raw)
                waiter = self._waiting.pop(frame.get("seq", -1), None)
                if frame.get("event") == "message" and waiter is not None:
                    waiter.set_result(time.monotonic())
        except websockets.ConnectionClosed:
            pass
        self._closed("a", self.a)

    async def _round_trips(self) -> None:
        loop = asyncio.get_running_loop()
        for seq in range(1_000_000):
            started = self._sent_at = time.monotonic()
            waiter = self._waiting[seq] = loop.create_future()
            try:
                await self.a.send(json.dumps({"event": "send_to_peer", "peer_id": self.b_id,
                                              "data": {"event": "message", "seq": seq}}))
                back = await asyncio.wait_for(waiter, ROUND_TRIP_TIMEOUT)
                self.trips.rtts_ms.append(1000 * (back - started))
                self._first.set()
            except (TimeoutError, websockets.ConnectionClosed):
                self._waiting.pop(seq, None)
                self.trips.failed += 1
                self.trips.rtts_ms.append(1000 * (time.monotonic() - started))
                if self.a.close_code is not None or self.b.close_code is not None:
                    self._sent_at = None
                    return
            self._sent_at = None
            await asyncio.sleep(max(self.every - (time.monotonic() - started), 0))

    @property
    def connected(self) -> bool:
        return not self.trips.disconnects


# --- measuring --------------------------------------------------------------------------------

class PeakRss:
    """A process's resident memory (KiB), sampled every 20 ms in a thread while in use."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[int] = [rss_kib(pid)]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.samples.append(rss_kib(self.pid))
            except (OSError, RuntimeError):
                return  # the process is gone

    @property
    def peak(self) -> int:
        return max(self.samples)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


_CLOSES = re.compile(r'^switchboard_closes_total\{code="([^"]+)"\} ([0-9.e+]+)$', re.M)


def closes_by_code(metrics: str) -> dict[str, int]:
    """`switchboard_closes_total` by code, from the text of /metrics."""
    return {code: int(float(value)) for code, value in _CLOSES.findall(metrics)}


def gateway_closes(port: int) -> dict[str, int] | None:
    """The gateway's close counts now; None if /metrics did not answer."""
    try:
        status, _, body = http_get(port, "/metrics")
    except OSError:
        return None
    return closes_by_code(body) if status == 200 else None


def counted_since(before: dict[str, int] | None,
                  after: dict[str, int] | None) -> dict[str, int] | None:
    """Counts that grew from `before` to `after`, by how much."""
    if before is None or after is None:
        return None
    return {code: after[code] - before.get(code, 0) for code in after
            if after[code] > before.get(code, 0)}


def log_findings(logs: dict[str, str]) -> dict[str, Any]:
    """Tracebacks and ERROR lines in each process's log (text format)."""
    errors = [f"{name}: {line.strip()[:240]}" for name, text in logs.items()
              for line in text.splitlines() if " ERROR " in line]
    return {"tracebacks": sum(text.count("Traceback") for text in logs.values()),
            "traceback_in": sorted(name for name, text in logs.items() if "Traceback" in text),
            "error_lines": len(errors), "first_errors": errors[:3],
            "heartbeat_lapsed": sum(text.count("had expired") for text in logs.values())}


# --- the plan and the run ---------------------------------------------------------------------

@dataclass(frozen=True)
class Attack:
    name: str
    kind: str  # a key of ATTACKS
    options: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)  # the gateway's settings for it


def plan(seconds: float = 5.0, scale: float = 1.0) -> list[Attack]:
    """The attacks, `seconds` of flood each, socket counts times `scale` (at least 1)."""
    def n(count: int) -> int:
        return max(1, round(count * scale))

    attacks = [Attack(f"ghost members x{n(99)}: {trigger}", "ghosts",
                      {"trigger": trigger, "members": n(99)}) for trigger in PROTOCOL_ERRORS]
    return [
        *attacks,
        Attack(f"ping flood x{n(4)}, reading", "ping_flood",
               {"sockets": n(4), "seconds": seconds, "reading": True}),
        Attack(f"ping flood x{n(4)}, not reading", "ping_flood",
               {"sockets": n(4), "seconds": seconds, "reading": False}),
        Attack(f"empty-continuation flood x{n(10)}", "continuation_flood",
               {"sockets": n(10), "seconds": seconds}),
        Attack(f"one-byte fragments x{n(30)}", "one_byte_fragments",
               {"sockets": n(30), "fragments": 64_900, "hold": max(seconds, 1.0)}),
        Attack(f"byte trickle x{n(500)}", "byte_trickle",
               {"sockets": n(500), "seconds": TRICKLE_IDLE_S + 3.0, "every": 1.0},
               {"SWITCHBOARD_IDLE_TIMEOUT": str(TRICKLE_IDLE_S),
                "SWITCHBOARD_PING_INTERVAL": "1"}),
        Attack(f"frame flood x{n(4)} (valid data frames)", "frame_flood",
               {"sockets": n(4), "seconds": seconds}),
    ]


def start_stack(**env: str) -> SwitchboardServer:
    """A redis-server, a relay and a gateway of their own, with the gateway's defaults
    (bench.servers lifts the rate limits for the other scenarios) and `env`."""
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-attacks-"))
    redis = start_redis(workdir)
    try:
        cluster = start_cluster(redis, gateways=1, relays=1, LOG_LEVEL="warning",
                                SWITCHBOARD_SHUTDOWN_SECONDS="0", **env)
    except BaseException:
        redis.process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    pids = {**_roles("gateway", [p.pid for p, _ in cluster.gateways]),
            **_roles("relay", [p.pid for p in cluster.relays]), "redis": redis.process.pid}
    port = cluster.gateways[0][1]
    return SwitchboardServer("switchboard", port, pids, "", (port,), redis=redis,
                             cluster=cluster, workdir=workdir)


async def measure(port: int, gateway: int, attack: Attack,
                  after: float = AFTER_S) -> dict[str, Any]:
    """One attack on the gateway at `port` (pid `gateway`), its bystanders' round trips
    throughout and for `after` s more."""
    attacker = Attacker(attack.kind, port=port, **attack.options)
    try:
        await attacker.ready()
    except RuntimeError as exc:
        attacker.stop()
        return {"attack": attack.name, "failed": str(exc)}
    closes_before = await asyncio.to_thread(gateway_closes, port)
    async with Bystanders(f"ws://127.0.0.1:{port}/") as bystanders:
        rss_before, cpu_before = rss_kib(gateway), cpu_seconds([gateway])
        with PeakRss(gateway) as rss:
            started = time.monotonic()
            outcome = await attacker.run(timeout=120)
            attack_s = time.monotonic() - started
            await asyncio.sleep(after)  # the bystanders go on: does the gateway recover?
        alive = Path(f"/proc/{gateway}").exists()
        rss_after = rss_kib(gateway) if alive else None
        cpu = cpu_seconds([gateway]) - cpu_before if alive else None
    closes_after = await asyncio.to_thread(gateway_closes, port) if alive else None
    return {"attack": attack.name, "kind": attack.kind, "options": attack.options,
            "env": attack.env, "attack_s": round(attack_s, 2), "outcome": outcome,
            "bystanders": bystanders.trips.summary(), "gateway_alive": alive,
            "rss_mb": {"before": _mb(rss_before), "peak": _mb(rss.peak),
                       "after": _mb(rss_after)},
            "rss_growth_mb": _mb(rss.peak - rss_before),
            "gateway_cpu_s": round(cpu, 2) if cpu is not None else None,
            "server_closes": counted_since(closes_before, closes_after)}


def _mb(kib: int | None) -> float | None:
    return round(kib / 1024, 1) if kib is not None else None


def run_one(attack: Attack) -> dict[str, Any]:
    """An attack on server processes of its own, stopped after it; their logs checked."""
    server = start_stack(**attack.env)
    try:
        result = asyncio.run(measure(server.port, server.pids["gateway"], attack))
        assert server.cluster is not None
        cluster = server.cluster
        logs = {p.name: p.log() for p in [*(g for g, _ in cluster.gateways), *cluster.relays]}
    finally:
        server.stop()
    return {**result, "logs": log_findings(logs)}


def run(seconds: float, scale: float, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Every attack of `plan`; the result the benchmark's JSON keeps, with the goals."""
    results = []
    for attack in plan(seconds, scale):
        started = time.monotonic()
        try:
            result = run_one(attack)
        except (OSError, RuntimeError, TimeoutError) as exc:
            result = {"attack": attack.name, "failed": str(exc)}
        results.append(result)
        progress(f"   {attack.name}: {time.monotonic() - started:.1f} s, {brief(result)}")
    return {"attacks": results, "goals": goals(results), "seconds": seconds, "scale": scale,
            # Not the benchmark's failure: a goal not met is what the table is for.
            "lost": 0, "error_count": 0, "errors": []}


def brief(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"FAILED: {result['failed'].splitlines()[-1] if result['failed'] else ''}"
    trips = result["bystanders"]
    return (f"bystanders {trips['ok']} ok/{trips['failed']} failed, "
            f"worst {trips['worst_ms']} ms, disconnects {trips['disconnects'] or 'none'}; "
            f"attack sockets {result['outcome'].get('codes')}")


# --- the report -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Goal:
    name: str
    met: bool | None  # None: not measured
    measured: str


def goals(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The goals against hostile clients, met or not, with what was measured."""
    ran = [r for r in results if "failed" not in r]
    failed = [r["attack"] for r in results if "failed" in r]
    out: list[Goal] = []
    disconnected = [f"{r['attack']} ({', '.join(r['bystanders']['disconnects'])})"
                    for r in ran if r["bystanders"]["disconnects"]]
    out.append(Goal("no bystander disconnected", not disconnected and not failed and
                    bool(ran), "; ".join(disconnected) or "none"))
    worst = max(((r["bystanders"]["worst_ms"] or 0, r["attack"]) for r in ran), default=None)
    lost_trips = sum(r["bystanders"]["failed"] for r in ran)
    out.append(Goal("worst bystander round trip < 1.5 s",
                    None if worst is None else worst[0] < 1500 and not lost_trips,
                    "-" if worst is None else f"{worst[0]:,.0f} ms ({worst[1]})"
                    + (f", {lost_trips} round trips never came back" if lost_trips else "")))
    for label, kind, limit in (("four ping-flooding sockets, reading or not", "ping_flood", 64),
                               ("thirty one-byte-fragment sockets", "one_byte_fragments", 32)):
        growth = [(r["rss_growth_mb"], r["attack"]) for r in ran if r["kind"] == kind]
        out.append(Goal(f"{label} cost the gateway < {limit} MB RSS",
                        None if not growth else max(growth)[0] < limit,
                        ", ".join(f"+{mb:,.1f} MB ({name})" for mb, name in growth) or "-"))
    traced = [f"{r['attack']} ({', '.join(r['logs']['traceback_in'])})" for r in ran
              if r["logs"]["tracebacks"]]
    out.append(Goal("no traceback in any log", None if not ran else not traced,
                    "; ".join(traced) or "none"))
    return [{"goal": g.name, "met": g.met, "measured": g.measured} for g in out]


def goals_text(result: dict[str, Any]) -> str:
    lines = ["Goals against hostile clients:"]
    for goal in result["goals"]:
        verdict = {True: "met", False: "not met", None: "not measured"}[goal["met"]]
        lines.append(f"  {goal['goal']}: {goal['measured']}: {verdict}")
    return "\n".join(lines)


def _codes(counts: dict[str, int] | None) -> str:
    if counts is None:
        return "-"
    return ", ".join(f"{code} x{count}" for code, count in
                     sorted(counts.items(), key=lambda item: -item[1])) or "none"


def _notes(result: dict[str, Any]) -> str:
    outcome = result["outcome"]
    notes = []
    if result["kind"] == "ghosts":
        notes.append(f"peer_left {outcome['peer_left']}/{len(outcome['ghost_ids'])}, "
                     f"newcomer: {outcome['newcomer']}")
    if outcome.get("frames_per_s"):
        notes.append(f"{outcome['frames_per_s']:,} frames/s sent")
    if outcome.get("reasons"):
        notes.append("reasons: " + ", ".join(f'"{r}"' for r in outcome["reasons"]))
    if outcome.get("last_close_s") is not None:
        notes.append(f"closed after {outcome['first_close_s']:g}-{outcome['last_close_s']:g} s")
    if result["logs"]["heartbeat_lapsed"]:
        notes.append("heartbeat lapsed")
    if not result["gateway_alive"]:
        notes.append("GATEWAY DIED")
    return "; ".join(notes)


def table(result: dict[str, Any]) -> str:
    """One markdown row per attack."""
    lines = ["| attack | bystander round trips ok / failed | bystander disconnects | "
             "worst / p99 ms | gateway RSS MB before / peak / after | gateway CPU s | "
             "attack sockets ended (client saw) | closes the gateway counted | "
             "tracebacks / ERROR lines | notes |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["attacks"]:
        if "failed" in r:
            lines.append(f"| {r['attack']} | FAILED: "
                         f"{r['failed'].strip().splitlines()[-1][:120]} |||||||||")
            continue
        trips, rss, logs = r["bystanders"], r["rss_mb"], r["logs"]
        outcome = r["outcome"]
        codes = "attacker failed" if "failed" in outcome else _codes(outcome.get("codes"))
        lines.append(
            f"| {r['attack']} | {trips['ok']} / {trips['failed']} | "
            f"{', '.join(trips['disconnects']) or 'none'} | "
            f"{_num(trips['worst_ms'])} / {_num(trips['p99_ms'])} | "
            f"{_num(rss['before'], 1)} / {_num(rss['peak'], 1)} / {_num(rss['after'], 1)} | "
            f"{_num(r['gateway_cpu_s'], 2)} | {codes} | {_codes(r['server_closes'])} | "
            f"{logs['tracebacks']} / {logs['error_lines']} | "
            f"{_notes(r) if 'failed' not in outcome else ''} |")
    return "\n".join(lines)


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"

