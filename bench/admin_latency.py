"""Admin API latency (Switchboard only): what the app's server waits for when it looks at
a room or removes a peer, while the service relays other rooms' messages.

bench.scenarios.admin runs scenario 4's load and, beside it, an `AdminCalls` in a thread
of the benchmark's own process: one HTTP/1.1 keep-alive connection on loopback to the
gateway's admin API (docs/protocol.md, "Admin API"), with the bearer key. It asks for the
details of the load's rooms in turn (`GET /admin/rooms/{room}`) and removes peers
(`POST /admin/rooms/{room}/remove`), the two interleaved and spread evenly over the
measured window, one at a time. Each removal takes one peer of a pool joined before the
load starts (each alone in a room of its own, with a token naming its user), by its peer
id and by its user in turn (by peer id alone without tokens); the peer must then get
`removed` and close 4003, or it counts as lost. A round trip is timed around
http.client's request and its reply's last byte; the calls run in a worker thread, so
the pool's sockets are read meanwhile.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.identities import ADMIN_KEY, join_token

_TIMEOUT_S = 10.0
_JOINING_AT_ONCE = 20
REMOVED_CLOSE_CODE = 4003  # docs/protocol.md, "Close codes"


class AdminCallsFailed(RuntimeError):
    """The pool could not join, or the calls could not be made (not a slow answer)."""


@dataclass
class _Victim:
    """A peer of the pool, alone in its room, there to be removed."""

    ws: ClientConnection
    room: str
    user: str
    peer_id: str


def room_path(room: str, action: str = "") -> str:
    """/admin/rooms/<room, URL-encoded as one path segment>[/<action>]."""
    path = "/admin/rooms/" + urllib.parse.quote(room, safe="")
    return f"{path}/{action}" if action else path


def schedule(gets: int, removes: int) -> list[str]:
    """The calls in order: `gets` "get" and `removes` "remove", each kind spread evenly."""
    calls = [((index + 0.5) / gets, 0, "get") for index in range(gets)]
    calls += [((index + 0.5) / removes, 1, "remove") for index in range(removes)]
    return [kind for *_, kind in sorted(calls)]


def percentile_ms(samples: list[float], q: float) -> float | None:
    """The q-quantile of `samples` (seconds) in ms: the sample at index q * n, as the
    benchmark's other percentiles (p99 of 100 samples is the slowest)."""
    ordered = sorted(samples)
    if not ordered:
        return None
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


