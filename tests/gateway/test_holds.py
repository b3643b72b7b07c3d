"""Back-pressure toward clients (gateway/holds.py)."""

from __future__ import annotations

from gateway.holds import Holds


class Reading:
    """A connection's reading as the gateway switches it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def hold(self) -> None:
        self.calls.append("hold")

    def release(self) -> None:
        self.calls.append("release")


def test_a_connection_is_held_once_however_often_redis_is_behind_with_it() -> None:
    holds, one = Holds(), Reading()
    holds.hold(one)
    holds.hold(one)
    assert one.calls == ["hold"]
    assert len(holds) == 1


def test_the_sink_drained_releases_every_held_connection_once() -> None:
    holds, one, two = Holds(), Reading(), Reading()
    holds.hold(one)
    holds.hold(two)
    holds.release_all()
    assert (one.calls, two.calls, len(holds)) == (["hold", "release"], ["hold", "release"], 0)
    holds.release_all()  # nothing held: nothing released again
    assert one.calls == ["hold", "release"]


def test_a_connection_released_is_held_again_when_redis_falls_behind_again() -> None:
    holds, one = Holds(), Reading()
    holds.hold(one)
    holds.release_all()
    holds.hold(one)
    assert one.calls == ["hold", "release", "hold"]
