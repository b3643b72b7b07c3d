"""The admin API and identities scenarios (`python -m bench --only admin,identities`): at
smoke size they run on Switchboard alone, lose nothing, and report every figure and goal
(the speed is not checked here: bench/RESULTS.md holds the measured figures)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jwt

from bench.admin_latency import percentile_ms, schedule
from bench.identities import INFO_BYTES, JOIN_SECRET, join_token
from bench.protocols import ADAPTERS
from harness.processes import ROOT


def test_gets_and_removes_are_spread_evenly_over_the_window() -> None:
    assert schedule(4, 2) == ["get", "remove", "get", "get", "remove", "get"]
    assert schedule(200, 100).count("remove") == 100
    assert schedule(3, 0) == ["get"] * 3


def test_p99_of_a_hundred_samples_is_the_slowest() -> None:
    samples = [n / 1000 for n in range(1, 101)]
    assert (percentile_ms(samples, 0.5), percentile_ms(samples, 0.99)) == (51.0, 100.0)
    assert percentile_ms([], 0.99) is None


def test_identity_tokens_name_a_user_and_carry_about_200_bytes_of_info() -> None:
    token = join_token("b1-7", "b1-0-3")
    claims = jwt.decode(token, JOIN_SECRET, algorithms=["HS256"])
    assert (claims["room"], claims["sub"]) == ("b1-7", "b1-0-3")
    assert 180 <= INFO_BYTES <= 220 and claims["info"]["name"] == "Participant b1-0-3"
    frame = json.loads(ADAPTERS["switchboard"].join_frame("b1-7", token=token) or b"")
    assert frame == {"event": "join_room", "room_id": "b1-7", "token": token}


def test_admin_and_identities_scenarios_report_their_figures(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--servers",
                             "switchboard", "--only", "admin,identities", "--results-dir",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    [path] = tmp_path.glob("bench-*.json")
    results = json.loads(path.read_text())
    assert results["ok"] and results["lost"] == 0 and not results["problems"], output
    assert set(results["scenarios"]) == {"admin", "identities"}
    # Admin: every call made and answered as asked (the GETs saw each pair's user and
    # info), every removed peer told; the CPU scenario's load ran beside and lost nothing.
    admin = results["scenarios"]["admin"]
    assert set(admin) == {"switchboard"}
    admin = admin["switchboard"]
    assert (admin["gets"], admin["removes"], admin["told_removed"]) == (10, 5, 5), admin
    assert admin["error_count"] == 0 and admin["lost"] == 0, admin
    for call in ("get", "remove"):
        assert 0 < admin[f"{call}_p50_ms"] <= admin[f"{call}_p99_ms"] <= admin[f"{call}_max_ms"]
    assert admin["received"] == admin["sent"] > 0 and admin["server_cpu_per_1k"] > 0
    # Identities: one plain run and one with tokens, each on servers of its own.
    identities = results["scenarios"]["identities"]["switchboard"]
    assert set(identities["steps"]) == {"plain_1", "identities_1"}
    for step in identities["steps"].values():
        assert step["received"] == step["sent"] > 0 and step["lost"] == 0, step
    for key in ("plain_cpu_per_1k", "identities_cpu_per_1k", "identities_over_plain"):
        assert identities[key] > 0, (key, identities)
    assert identities["ratio_min"] == identities["ratio_max"] == identities[
        "identities_over_plain"]
    assert "10 admin API under load" in result.stdout
    assert "11 identities in tokens" in result.stdout
    goals = result.stdout.split("Goals of the admin API and identities:")[1].split("\n\n")[0]
    assert goals.count("(goal ") == 3 and "not measured" not in goals, goals
    assert "Targets:" not in result.stdout  # none of their scenarios ran
