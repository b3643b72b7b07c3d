"""Frames per connection (docs/protocol.md, "Limits"): a token bucket and a count of strikes.

Pure: the caller passes the time. A frame beyond the bucket is refused with an error;
a client that keeps sending refused frames is abusive and gets closed with 1008.
"""

from __future__ import annotations

from enum import Enum


class Verdict(Enum):
    ALLOWED = "allowed"
    REFUSED = "refused"  # answer `rate limit exceeded`, keep the socket
    ABUSIVE = "abusive"  # close 1008


class FrameRate:
    """`rate` frames/s sustained, bursts of `burst`; refusals decay at `forgive` per second
    and more than `strikes` of them outstanding make the client abusive."""

    __slots__ = ("rate", "burst", "forgive", "strikes", "_tokens", "_refused", "_last")

    def __init__(self, rate: float, burst: int, now: float, strikes: int = 100,
                 forgive: float = 10.0) -> None:
        self.rate = rate
        self.burst = burst
        self.strikes = strikes
        self.forgive = forgive
        self._tokens = float(burst)
        self._refused = 0.0
        self._last = now

    def check(self, now: float) -> Verdict:
        """Account for one frame arriving at `now`."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
        self._refused = max(0.0, self._refused - elapsed * self.forgive)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return Verdict.ALLOWED
        self._refused += 1.0
        return Verdict.ABUSIVE if self._refused > self.strikes else Verdict.REFUSED
