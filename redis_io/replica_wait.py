"""SWITCHBOARD_REDIS_WAIT_REPLICAS: a WAIT after each batch of writes, and what its answer
tells (shared by the gateway's XADD writers and the relay's commits)."""

from __future__ import annotations

import logging
import time

from redis_io.resp import Reply, pack

log = logging.getLogger(__name__)

# A replica slower than this is a shortfall; the writes go on as written.
WAIT_TIMEOUT_MS = 1000
# A master none of whose replicas answered (a replica promoted has none until another is
# attached) is not waited for during this long: WAITing a second per batch would stall
# every room on it, for no replica to protect.
_PAUSE_S = 5.0


class ReplicaWait:
    """For one connection: the WAIT command to append to a batch, or None."""

    def __init__(self, replicas: int, what: str) -> None:
        self.replicas = replicas
        self.what = what  # "XADDs", "commits": for the log
        self.shortfalls = 0
        self._paused_until = 0.0
        self._command = pack(b"WAIT", replicas, WAIT_TIMEOUT_MS)

    def command(self) -> bytes | None:
        if not self.replicas or time.monotonic() < self._paused_until:
            return None
        return self._command

    def answered(self, reply: Reply, count: int) -> None:
        """WAIT's reply (replicas that acknowledged) for a batch of `count` writes."""
        if not isinstance(reply, int) or reply >= self.replicas:
            return
        self.shortfalls += 1
        if reply == 0:
            self._paused_until = time.monotonic() + _PAUSE_S
        log.warning("WAIT: %d of %d replicas acknowledged %d %s in time%s", reply,
                    self.replicas, count, self.what,
                    f"; not waiting for {_PAUSE_S:.0f} s" if reply == 0 else "")
