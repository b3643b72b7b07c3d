"""How long to wait between two round trips to Redis: batching by time, adapted to the
load. The relay waits after each read (SWITCHBOARD_RELAY_LINGER_MS), a gateway after each
batch of XADDs to a master (SWITCHBOARD_GATEWAY_LINGER_MS).

A round trip costs a write and a read in both processes, and a wake-up of each, about the
same whatever it carries (and one commit script call costs Redis the same for one event
as for ten). Waiting lets the next one carry more, at the price of that much latency. The
wait (`max_s`) is worth it only while events come fast enough to fill it, so it is skipped
when fewer than `MIN_GAIN` events would arrive meanwhile at the rate the last round trips
saw (thin traffic, where the cores are idle anyway, gains nothing worth its latency), and
after a full one (the next is full without waiting).

A wait sized to gather a fixed number of events (shorter at higher rates) was measured in
the relay and not kept: under full load it batched less and cut closed-loop throughput by
12% (bench/RESULTS.md, optimisation 13).
"""

from __future__ import annotations

import math

# Events a wait must be expected to gather to be worth its latency.
MIN_GAIN = 2
# The rate is a moving average over about this long: it follows a change of load within
# tens of milliseconds, and one empty read (a 200 ms block) all but clears it.
_AVERAGE_OVER_S = 0.02


class Linger:
    """The rate of events one connection carries, and the wait it calls for."""

    __slots__ = ("max_s", "rate", "_last")

    def __init__(self, max_s: float) -> None:
        self.max_s = max_s
        self.rate = 0.0  # events per second, a moving average over reads
        self._last: float | None = None  # when the previous round trip was

    def after_read(self, events: int, full: bool, now: float) -> float:
        """Seconds to wait before the next round trip, after one that carried `events`
        (and was `full`) at `now`."""
        last, self._last = self._last, now
        if last is not None and now > last:
            weight = 1 - math.exp((last - now) / _AVERAGE_OVER_S)
            self.rate += weight * (events / (now - last) - self.rate)
        if full or self.max_s <= 0 or self.rate * self.max_s < MIN_GAIN:
            return 0.0
        return self.max_s
