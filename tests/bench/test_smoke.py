"""The benchmark's smoke run (`python -m bench --smoke`): it runs, and nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import ROOT


def bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """`python -m bench ARGS`, in a process group of its own: on a timeout the servers it
    started go with it (else they outlive the test, and slow down every test after)."""
    process = subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"bench {args} still running after {timeout:g} s:\n"
                             f"{stdout[-3000:]}{stderr[-3000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_smoke_run_loses_nothing(tmp_path: Path) -> None:
    result = bench("--smoke", "--results-dir", str(tmp_path), timeout=150)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    results = json.loads(path.read_text())
    assert results["ok"] and results["lost"] == 0 and not results["problems"], output
    assert set(results["scenarios"]) == {"throughput", "latency", "storm", "cpu", "idle",
                                         "rooms", "resume", "scaleout"}
    scaled = results["scenarios"].pop("scaleout")
    for scenario, by_server in results["scenarios"].items():
        assert "switchboard" in by_server, scenario
        for server, result_ in by_server.items():
            assert result_["lost"] == 0, (scenario, server, result_)
            assert not result_.get("disorder"), (scenario, server, result_)
    throughput = results["scenarios"]["throughput"]["switchboard"]
    assert throughput["received"] == throughput["sent"] > 0
    # Each server process's CPU per message, split into its own code and the kernel's.
    split = throughput["server_us_per_msg_user_kernel"]
    assert set(split) == {"gateway", "relay", "redis"}
    assert all(user + kernel > 0 for user, kernel in split.values()), split
    assert "Server CPU per message delivered, by process" in result.stdout
    # The benchmark's targets, each measured (met or not: the smoke sizes prove nothing).
    goals = result.stdout.split("Targets:")[1].split("\n\n")[0]
    assert goals.count("(goal ") == 5 and "not measured" not in goals, goals
    assert "gateway " in result.stdout.split("by process")[1]
    # Room storms: a star client's join costs two frames (its joined_room, the host's
    # new_peer); a mesh join tells everyone there. PeerJS has no rooms to storm.
    rooms = results["scenarios"]["rooms"]
    assert set(rooms) == {"switchboard"}
    assert rooms["switchboard"]["star_frames_per_join"] == 2.0
    assert rooms["switchboard"]["mesh_frames_per_join"] > 3
    assert "6 room storms" in result.stdout
    # Resume: every resume of the smoke run came with its backlog, and both CPU runs ran.
    resume = results["scenarios"]["resume"]["switchboard"]
    assert resume["resumes"] == 4 * 3 and resume["joined_p99_ms"] is not None
    assert resume["plain_cpu_per_1k"] and resume["resumable_cpu_per_1k"]
    assert "7 resume" in result.stdout
    # The scale-out: Switchboard and Socket.IO with each Redis adapter at 1 and 2 fronts,
    # PeerJS at one process; at 2 fronts every front carried load (sender and receiver
    # on different ones), and the targets are each measured or said not to be.
    assert set(scaled) == {"switchboard", "socketio-pubsub", "socketio-streams", "peerjs"}
    assert set(scaled["peerjs"]["steps"]) == {"1x400"}
    for server in ("switchboard", "socketio-pubsub", "socketio-streams"):
        assert scaled[server]["lost"] == scaled[server]["disorder"] == 0, scaled[server]
        assert set(scaled[server]["steps"]) == {"1x400", "2x400"}
        [run] = scaled[server]["steps"]["2x400"]["runs"]
        fronts = [role for role in run["server_cpu_by_process_s"]
                  if role.startswith(("gateway", "node"))]
        assert len(fronts) == 2, run
        assert all(run["server_cpu_by_process_s"][role] > 0 for role in fronts), run
    assert "14 scale-out, by front processes" in result.stdout
    scale_goals = result.stdout.split("Targets of the scale-out")[1].split("\n\n")[0]
    assert scale_goals.count("(goal ") == 11, scale_goals
    assert "vs Socket.IO + redis-streams-adapter, 2 fronts: " in scale_goals
    assert "Switchboard lost nothing, in order, every run: 0 (goal 0): met" in scale_goals


def test_sweeps_show_mesh_growing_with_the_room_and_star_not(tmp_path: Path) -> None:
    """`--only roomsizes,idlesweep` (the growth scenarios), small: a mesh join
    costs 1 + n/2 frames, a star join 2; the idle sweep runs at each socket count."""
    result = bench("--smoke", "--only", "roomsizes,idlesweep", "--results-dir", str(tmp_path),
                   timeout=150)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    results = json.loads(path.read_text())
    assert results["ok"] and results["lost"] == 0 and not results["problems"], output
    sizes = results["scenarios"]["roomsizes"]["switchboard"]
    assert [sizes[f"mesh_{n}_frames_per_join"] for n in (2, 5, 10)] == [2.0, 3.5, 6.0]
    assert {sizes[f"star_{n}_frames_per_join"] for n in (5, 20)} == {2.0}
    assert set(results["scenarios"]["idlesweep"]) == {"switchboard", "peerjs"}


@pytest.mark.timeout(200)  # the bench call's own bound (180 s) kills its servers first
def test_attacks_run_each_beside_bystanders_and_report_the_goals(tmp_path: Path) -> None:
    """`--only attacks` (Switchboard only), small and short: every attack ran on servers of
    its own and was measured; the table and the goals are printed (met or not: that is the
    gateway's business, tests/faults/test_attacks.py holds it to them)."""
    # About 35 s on a quiet machine: the bound leaves room for a loaded one.
    result = bench("--smoke", "--only", "attacks", "--servers", "switchboard",
                   "--results-dir", str(tmp_path), timeout=180)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    attacks = json.loads(path.read_text())["scenarios"]["attacks"]["switchboard"]
    assert len(attacks["attacks"]) == 12, output
    for attack in attacks["attacks"]:
        assert "failed" not in attack and "failed" not in attack["outcome"], attack
        assert attack["bystanders"]["ok"] + attack["bystanders"]["failed"] > 0, attack
        assert attack["rss_mb"]["peak"] >= attack["rss_mb"]["before"] > 0, attack
    assert len(attacks["goals"]) == 6
    [markdown] = tmp_path.glob("bench-*-attacks.md")
    assert markdown.read_text().count("\n| ") == 12  # a row per attack below the header
    assert "Goals against hostile clients:" in result.stdout


def test_webhooks_scenario_measures_delivery_and_cpu_with_every_webhook_in(
        tmp_path: Path) -> None:
    """`--only webhooks` (Switchboard only), small: one round, off and on, each alone and
    with churn; the receiver had a webhook for every join and leave, in order, a sample
    verified; the figures and both goals are reported (met or not: the smoke sizes prove
    nothing, bench/RESULTS.md holds the measured figures)."""
    result = bench("--smoke", "--only", "webhooks", "--servers", "switchboard",
                   "--results-dir", str(tmp_path), timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    results = json.loads(path.read_text())
    assert results["ok"] and results["lost"] == 0 and not results["problems"], output
    assert set(results["scenarios"]) == {"webhooks"}
    assert set(results["scenarios"]["webhooks"]) == {"switchboard"}
    webhooks = results["scenarios"]["webhooks"]["switchboard"]
    assert set(webhooks["steps"]) == {"off_1", "on_1"}
    for label, step in webhooks["steps"].items():
        for load in ("plain", "churn"):
            run = step[load]
            assert run["lost"] == run["error_count"] == 0 and run["received"] > 0, run
        churn = step["churn"]
        assert churn["churn_joins"] == churn["churn_leaves"] > 0, (label, churn)
        assert churn["churn_join_p99_ms"] > 0, (label, churn)
    on = webhooks["steps"]["on_1"]
    # Every join of both runs (the pairs', then the pairs' and the churn's) was told, and
    # every leave; every room's life finished, in order, nothing refused.
    joins = 2 * 2 * 10 + on["churn"]["churn_joins"]
    stats = on["churn"]["webhooks"]
    assert stats["by_type"]["peer.joined"] == stats["by_type"]["peer.left"] == joins, stats
    assert stats["by_type"]["room.started"] == stats["by_type"]["room.finished"] > 0, stats
    assert stats["open_lives"] == stats["gaps"] == stats["refused"] == 0, stats
    assert stats["verified"] >= stats["received"] // 10 > 0, stats
    assert on["plain"]["delivered_in_window"] == 0  # messages make no webhook
    assert on["churn"]["delivered_in_window"] > 0
    assert "webhooks" not in webhooks["steps"]["off_1"]["churn"]
    for key in ("off_cpu_per_1k", "on_cpu_per_1k", "on_over_off", "churn_on_over_off",
                "delivery_p50_ms", "delivery_p99_ms"):
        assert webhooks[key] > 0, (key, webhooks)
    assert webhooks["delivery_p50_ms"] <= webhooks["delivery_p99_ms"]
    assert "13 webhooks" in result.stdout
    goals = result.stdout.split("Goals of the webhooks:")[1].split("\n\n")[0]
    assert goals.count("(goal ") == 2 and "not measured" not in goals, goals
