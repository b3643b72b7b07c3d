"""The attacks' pure parts: the frames that must fail a connection, what /metrics and the
logs are read for, and the goals and table of the report."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.frames import Close
from websockets.protocol import State
from websockets.server import ServerProtocol

from bench.attacks import (
    PROTOCOL_ERRORS,
    Ending,
    closes_by_code,
    counted_since,
    goals,
    goals_text,
    log_findings,
    percentile,
    plan,
    table,
    tally,
)


@pytest.mark.parametrize("trigger", sorted(PROTOCOL_ERRORS))
def test_each_trigger_fails_a_websocket_with_1002(trigger: str) -> None:
    """websockets' own server, fed each frame, fails the connection with 1002."""
    server = ServerProtocol(state=State.OPEN)
    server.receive_data(PROTOCOL_ERRORS[trigger])
    sent = b"".join(server.data_to_send())
    assert server.close_sent is not None and server.close_sent.code == 1002, trigger
    assert sent[0] == 0x88 and Close.parse(sent[2:]).code == 1002


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


def test_log_findings_count_tracebacks_error_lines_and_lapsed_heartbeats() -> None:
    logs = {"gateway-1": "2026-12-06 03:11:06,555 ERROR asyncio[1] Exception in callback\n"
                         "Traceback (most recent call last):\n  KeyError: '1002'\n"
                         "2026-12-06 03:11:07,000 WARNING gateway.heartbeat[1] heartbeat "
                         "sig:gw:x had expired: sockets must rejoin\n",
            "relay-0": "2026-12-06 03:11:06,555 INFO relay[2] ready\n"}
    found = log_findings(logs)
    assert found["tracebacks"] == 1 and found["traceback_in"] == ["gateway-1"]
    assert found["error_lines"] == 1 and found["first_errors"][0].startswith("gateway-1: ")
    assert found["heartbeat_lapsed"] == 1


def test_tally_counts_codes_and_reasons_and_the_slowest_close() -> None:
    counted = tally([Ending("1008", "too many frames", 0.2), Ending("1008", "too many frames",
                     0.5), Ending("1006", "", 0.4), Ending("open")])
    assert counted == {"codes": {"1008": 2, "1006": 1, "open": 1},
                       "reasons": {"too many frames": 2}, "first_close_s": 0.2,
                       "last_close_s": 0.5}


def test_percentile_is_the_nearest_rank() -> None:
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 0.99) == 99.0
    assert percentile(samples, 0.5) == 50.0
    assert percentile([7.0], 0.99) == 7.0


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


def _result(name: str, kind: str, growth: float, worst: float, disconnects: list[str],
            tracebacks: int = 0) -> dict[str, Any]:
    return {"attack": name, "kind": kind, "outcome": {"codes": {"1008": 4},
                                                      "reasons": {"too many frames": 4}},
            "bystanders": {"ok": 20, "failed": 0, "disconnects": disconnects,
                           "worst_ms": worst, "p99_ms": worst},
            "rss_mb": {"before": 60.0, "peak": 60.0 + growth, "after": 61.0},
            "rss_growth_mb": growth, "gateway_cpu_s": 1.5, "gateway_alive": True,
            "server_closes": {"1008": 4},
            "logs": {"tracebacks": tracebacks, "traceback_in": ["gateway-1"] if tracebacks
                     else [], "error_lines": tracebacks, "heartbeat_lapsed": 0}}


def test_goals_are_met_or_not_by_what_was_measured() -> None:
    good = [_result("ping flood x4, reading", "ping_flood", 3.0, 40.0, []),
            _result("one-byte fragments x30", "one_byte_fragments", 5.0, 12.0, [])]
    assert [g["met"] for g in goals(good)] == [True, True, True, True, True]
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
    text = goals_text({"goals": goals(bad)})
    assert "no bystander disconnected: ping flood x4, not reading (a: 1012 heartbeat " \
           "lapsed): not met" in text


def test_table_has_a_row_per_attack_and_marks_a_failed_one() -> None:
    rows = table({"attacks": [_result("ping flood x4, reading", "ping_flood", 3.0, 40.0, []),
                              {"attack": "byte trickle x500", "failed": "boom\nOSError: x"}]})
    lines = rows.splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert lines[2].startswith("| ping flood x4, reading | 20 / 0 | none | 40 / 40 | "
                               "60.0 / 63.0 / 61.0 | 1.50 | 1008 x4 | 1008 x4 | 0 / 0 |")
    assert 'reasons: "too many frames"' in lines[2]
    assert lines[3].startswith("| byte trickle x500 | FAILED: OSError: x |")
