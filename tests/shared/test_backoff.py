"""The one retry policy (shared/backoff.py)."""

from __future__ import annotations

from shared.backoff import Backoff


def test_delays_double_up_to_the_most_and_start_over_after_a_success() -> None:
    backoff = Backoff(first=0.1, most=1.0)
    assert [backoff.next() for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    backoff.reset()
    assert backoff.next() == 0.1
