"""When keep-alive closes a silent socket (gateway/keep_alive.py)."""

from __future__ import annotations

import pytest

from gateway.keep_alive import silent_too_long

# (now, last heard, idle timeout) -> closed
TABLE = [
    (100.0, 100.0, 30.0, False),  # heard just now
    (129.9, 100.0, 30.0, False),  # within the timeout
    (130.0, 100.0, 30.0, False),  # exactly the timeout: not yet past it
    (130.1, 100.0, 30.0, True),  # past it
    (1000.0, 100.0, 30.0, True),
]


@pytest.mark.parametrize(("now", "last_heard", "idle", "closed"), TABLE)
def test_silent_too_long(now: float, last_heard: float, idle: float, closed: bool) -> None:
    assert silent_too_long(now, last_heard, idle) is closed
