"""The bystanders' round-trip figures."""

from __future__ import annotations

from bench.bystanders import RoundTrips, percentile


def test_percentile_is_the_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 0.5) == 50.0
    assert percentile([7.0], 0.99) == 7.0


def test_a_round_trip_that_failed_counts_with_how_long_it_was_waited_for() -> None:
    trips = RoundTrips(rtts_ms=[2.0, 3.0, 5004.0], failed=1, disconnects=[])
    summary = trips.summary()
    assert summary["ok"] == 2 and summary["failed"] == 1
    assert summary["worst_ms"] == 5004.0 and summary["p50_ms"] == 3.0
