"""The relay's retry decisions (relay/worker.py). Pure: no Redis."""

from __future__ import annotations

import pytest

from relay.worker import BACKOFF_MAX_S, BACKOFF_MIN_S, next_backoff, read_back_delay


@pytest.mark.parametrize(("backoff", "after"), [
    (BACKOFF_MIN_S, 2 * BACKOFF_MIN_S),
    (0.4, 0.8),
    (0.8, BACKOFF_MAX_S),       # never longer than the most
    (BACKOFF_MAX_S, BACKOFF_MAX_S),
])
def test_next_backoff(backoff: float, after: float) -> None:
    assert next_backoff(backoff) == pytest.approx(after)


@pytest.mark.parametrize(("error", "delay"), [
    ("MOVED", 0.0),             # the slot is elsewhere now: read it back from there at once
    ("ASK", 0.0),
    ("TRYAGAIN", 0.4),          # a cluster in flux: give it time
    ("CLUSTERDOWN", 0.4),
    ("LOST", 0.4),              # a master that cannot be reached (failing over)
    (None, 0.4),                # an error of the command itself (NOSCRIPT...)
])
def test_read_back_delay(error: str | None, delay: float) -> None:
    assert read_back_delay(error, 0.4) == delay
