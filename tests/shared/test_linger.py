"""The relay's wait between reads: sized to the load, bounded by the setting."""

from __future__ import annotations

import pytest

from shared.linger import Linger


def _steady(linger: Linger, events: int, every_s: float, reads: int = 200) -> float:
    """Reads of `events` each, `every_s` apart; the wait after the last."""
    wait = 0.0
    for n in range(reads):
        wait = linger.after_read(events, False, n * every_s)
    return wait


@pytest.mark.parametrize(("events", "every_s", "expected_ms"), [
    (1, 0.100, 0.0),  # 10 events/s: under one more would come in 2 ms; no wait
    (1, 0.002, 0.0),  # 500/s: one more in 2 ms is not worth 2 ms of latency
    (2, 0.001, 2.0),  # 2,000/s: waiting gathers four
    (64, 0.001, 2.0),  # 64,000/s, short of a full read: the whole wait, for larger batches
])
def test_the_wait_is_taken_when_traffic_fills_it(events: int, every_s: float,
                                                 expected_ms: float) -> None:
    assert _steady(Linger(0.002), events, every_s) * 1000 == pytest.approx(expected_ms)


def test_no_wait_after_a_full_read_or_when_turned_off() -> None:
    busy = Linger(0.002)
    _steady(busy, 5, 0.001)
    assert busy.after_read(100, True, 1.0) == 0.0
    assert _steady(Linger(0.0), 5, 0.001) == 0.0


def test_the_rate_follows_a_change_of_load() -> None:
    linger = Linger(0.002)
    _steady(linger, 5, 0.001)
    # The traffic stops: reads come back empty after the 200 ms block.
    assert linger.after_read(0, False, 0.4) == 0.0
    # And starts again: within a few milliseconds the relay waits again.
    waits = [linger.after_read(5, False, 1.0 + 0.001 * n) for n in range(1, 11)]
    assert waits[0] == 0.0 and waits[-1] > 0.0


def test_a_first_read_has_no_rate_yet() -> None:
    assert Linger(0.002).after_read(3, False, 5.0) == 0.0
