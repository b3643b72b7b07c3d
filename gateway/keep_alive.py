"""Keep-alive: every socket is pinged each interval, and one silent past the idle
timeout (no complete frame, no pong) is closed with 1001. One task for all sockets,
and none per ping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from gateway.ws_connection import WsConnection
from shared.close_codes import CloseCode


def silent_too_long(now: float, last_heard: float, idle_s: float) -> bool:
    """Whether a socket last heard from at `last_heard` is to be closed at `now`."""
    return now - last_heard > idle_s


async def keep_alive(connections: Callable[[], Iterable[WsConnection]], interval_s: float,
                     idle_s: float) -> None:
    """Ping every open connection each `interval_s`; close those silent past `idle_s`.
    Runs until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        now = time.monotonic()
        for connection in list(connections()):
            if silent_too_long(now, connection.last_heard, idle_s):
                connection.close(CloseCode.GOING_AWAY, "idle")
            else:
                connection.ping_now()