class AdminCalls:
    """The pool of peers and the admin calls, in a thread with an event loop of its own.

    `with AdminCalls(...) as calls:` joins the pool (raises if it cannot); `calls.go(...)`
    (the load's `at_ready`) starts the calls; leaving the block waits for them and leaves
    the figures in `calls.result`."""

    def __init__(self, port: int, tag: str, rooms: list[str], gets: int, removes: int,
                 join_secret: str, key: str = ADMIN_KEY) -> None:
        self.port = port
        self.tag = tag
        self.rooms = rooms  # GET asks for these in turn (each must have two members)
        self.gets = gets
        self.removes = removes
        self.join_secret = join_secret
        self.key = key
        self.result: dict[str, Any] = {}
        self._ready = threading.Event()
        self._go = threading.Event()
        self._start_at = 0.0
        self._spread_s = 0.0
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="admin-calls", daemon=True)
        self._http = http.client.HTTPConnection("127.0.0.1", port, timeout=_TIMEOUT_S)
        self._reconnects = 0

    def __enter__(self) -> AdminCalls:
        self._thread.start()
        if not self._ready.wait(120) or self._failure is not None:
            self._go.set()
            self._thread.join(30)
            raise AdminCallsFailed(f"the pool did not join: {self._failure!r}")
        return self

    def __exit__(self, *_: object) -> None:
        self._go.set()  # the load failed before go: end at once (no calls made)
        self._thread.join(self._spread_s + 120)
        if self._thread.is_alive():
            raise AdminCallsFailed("the calls did not end within 120 s of their window")
        if self._failure is not None:
            raise AdminCallsFailed(f"the calls failed: {self._failure!r}")

    def go(self, delay_s: float, spread_s: float) -> None:
        """Start the calls `delay_s` from now, spread over `spread_s`."""
        self._start_at = time.monotonic() + delay_s
        self._spread_s = spread_s
        self._go.set()

    # --- in the thread -------------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by __enter__ or __exit__
            self._failure = exc
            self._ready.set()
        finally:
            self._http.close()

    async def _run(self) -> None:
        joining = asyncio.Semaphore(_JOINING_AT_ONCE)
        pool = await asyncio.gather(*(self._join(index, joining)
                                      for index in range(self.removes)))
        # The connection opens now, not in the first timed call.
        await asyncio.to_thread(self._call, "GET", room_path(pool[0].room) if pool else
                                "/admin/rooms", None)
        self._ready.set()
        await asyncio.to_thread(self._go.wait)
        try:
            if self._start_at:
                await self._calls(pool)
        finally:
            for victim in pool:
                await victim.ws.close()

    async def _join(self, index: int, joining: asyncio.Semaphore) -> _Victim:
        room = user = f"{self.tag}-v{index}"
        frame: dict[str, Any] = {"event": "join_room", "room_id": room}
        if self.join_secret:
            frame["token"] = join_token(room, user, self.join_secret)
        async with joining:
            ws = await websockets.connect(f"ws://127.0.0.1:{self.port}/", open_timeout=30)
            await ws.send(json.dumps(frame))
            joined = await _until(ws, "joined_room")
        return _Victim(ws, room, user, joined["own_id"])

    async def _calls(self, pool: list[_Victim]) -> None:
        kinds = schedule(self.gets, self.removes)
        times: dict[str, list[float]] = {"get": [], "remove": []}
        errors: list[str] = []
        removed: list[_Victim] = []
        for index, kind in enumerate(kinds):
            due = self._start_at + self._spread_s * index / len(kinds)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if kind == "get":
                room = self.rooms[len(times["get"]) % len(self.rooms)]
                status, body, seconds = await asyncio.to_thread(self._call, "GET",
                                                                room_path(room), None)
                if not _pair_shown(status, body, bool(self.join_secret)):
                    errors.append(f"GET {room}: {status} {str(body)[:200]}")
            else:
                victim = pool[len(removed)]
                # By peer id and by user in turn (users come with tokens): both forms.
                by_user = bool(self.join_secret) and len(removed) % 2 == 1
                what = {"user": victim.user} if by_user else {"peer_id": victim.peer_id}
                status, body, seconds = await asyncio.to_thread(
                    self._call, "POST", room_path(victim.room, "remove"), what)
                if (status, body) != (200, {"removed": [victim.peer_id]}):
                    errors.append(f"remove {what}: {status} {str(body)[:200]}")
                removed.append(victim)
            times[kind].append(seconds)
        calls_s = time.monotonic() - self._start_at  # the window: about spread_s
        told = sum(await asyncio.gather(*(_told(victim.ws) for victim in removed)))
        self.result = {
            "gets": len(times["get"]), "removes": len(times["remove"]),
            "get_p50_ms": percentile_ms(times["get"], 0.5),
            "get_p99_ms": percentile_ms(times["get"], 0.99),
            "get_max_ms": percentile_ms(times["get"], 1.0),
            "remove_p50_ms": percentile_ms(times["remove"], 0.5),
            "remove_p99_ms": percentile_ms(times["remove"], 0.99),
            "remove_max_ms": percentile_ms(times["remove"], 1.0),
            "calls_s": round(calls_s, 3), "reconnects": self._reconnects,
            "told_removed": told, "lost": len(removed) - told,
            "error_count": len(errors), "errors": errors[:10]}

    def _call(self, method: str, path: str, body: Any) -> tuple[int, Any, float]:
        """One round trip on the keep-alive connection: status, decoded body, seconds. A
        connection the server closed is opened again, inside the timed call."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.key}"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        for attempt in (1, 2):
            try:
                self._http.request(method, path, body=data, headers=headers)
                reply = self._http.getresponse()
                text = reply.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._http.close()
                self._reconnects += 1
                if attempt == 2:
                    raise
        seconds = time.perf_counter() - started
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = text.decode(errors="replace")
        return reply.status, decoded, seconds


def _pair_shown(status: int, body: Any, identities: bool) -> bool:
    """Whether a GET answered a load's room: its two members, each with the user and
    info of its token when the peers joined with tokens."""
    if status != 200 or not isinstance(body, dict) or len(body.get("members", ())) != 2:
        return False
    return not identities or all(member.get("user") and member.get("info")
                                 for member in body["members"])


async def _until(ws: ClientConnection, event: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), _TIMEOUT_S))
        if frame.get("event") == event:
            return frame
        if frame.get("event") == "error":
            raise RuntimeError(f"waiting for {event}: {frame}")


async def _told(ws: ClientConnection) -> bool:
    """Whether a removed peer got `removed` and then close 4003."""
    try:
        frame = await _until(ws, "removed")
        await asyncio.wait_for(ws.wait_closed(), _TIMEOUT_S)
    except (TimeoutError, RuntimeError, websockets.ConnectionClosed):
        return False
    return frame.get("reason") == "removed" and ws.close_code == REMOVED_CLOSE_CODE
