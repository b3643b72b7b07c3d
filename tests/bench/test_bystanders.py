"""The bystanders' round-trip figures."""

from __future__ import annotations

import asyncio
import time

from bench.bystanders import Bystanders, RoundTrips, percentile


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


class _Socket:
    """What `_round_trips` uses of a websockets connection: sends go nowhere."""

    close_code: int | None = None

    async def send(self, _: str) -> None:
        return None

    async def close(self) -> None:
        return None


async def test_a_stop_that_comes_with_a_round_trips_answer_still_stops_it() -> None:
    """The attacks smoke run's stall: the round-trip loop was cancelled (`__aexit__`) in
    the loop iteration in which its answer came; Python 3.11's asyncio.wait_for returned
    the answer instead of the cancel, and the loop went on for good."""
    bystanders = Bystanders("ws://unused/", every=0.01)
    bystanders.a = bystanders.b = _Socket()  # type: ignore[assignment]
    bystanders.b_id = "b"
    task = asyncio.create_task(bystanders._round_trips())
    while 0 not in bystanders._waiting:
        await asyncio.sleep(0)
    bystanders._waiting[0].set_result(time.monotonic())  # the answer...
    task.cancel()  # ... and the stop, in the same iteration
    done, _ = await asyncio.wait([task], timeout=1)
    assert done and task.cancelled()


async def test_a_round_trip_under_way_when_the_attack_ends_is_given_its_time() -> None:
    """It once counted as failed (a round trip "never came back", a goal not met) when
    the attack ended in the few ms it was out."""
    bystanders = Bystanders("ws://unused/", every=0.01)
    bystanders.a = bystanders.b = _Socket()  # type: ignore[assignment]
    bystanders.b_id = "b"
    bystanders._tasks = [asyncio.create_task(bystanders._round_trips())]
    while 0 not in bystanders._waiting:
        await asyncio.sleep(0)
    stopping = asyncio.create_task(bystanders.__aexit__())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # it waits for the answer...
    bystanders._waiting[0].set_result(time.monotonic())
    await asyncio.wait_for(stopping, 2)
    summary = bystanders.trips.summary()
    assert (summary["ok"], summary["failed"]) == (1, 0)  # ...which counts as any other
