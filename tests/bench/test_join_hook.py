"""The join hook scenario (`python -m bench --only joinhook`): its receiver verifies what
it is sent, and at smoke size the scenario runs on Switchboard alone, loses nothing, has
every join asked once, and reports every figure and its goal (the speed is not checked
here: bench/RESULTS.md holds the measured figures)."""

from __future__ import annotations

import datetime
import http.client
import json
import subprocess
import sys
from pathlib import Path

from standardwebhooks.webhooks import Webhook

from bench.hook_receiver import WEBHOOK_SECRET, start_receiver
from bench.scenarios import _hook_seconds
from harness.processes import ROOT


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/join-hook", body=body, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read()
    finally:
        connection.close()


def test_the_receiver_allows_signed_requests_and_refuses_the_others() -> None:
    receiver = start_receiver()
    try:
        body = json.dumps({"room": "r", "peer_id": "p", "status": {}, "origin": None,
                           "headers": {}}).encode()
        now = datetime.datetime.now(datetime.UTC)
        signed = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
                  "webhook-signature": Webhook(WEBHOOK_SECRET).sign("msg_1", now,
                                                                    body.decode())}
        assert _post(receiver.port, body, signed) == (200, b'{"allow":true}')
        forged = {**signed, "webhook-signature": "v1,AAAA"}
        assert _post(receiver.port, body, forged)[0] == 401
        assert _post(receiver.port, b'{"room":"x"}', {})[0] == 401
        stats = receiver.stats()
        assert (stats["verified"], stats["refused"]) == (1, 2)
    finally:
        receiver.stop()
    assert receiver.popen.returncode == 0  # it stopped at its SIGTERM


def test_the_gateways_hook_timing_is_read_from_its_metrics() -> None:
    metrics = ('switchboard_join_hook_seconds_bucket{le="0.0025"} 3.0\n'
               'switchboard_join_hook_seconds_bucket{le="0.005"} 6.0\n'
               "switchboard_join_hook_seconds_count 8.0\n"
               "switchboard_join_hook_seconds_sum 0.04\n")
    assert _hook_seconds(metrics) == {"hook_calls": 8, "hook_call_mean_ms": 5.0,
                                      "hook_calls_within_5ms": 0.75}
    assert _hook_seconds("") == {}


def test_join_hook_scenario_reports_its_figures(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--servers",
                             "switchboard", "--only", "joinhook", "--results-dir",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    results = json.loads(path.read_text())
    assert results["ok"] and results["lost"] == 0 and not results["problems"], output
    assert set(results["scenarios"]) == {"joinhook"}
    assert set(results["scenarios"]["joinhook"]) == {"switchboard"}
    joinhook = results["scenarios"]["joinhook"]["switchboard"]
    # One run without the hook, one with it, each on servers of its own: every join
    # timed, the room's other member told, and (with the hook) the receiver asked once
    # for each join, the warm-up's too, with nothing refused.
    assert set(joinhook["steps"]) == {"plain_1", "hook_1"}
    for step in joinhook["steps"].values():
        assert step["joined"] == step["clients"] == 40 and step["lost"] == 0, step
        assert step["new_peers"] == step["expected_new_peers"] == 20, step
        assert 0 < step["join_p50_ms"] <= step["join_p99_ms"] <= step["join_max_ms"], step
    hook = joinhook["steps"]["hook_1"]
    assert hook["hook_verified"] == hook["hook_calls"] == 40 + hook["warmup_joins"], hook
    assert hook["hook_refused"] == 0 and "hook-receiver" in hook["cpu_ms_per_join"], hook
    assert "hook-receiver" not in joinhook["steps"]["plain_1"]["cpu_ms_per_join"]
    for key in ("plain_p50_ms", "plain_p99_ms", "hook_p50_ms", "hook_p99_ms",
                "hook_call_mean_ms"):
        assert joinhook[key] > 0, (key, joinhook)
    # 40 joins may cost the receiver less than the 0.01 ms per join the report rounds to.
    assert joinhook["receiver_cpu_ms_per_join"] >= 0, joinhook
    assert joinhook["added_p99_ms"] == joinhook["added_p99_min_ms"] == joinhook[
        "added_p99_max_ms"] == round(joinhook["hook_p99_ms"] - joinhook["plain_p99_ms"], 2)
    assert "12 join hook" in result.stdout
    goal = result.stdout.split("Goal of the join hook:")[1].split("\n\n")[0]
    assert goal.count("(goal <= 5 ms)") == 1 and "not measured" not in goal, goal
    assert "Targets:" not in result.stdout  # none of their scenarios ran
