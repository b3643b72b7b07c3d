"""A socket's bounded queue of frames to send (docs/protocol.md, "Limits": slow clients)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from gateway.ws_connection import WsConnection
from shared.close_codes import CloseCode


class Outbox:
    """Frames wait here while the client is slow to read; past `limit` bytes the client
    is given up on (closed 1013) instead of growing the gateway's memory."""

    __slots__ = ("connection", "limit", "queue", "queued", "batch", "_emptied", "_count")

    def __init__(self, connection: WsConnection, limit: int,
                 count: Callable[[list[bytes]], None] = lambda frames: None) -> None:
        self.connection = connection
        self.limit = limit
        self._count = count  # every frame sent (metrics)
        # Made when a frame first has to wait: an idle socket does not keep one.
        self.queue: deque[bytes] | None = None
        self.queued = 0
        # Frames held for one write with the others of the same batch (`push_batched`).
        self.batch: list[bytes] | None = None
        self._emptied: asyncio.Future[None] | None = None  # for `flush`
        connection.on_writable = self._send_queued

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
        connection = self.connection
        if not connection.open:
            return  # closing: the client reads no further frames
        self._count(frames)
        if self.queue is None and not connection.write_paused:
            connection.send_texts(frames)
            return
        # The transport holds more than the client has read (its high-water mark):
        # wait here, where the bytes are counted against the limit.
        if self.queue is None:
            self.queue = deque()
        for frame in frames:
            self.queue.append(frame)
            self.queued += len(frame)
        if self.queued > self.limit:
            self.queue = None
            self._set_emptied()
            # Failed, not closed: a client that does not read would not answer a close.
            connection.fail(CloseCode.TRY_AGAIN_LATER, "slow")

    def _send_queued(self) -> None:
        """The client read enough of what the transport held: send what waited."""
        queue, self.queue, self.queued = self.queue, None, 0
        if queue and self.connection.open:
            self.connection.send_texts(list(queue))
        self._set_emptied()

    def _set_emptied(self) -> None:
        if self._emptied is not None and not self._emptied.done():
            self._emptied.set_result(None)
        self._emptied = None

    async def flush(self, timeout: float) -> None:
        """Wait, at most `timeout` seconds, until everything queued has been written."""
        if self.queue is None:
            return
        if self._emptied is None:
            self._emptied = asyncio.get_running_loop().create_future()
        await asyncio.wait({self._emptied}, timeout=timeout)
