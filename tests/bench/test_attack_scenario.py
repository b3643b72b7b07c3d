"""The attacks scenario's pure parts: its plan, and what /metrics and the logs are read
for (the heartbeat's warnings as gateway/heartbeat.py writes them now)."""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import pytest

from bench.attack_scenario import (
    closes_by_code,
    counted_since,
    heartbeat_lapses,
    log_findings,
    plan,
    worst_loop_lag,
)
from bench.attacks import PROTOCOL_ERRORS
from gateway.heartbeat import Heartbeat
from shared import keys


def test_plan_scales_socket_counts_and_lowers_the_idle_timeout_for_the_trickle() -> None:
    full = {attack.name: attack for attack in plan(3.0, 1.0)}
    assert len(full) == 12
    assert sum(a.kind == "ghosts" for a in full.values()) == len(PROTOCOL_ERRORS)
    trickle = full["byte trickle x500"]
    assert trickle.env["SWITCHBOARD_IDLE_TIMEOUT"] == "4"
    assert full["one-byte fragments x30"].options["fragments"] == 64_900
    small = plan(0.5, 0.1)
    assert all(attack.options.get("sockets", 1) >= 1 for attack in small)
    assert {a.name for a in small} >= {"ping flood x1, reading", "byte trickle x50"}


def test_metrics_text_gives_closes_by_code_and_what_grew() -> None:
    text = ("# HELP switchboard_closes_total WebSockets ended, by how.\n"
            '# TYPE switchboard_closes_total counter\n'
            'switchboard_closes_total{code="1002"} 3.0\n'
            'switchboard_closes_total{code="client"} 12.0\n'
            'switchboard_closes_total{code="other"} 0.0\n'
            'switchboard_frames_received_total{event="ping"} 9.0\n')
    before = closes_by_code(text)
    assert before == {"1002": 3, "client": 12, "other": 0}
    after = {**before, "1002": 103, "1008": 4}
    assert counted_since(before, after) == {"1002": 100, "1008": 4}
    assert counted_since(None, after) is None


class _Redis:
    """What a beat needs of Redis: SET ... GET, answering `previous`."""

    def __init__(self, previous: bytes | None) -> None:
        self.previous = previous

    async def set(self, *args: Any, **kwargs: Any) -> bytes | None:
        return self.previous


async def _heartbeat_warning(previous: bytes | None, since_last_s: float,
                             caplog: pytest.LogCaptureFixture) -> str:
    """The log line gateway/heartbeat.py writes now when a beat finds `previous` in its
    key, `since_last_s` after the last beat Redis took; in the gateway's text format."""
    heartbeat = Heartbeat(cast(Any, _Redis(previous)), "gateway-h-1-ab", 7000, lambda: None)
    heartbeat._last_beat = time.monotonic() - since_last_s
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gateway.heartbeat"):
        await heartbeat.beat()
    [record] = caplog.records
    return (f"2026-12-07 03:11:07,000 WARNING gateway.heartbeat[1] gateway=gateway-h-1-ab "
            f"{record.getMessage()}\n")


async def test_log_findings_count_tracebacks_error_lines_and_lapsed_heartbeats(
        caplog: pytest.LogCaptureFixture) -> None:
    declared_dead = await _heartbeat_warning(keys.GATEWAY_DEAD, 2.0, caplog)
    silent = await _heartbeat_warning(None, keys.GATEWAY_DEAD_KEPT_MS / 1000 + 1, caplog)
    missing = await _heartbeat_warning(None, 2.0, caplog)  # set again: no lapse
    assert "was missing" in missing
    logs = {"gateway-1": "2026-12-06 03:11:06,555 ERROR asyncio[1] Exception in callback\n"
                         "Traceback (most recent call last):\n  KeyError: '1002'\n"
                         + declared_dead + missing,
            "gateway-2": silent + missing,
            "relay-0": "2026-12-06 03:11:06,555 INFO relay[2] ready\n"}
    found = log_findings(logs)
    assert found["tracebacks"] == 1 and found["traceback_in"] == ["gateway-1"]
    assert found["error_lines"] == 1 and found["first_errors"][0].startswith("gateway-1: ")
    assert found["heartbeat_lapsed"] == 2
    assert heartbeat_lapses(logs["gateway-1"]) == [declared_dead.strip()]
    assert heartbeat_lapses(missing) == []


def _lag(counts: list[int]) -> str:
    bounds = ["0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5",
              "5.0", "+Inf"]
    return "".join(f'switchboard_event_loop_lag_seconds_bucket{{le="{le}"}} {count}.0\n'
                   for le, count in zip(bounds, counts, strict=True))


def test_worst_loop_lag_is_the_lowest_bucket_holding_every_new_observation() -> None:
    before = _lag([10, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12])
    # 8 more observations: 5 below 1 ms, 2 below 0.25 s, 1 between 0.5 and 1 s.
    after = _lag([15, 17, 17, 17, 17, 17, 19, 19, 20, 20, 20, 20])
    assert worst_loop_lag(before, after) == 1.0
    assert worst_loop_lag(before, _lag([10, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 13])) \
        == float("inf")
    assert worst_loop_lag(before, before) is None  # nothing observed in between
    assert worst_loop_lag("", after) == 1.0 and worst_loop_lag(None, after) is None
    assert worst_loop_lag("no histogram", "no histogram") is None
