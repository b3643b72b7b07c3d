"""Hostile clients, each attack a coroutine on 127.0.0.1: what `--only attacks` measures
(bench/attack_scenario.py) and tests/faults/test_attacks.py holds the gateway to.

- ghost members: sockets in one room, each sending one frame that breaks RFC 6455
  (`PROTOCOL_ERRORS`), which the gateway answers with 1002; then whether the member left
  behind saw each leave (`peer_left`) and a newcomer can join (not `room is full`);
- floods: pings (`ping_flood`, reading what comes or not), empty continuation frames of a
  message that never ends (`continuation_flood`), valid data frames (`frame_flood`);
- one message in one-byte fragments, never finished (`one_byte_fragments`);
- one byte of a frame every second (`byte_trickle`).

Each returns how its sockets ended as the attacker saw them (`tally`: a close frame's code,
1006 for TCP gone without one, `open`) and figures of its own. An attack may run in a
process of its own (`Attacker`), so that its flood does not slow a bystander's client.
The wire client is harness/rawsocket.py's, as bench/servers.py takes its processes
from harness/processes.py: the tests keep the harness, the bench the attacks.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from harness.rawsocket import (
    CLOSE,
    CONTINUATION,
    PING,
    TEXT,
    RawSocket,
    close_payload,
    encode_frame,
)

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
