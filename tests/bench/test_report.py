"""The benchmark's targets in the benchmark's report: measured against each goal."""

from __future__ import annotations

from typing import Any

from bench.report import targets


def _run(sb_msgs: float, pj_msgs: float, p99: float, kib: float) -> dict[str, Any]:
    return {
        "throughput": {"switchboard": {"msgs_per_s": sb_msgs},
                       "peerjs": {"msgs_per_s": pj_msgs}},
        "latency": {"switchboard": {"p99_ms": p99}, "peerjs": {"p99_ms": 1.0}},
        "idle": {"switchboard": {"main_kib_per_conn": kib},
                 "peerjs": {"main_kib_per_conn": 7.0}},
    }


def test_ratios_and_own_values_are_held_to_their_goals() -> None:
    lines = targets(_run(50_000, 40_000, 12.0, 4.9)).splitlines()
    assert lines[0] == "Targets:"
    assert "relay throughput, closed loop: 1.25x (goal >= 1x): met" in lines[1]
    assert "CPU per message at 5,000 msg/s: not measured" in lines[2]
    assert "p99 at the fixed-rate scenario: 12.00 ms (goal <= 10 ms): not met" in lines[3]
    assert "join storm: not measured" in lines[4]
    assert "idle memory per connection, gateway: 4.90 KB (goal <= 5 KB): met" in lines[5]


def test_a_ratio_just_below_its_goal_is_not_met() -> None:
    assert "0.99x (goal >= 1x): not met" in targets(_run(39_600, 40_000, 5.0, 3.0))
