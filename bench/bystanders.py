"""A bystander pair: two peers in a room of their own on a gateway under attack, making
round trips throughout; what the attacks must not disturb."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from bench.attacks import join

ROUND_TRIP_EVERY = 0.15  # seconds between a bystander's round trips
ROUND_TRIP_TIMEOUT = 5.0  # a round trip not back by then failed


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
        # The round trip under way when the attack ends is not failed for that: it is
        # given its time (the loop ends by itself once it is back), as any other.
        trips = self._tasks[-1]
        await asyncio.wait([trips], timeout=ROUND_TRIP_TIMEOUT + self.every + 1)
        if not trips.done() and self._sent_at is not None:
            # Still out: it failed, and took at least this long.
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
            if self._stopping:  # stopped: should a cancel ever be lost, this ends it
                return
            started = self._sent_at = time.monotonic()
            waiter = self._waiting[seq] = loop.create_future()
            try:
                await self.a.send(json.dumps({"event": "send_to_peer", "peer_id": self.b_id,
                                              "data": {"event": "message", "seq": seq}}))
                # Not asyncio.wait_for: on Python 3.11 it swallows a cancel that comes in
                # the loop iteration in which the answer did (it returns the answer), and
                # this loop went on, one failed round trip every 5 s, while __aexit__
                # waited for it for good (the attacks smoke run's stall).
                async with asyncio.timeout(ROUND_TRIP_TIMEOUT):
                    back = await waiter
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
