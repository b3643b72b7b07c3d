"""A socket's bounded queue of frames to send (protocol.md, "Limits": slow clients)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)


class Outbox:
    """Frames wait here while the client is slow to read; past `limit` bytes the client
    is given up on (`on_overflow`) instead of growing the gateway's memory."""

    __slots__ = ("ws", "limit", "on_overflow", "queue", "queued", "task", "closed")

    def __init__(self, ws: WebsocketImplProtocol, limit: int,
                 on_overflow: Callable[[], object]) -> None:
        self.ws = ws
        self.limit = limit
        self.on_overflow = on_overflow
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self.task: asyncio.Task[None] | None = None
        self.closed = False

    def push(self, frame: bytes) -> None:
        """Queue a JSON frame (sent as a text frame, unchanged)."""
        if self.closed:
            return
        self.queue.append(frame)
        self.queued += len(frame)
        if self.queued > self.limit:
            self.closed = True
            self.queue.clear()
            if self.task is not None:
                self.task.cancel()  # it may be stuck writing to this very client
            self.on_overflow()
            return
        if self.task is None:
            # A writer exists only while there is a backlog: idle sockets cost no task.
            self.task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        try:
            while self.queue:
                frame = self.queue[0]
                await self.ws.send(frame.decode())
                self.queue.popleft()
                self.queued -= len(frame)
        except (ConnectionClosed, WebsocketClosed):
            self.closed = True
            self.queue.clear()
        finally:
            self.task = None

    async def flush(self, timeout: float) -> None:
        """Wait, at most `timeout` seconds, until everything queued has been written."""
        task = self.task
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)
