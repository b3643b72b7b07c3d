"""Process-wide settings of the Python runtime that the gateway and the relay share."""

from __future__ import annotations

import gc

# Allocations (minus frees) between collections of the youngest generation; CPython's
# default is 700.
_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector() -> None:
    """Collect reference cycles far less often, and never walk what start-up made.

    Relaying a message makes no reference cycles (everything it allocates is freed by
    reference counting), so the cycle collector's work on the hot path is waste, and
    its full collections walk every object of the process: with thousands of sockets a
    pause of tens of milliseconds, the benchmark's whole latency tail at 5,000 msg/s
    (p99 39-54 ms before, 9-18 ms after, bench/RESULTS.md). Call once, after imports and
    before serving: what exists then is frozen out of every collection.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_THRESHOLD, 20, 100)
