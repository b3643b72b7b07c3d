"""How long a relay waits after a read before the next one: batching by time, adapted to
the load.

One commit script call costs Redis about the same whatever it carries, and every read
wakes the relay and Redis. Waiting after a thin read lets the next one gather more, at
the price of that much latency. The wait (`max_s`, SWITCHBOARD_RELAY_LINGER_MS) is worth
it only while events come fast enough to fill it, so it is skipped when fewer than
`MIN_GAIN` events would arrive meanwhile at the rate the last reads saw (thin traffic,
where the cores are idle anyway, gains nothing worth its latency), and after a full read
(the next read is full without waiting).

A wait sized to gather a fixed number of events (shorter at higher rates) was measured
and not kept: under full load it batched less and cut closed-loop throughput by 12%
(bench/RESULTS.md, optimisation 13).
"""

from __future__ import annotations

import math

# Events a wait must be expected to gather to be worth its latency.
MIN_GAIN = 2
# The rate is a moving average over about this long: it follows a change of load within
# tens of milliseconds, and one empty read (a 200 ms block) all but clears it.
_AVERAGE_OVER_S = 0.02


class Linger:
    """The rate of events one reader sees, and the wait it calls for."""

    __slots__ = ("max_s", "rate", "_last")

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.rate = 0.0  # events per second, a moving average over reads
        self._last: float | None = None  # when the previous read was taken

    def after_read(self, events: int, full: bool, now: float) -> float:
        """Seconds to wait before the next read, after one of `events` taken at `now`."""
        last, self._last = self._last, now
        if last is not None and now > last:
            weight = 1 - math.exp((last - now) / _AVERAGE_OVER_S)
            self.rate += weight * (events / (now - last) - self.rate)
        if full or self.max_s <= 0 or self.rate * self.max_s < MIN_GAIN:
            return 0.0
        return self.max_s
