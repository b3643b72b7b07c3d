"""The frame-rate limit: bursts, sustained rate, refusals, abuse."""

from __future__ import annotations

from gateway.rate_limit import FrameRate, Verdict


def _burst(limit: FrameRate, count: int, at: float) -> list[Verdict]:
    return [limit.check(at) for _ in range(count)]


def test_a_burst_up_to_the_limit_is_allowed_and_the_next_frame_refused() -> None:
    limit = FrameRate(rate=50, burst=200, now=0.0)
    assert _burst(limit, 200, 0.0) == [Verdict.ALLOWED] * 200
    assert limit.check(0.0) is Verdict.REFUSED


def test_the_sustained_rate_refills_the_bucket() -> None:
    limit = FrameRate(rate=50, burst=200, now=0.0)
    _burst(limit, 200, 0.0)
    assert _burst(limit, 50, 1.0) == [Verdict.ALLOWED] * 50
    assert limit.check(1.0) is Verdict.REFUSED


def test_a_client_at_the_sustained_rate_is_never_refused() -> None:
    limit = FrameRate(rate=50, burst=200, now=0.0)
    verdicts = {limit.check(n / 50) for n in range(50 * 60)}
    assert verdicts == {Verdict.ALLOWED}


def test_a_client_that_keeps_pushing_past_the_limit_becomes_abusive() -> None:
    limit = FrameRate(rate=50, burst=200, now=0.0, strikes=100)
    _burst(limit, 200, 0.0)
    assert _burst(limit, 100, 0.0) == [Verdict.REFUSED] * 100
    assert limit.check(0.0) is Verdict.ABUSIVE


def test_refusals_are_forgiven_over_time() -> None:
    limit = FrameRate(rate=50, burst=200, now=0.0, strikes=100, forgive=10)
    _burst(limit, 200, 0.0)
    _burst(limit, 100, 0.0)
    # Ten seconds later all strikes have decayed and the bucket is full again.
    assert _burst(limit, 200, 10.0) == [Verdict.ALLOWED] * 200
    assert _burst(limit, 100, 10.0) == [Verdict.REFUSED] * 100
