"""A socket's bounded queue of frames to send (protocol.md, "Limits": slow clients)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from sanic.exceptions import WebsocketClosed
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from gateway.ws_frames import text_frame

log = logging.getLogger(__name__)

# Bytes the kernel has not taken yet, beyond which frames wait in the queue (bounded by
# the send buffer limit) and a writer task sends them as the client reads.
_WRITE_NOW_BELOW = 64 * 1024


class Outbox:
    """Frames wait here while the client is slow to read; past `limit` bytes the client
    is given up on (`on_overflow`) instead of growing the gateway's memory."""

    __slots__ = ("ws", "limit", "on_overflow", "queue", "queued", "task", "closed", "batch")

    def __init__(self, ws: WebsocketImplProtocol, limit: int,
                 on_overflow: Callable[[], object]) -> None:
        self.ws = ws
        self.limit = limit
        self.on_overflow = on_overflow
        # Made when a frame first has to wait: an idle socket does not keep one.
        self.queue: deque[bytes] | None = None
        self.queued = 0
        self.task: asyncio.Task[None] | None = None
        self.closed = False
        # Frames held for one write with the others of the same batch (`push_batched`).
        self.batch: list[bytes] | None = None

    def push_batched(self, frame: bytes) -> bool:
        """Hold `frame` until `send_batch`, so that the frames a socket gets from one
        read of Redis go out in one write. True for the batch's first frame."""
        if self.batch is None:
            self.batch = [frame]
            return True
        self.batch.append(frame)
        return False

    def send_batch(self) -> None:
        frames, self.batch = self.batch, None
        if frames:
            self._push(frames)

    def push(self, frame: bytes) -> None:
        """Send a JSON frame as a text frame, unchanged: at once when the socket can take
        it, else after what is queued (or held for a batch)."""
        if self.batch is not None:
            self.batch.append(frame)
            return
        self._push([frame])

    def _push(self, frames: list[bytes]) -> None:
        if self.closed:
            return
        if self.task is None and self._write_now(frames):
            return
        if self.queue is None:
            self.queue = deque()
        for frame in frames:
            self.queue.append(frame)
            self.queued += len(frame)
        if self.queued > self.limit:
            self.closed = True
            self.queue = None
            if self.task is not None:
                self.task.cancel()  # it may be stuck writing to this very client
            self.on_overflow()
            return
        if self.task is None:
            # A writer exists only while there is a backlog: idle sockets cost no task.
            self.task = asyncio.get_running_loop().create_task(self._drain())

    def _write_now(self, frames: list[bytes]) -> bool:
        """Write without a task when nothing else is writing and the client keeps up."""
        ws = self.ws
        transport = getattr(ws.io_proto, "transport", None)
        if (transport is None or transport.is_closing() or ws.conn_mutex.locked()
                or ws.ws_proto.state is not State.OPEN
                or transport.get_write_buffer_size() > _WRITE_NOW_BELOW):
            return False
        if len(frames) == 1:
            transport.write(text_frame(frames[0]))
        else:
            transport.write(b"".join([text_frame(frame) for frame in frames]))
        return True

    async def _drain(self) -> None:
        queue = self.queue
        try:
            while queue:
                frame = queue[0]
                await self.ws.send(frame.decode())
                queue.popleft()
                self.queued -= len(frame)
        except (ConnectionClosed, WebsocketClosed):
            self.closed = True
        finally:
            self.task = None
            if self.closed or not queue:
                self.queue = None

    async def flush(self, timeout: float) -> None:
        """Wait, at most `timeout` seconds, until everything queued has been written."""
        task = self.task
        if task is not None:
            await asyncio.wait({task}, timeout=timeout)
