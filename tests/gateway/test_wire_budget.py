"""The budget of frames and bytes every socket gets (gateway/wire_budget.py)."""

from __future__ import annotations

from gateway.wire_budget import WireBudget, WireLimits

LIMITS = WireLimits(frame_rate=10, frame_burst=50, byte_rate=100, byte_burst=1000,
                    max_fragments=4)


def test_a_burst_is_allowed_then_frames_come_back_at_the_rate() -> None:
    budget = WireBudget(LIMITS, now=0.0)
    assert budget.frames_left == 50
    budget.take_frames(50)
    assert budget.frames_left == 0
    budget.refill(0.5)
    assert budget.frames_left == 5
    budget.refill(100.0)
    assert budget.frames_left == 50  # never more than the burst


def test_bytes_past_the_burst_are_refused_until_refilled() -> None:
    budget = WireBudget(LIMITS, now=0.0)
    assert budget.take_bytes(1000)
    assert not budget.take_bytes(1)
    budget.refill(1.0)  # 100 back, 1 of them owed
    assert budget.take_bytes(99)
    assert not budget.take_bytes(1)


def test_time_going_backwards_refills_nothing() -> None:
    budget = WireBudget(LIMITS, now=10.0)
    budget.take_frames(50)
    budget.refill(5.0)
    assert budget.frames_left == 0
