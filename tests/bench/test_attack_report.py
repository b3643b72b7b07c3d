"""The attacks' report: the goals met or not by what was measured, and the table."""

from __future__ import annotations

from typing import Any

from bench.attack_report import goals, goals_text, table


def _result(name: str, kind: str, growth: float, worst: float, disconnects: list[str],
            tracebacks: int = 0) -> dict[str, Any]:
    return {"attack": name, "kind": kind, "outcome": {"codes": {"1008": 4},
                                                      "reasons": {"too many frames": 4},
                                                      "bytes_sent": 2_620_000,
                                                      "flood_s": 5.001,
                                                      "frames_per_s": 4_000},
            "bystanders": {"ok": 20, "failed": 0, "disconnects": disconnects,
                           "worst_ms": worst, "p99_ms": worst},
            "rss_mb": {"before": 60.0, "peak": 60.0 + growth, "after": 61.0},
            "rss_growth_mb": growth, "gateway_cpu_s": 1.5, "gateway_alive": True,
            "server_closes": {"1008": 4}, "loop_lag_worst_s": 0.25,
            "logs": {"tracebacks": tracebacks, "traceback_in": ["gateway-1"] if tracebacks
                     else [], "error_lines": tracebacks, "heartbeat_lapsed": 0}}


def test_goals_are_met_or_not_by_what_was_measured() -> None:
    good = [_result("ping flood x4, reading", "ping_flood", 3.0, 40.0, []),
            _result("one-byte fragments x30", "one_byte_fragments", 5.0, 12.0, [])]
    assert [g["met"] for g in goals(good)] == [True, True, True, True, True, True]
    bad = [_result("ping flood x4, not reading", "ping_flood", 506.0, 9000.0,
                   ["a: 1012 heartbeat lapsed"], tracebacks=2),
           _result("one-byte fragments x30", "one_byte_fragments", 40.0, 12.0, [])]
    verdicts = {g["goal"]: (g["met"], g["measured"]) for g in goals(bad)}
    assert verdicts["no bystander disconnected"] == (
        False, "ping flood x4, not reading (a: 1012 heartbeat lapsed)")
    assert verdicts["worst bystander round trip < 1.5 s"] == (
        False, "9,000 ms (ping flood x4, not reading)")
    assert verdicts["four ping-flooding sockets, reading or not cost the gateway < 64 MB RSS"] \
        == (False, "+506.0 MB (ping flood x4, not reading)")
    assert verdicts["thirty one-byte-fragment sockets cost the gateway < 32 MB RSS"][0] is False
    assert verdicts["no traceback in any log"][0] is False
    lag = "the gateway's worst event-loop lag <= 0.5 s in every attack"
    assert verdicts[lag] == (True, "<= 0.25 s (ping flood x4, not reading)")
    late = [{**bad[0], "loop_lag_worst_s": 1.0}, {**bad[1], "loop_lag_worst_s": None}]
    assert {g["goal"]: g for g in goals(late)}[lag]["met"] is False
    assert {g["goal"]: g for g in goals(bad[1:] + [{**bad[0], "loop_lag_worst_s": None}])}[
        lag]["met"] is None
    text = goals_text({"goals": goals(bad)})
    assert "no bystander disconnected: ping flood x4, not reading (a: 1012 heartbeat " \
           "lapsed): not met" in text


def test_table_has_a_row_per_attack_and_marks_a_failed_one() -> None:
    rows = table({"attacks": [_result("ping flood x4, reading", "ping_flood", 3.0, 40.0, []),
                              {"attack": "byte trickle x500", "failed": "boom\nOSError: x"}]})
    lines = rows.splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert lines[2].startswith("| ping flood x4, reading | 20 / 0 | none | 40 / 40 | "
                               "60.0 / 63.0 / 61.0 | 1.50 | <= 0.25 | 1008 x4 | 1008 x4 | "
                               "0 / 0 |")
    assert 'TCP took 2.6 MB in 5.001 s (4,000 frames/s); reasons: "too many frames"' \
        in lines[2]
    assert lines[3].startswith("| byte trickle x500 | FAILED: OSError: x |")
