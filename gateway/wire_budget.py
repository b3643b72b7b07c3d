"""What one client may put on the wire, every frame kind counted (docs/protocol.md, "Limits").

The frame rate of gateway/rate_limit.py counts data messages, the ones the service acts
on. This counts everything that costs the gateway work to read: data, pings, pongs,
continuations and closes, and their bytes, so that one socket cannot keep the event
loop (and with it every other socket and the heartbeat) busy. The bounds are far above
what an honest client sends: a breach closes the socket (1008), it does not slow it.

Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WireLimits:
    frame_rate: float  # frames of any kind per second, sustained
    frame_burst: int
    byte_rate: float  # bytes per second, sustained
    byte_burst: int
    max_fragments: int  # frames of one fragmented message


class WireBudget:
    """Two token buckets, frames and bytes, refilled at their rates up to their bursts."""

    __slots__ = ("limits", "_frames", "_bytes", "_last")

    def __init__(self, limits: WireLimits, now: float) -> None:
        self.limits = limits
        self._frames = float(limits.frame_burst)
        self._bytes = float(limits.byte_burst)
        self._last = now

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._last)
        self._last = now
        limits = self.limits
        self._frames = min(float(limits.frame_burst), self._frames + elapsed * limits.frame_rate)
        self._bytes = min(float(limits.byte_burst), self._bytes + elapsed * limits.byte_rate)

    def take_bytes(self, count: int) -> bool:
        """Account for `count` bytes read; False when they are over the budget."""
        self._bytes -= count
        return self._bytes >= 0

    @property
    def frames_left(self) -> int:
        """How many more frames the client may send now."""
        return max(int(self._frames), 0)

    def take_frames(self, count: int) -> None:
        self._frames -= count
