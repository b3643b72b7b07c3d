"""The attacks scenario (`python -m bench --only attacks`, Switchboard only).

Each attack of bench/attacks.py runs on server processes of its own (a redis-server, a
relay, a gateway, with the gateway's own limits: none lifted as the other scenarios lift
them), in a forked process, beside a bystander pair on the same gateway (bench/
bystanders.py). Meanwhile the gateway's RSS is sampled and its CPU counted; its /metrics
say how it closed the sockets and how late its event loop ran, its log whether anything
went wrong. bench/attack_report.py makes the table and the goals of the result.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.attack_report import brief, goals
from bench.attacks import PROTOCOL_ERRORS, Attacker
from bench.bystanders import Bystanders
from bench.procstat import PeakRss, cpu_seconds, rss_kib
from bench.servers import SwitchboardServer
from harness.processes import http_get, start_cluster, start_redis

AFTER_S = 1.0  # how long the bystanders go on after an attack, for the "after" figures
TRICKLE_IDLE_S = 4  # the idle timeout of the byte trickle's gateway (pings every 1 s)


_CLOSES = re.compile(r'^switchboard_closes_total\{code="([^"]+)"\} ([0-9.e+]+)$', re.M)


def closes_by_code(metrics: str | None) -> dict[str, int] | None:
    """`switchboard_closes_total` by code, from the text of /metrics (None: no text)."""
    if metrics is None:
        return None
    return {code: int(float(value)) for code, value in _CLOSES.findall(metrics)}


def gateway_metrics(port: int) -> str | None:
    """The text of the gateway's /metrics now; None if it did not answer."""
    try:
        status, _, body = http_get(port, "/metrics")
    except OSError:
        return None
    return body if status == 200 else None


_LAG = re.compile(r'^switchboard_event_loop_lag_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$',
                  re.M)


def worst_loop_lag(before: str | None, after: str | None) -> float | None:
    """How late the gateway's event loop ran at worst between two readings of /metrics:
    the bound of the lowest bucket of `switchboard_event_loop_lag_seconds` holding every
    observation made in between (inf: beyond the last bound). None without the histogram
    or without an observation."""
    if before is None or after is None:
        return None
    old = {le: float(count) for le, count in _LAG.findall(before)}
    grown = {float(le): float(count) - old.get(le, 0.0) for le, count in _LAG.findall(after)}
    total = grown.get(float("inf"), 0.0)
    if not total:
        return None
    return min(bound for bound, count in grown.items() if count >= total)


def counted_since(before: dict[str, int] | None,
                  after: dict[str, int] | None) -> dict[str, int] | None:
    """Counts that grew from `before` to `after`, by how much."""
    if before is None or after is None:
        return None
    return {code: after[code] - before.get(code, 0) for code in after
            if after[code] > before.get(code, 0)}


# What both of gateway/heartbeat.py's lapse warnings say (a relay declared the gateway
# dead, or it went so long without a beat that one may have): it then closes every socket
# 1012. Its warning that the key was merely missing, and set again, closes nothing.
HEARTBEAT_LAPSED = "must rejoin"


def heartbeat_lapses(log: str) -> list[str]:
    """The lines of a log saying that the gateway's heartbeat lapsed."""
    return [line for line in log.splitlines() if HEARTBEAT_LAPSED in line]


def log_findings(logs: dict[str, str]) -> dict[str, Any]:
    """Tracebacks and ERROR lines in each process's log (text format), and the times a
    gateway's heartbeat lapsed."""
    errors = [f"{name}: {line.strip()[:240]}" for name, text in logs.items()
              for line in text.splitlines() if " ERROR " in line]
    return {"tracebacks": sum(text.count("Traceback") for text in logs.values()),
            "traceback_in": sorted(name for name, text in logs.items() if "Traceback" in text),
            "error_lines": len(errors), "first_errors": errors[:3],
            "heartbeat_lapsed": sum(len(heartbeat_lapses(text)) for text in logs.values())}


@dataclass(frozen=True)
class Attack:
    """One attack of the plan: bench.attacks.ATTACKS[kind](**options), on a gateway run
    with `env` on top of its defaults."""

    name: str
    kind: str
    options: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)


def plan(seconds: float = 5.0, scale: float = 1.0) -> list[Attack]:
    """The attacks, `seconds` of flood each, socket counts times `scale` (at least 1)."""
    def n(count: int) -> int:
        return max(1, round(count * scale))

    attacks = [Attack(f"ghost members x{n(99)}: {trigger}", "ghosts",
                      {"trigger": trigger, "members": n(99)}) for trigger in PROTOCOL_ERRORS]
    return [
        *attacks,
        Attack(f"ping flood x{n(4)}, reading", "ping_flood",
               {"sockets": n(4), "seconds": seconds, "reading": True}),
        Attack(f"ping flood x{n(4)}, not reading", "ping_flood",
               {"sockets": n(4), "seconds": seconds, "reading": False}),
        Attack(f"empty-continuation flood x{n(10)}", "continuation_flood",
               {"sockets": n(10), "seconds": seconds}),
        Attack(f"one-byte fragments x{n(30)}", "one_byte_fragments",
               {"sockets": n(30), "fragments": 64_900, "hold": max(seconds, 1.0)}),
        Attack(f"byte trickle x{n(500)}", "byte_trickle",
               {"sockets": n(500), "seconds": TRICKLE_IDLE_S + 3.0, "every": 1.0},
               {"SWITCHBOARD_IDLE_TIMEOUT": str(TRICKLE_IDLE_S),
                "SWITCHBOARD_PING_INTERVAL": "1"}),
        Attack(f"frame flood x{n(4)} (valid data frames)", "frame_flood",
               {"sockets": n(4), "seconds": seconds}),
    ]


def start_stack(**env: str) -> SwitchboardServer:
    """A redis-server, a relay and a gateway of their own, with the gateway's defaults
    (bench.servers lifts the rate limits for the other scenarios) and `env`."""
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-attacks-"))
    redis = start_redis(workdir)
    try:
        cluster = start_cluster(redis, gateways=1, relays=1, LOG_LEVEL="warning",
                                SWITCHBOARD_SHUTDOWN_SECONDS="0", **env)
    except BaseException:
        redis.process.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    gateway, port = cluster.gateways[0]
    pids = {"gateway": gateway.pid, "relay": cluster.relays[0].pid, "redis": redis.process.pid}
    return SwitchboardServer("switchboard", port, pids, "", (port,), redis=redis,
                             cluster=cluster, workdir=workdir)


async def measure(port: int, gateway: int, attack: Attack,
                  after: float = AFTER_S) -> dict[str, Any]:
    """One attack on the gateway at `port` (pid `gateway`), its bystanders' round trips
    throughout and for `after` s more."""
    attacker = Attacker(attack.kind, port=port, **attack.options)
    try:
        await attacker.ready()
    except RuntimeError as exc:
        attacker.stop()
        return {"attack": attack.name, "failed": str(exc)}
    metrics_before = await asyncio.to_thread(gateway_metrics, port)
    async with Bystanders(f"ws://127.0.0.1:{port}/") as bystanders:
        rss_before, cpu_before = rss_kib(gateway), cpu_seconds([gateway])
        with PeakRss(gateway) as rss:
            started = time.monotonic()
            outcome = await attacker.run(timeout=120)
            attack_s = time.monotonic() - started
            await asyncio.sleep(after)  # the bystanders go on: does the gateway recover?
        alive = Path(f"/proc/{gateway}").exists()
        rss_after = rss_kib(gateway) if alive else None
        cpu = cpu_seconds([gateway]) - cpu_before if alive else None
    metrics_after = await asyncio.to_thread(gateway_metrics, port) if alive else None
    return {"attack": attack.name, "kind": attack.kind, "options": attack.options,
            "env": attack.env, "attack_s": round(attack_s, 2), "outcome": outcome,
            "bystanders": bystanders.trips.summary(), "gateway_alive": alive,
            "rss_mb": {"before": _mb(rss_before), "peak": _mb(rss.peak),
                       "after": _mb(rss_after)},
            "rss_growth_mb": _mb(rss.peak - rss_before),
            "gateway_cpu_s": round(cpu, 2) if cpu is not None else None,
            "server_closes": counted_since(closes_by_code(metrics_before),
                                           closes_by_code(metrics_after)),
            "loop_lag_worst_s": worst_loop_lag(metrics_before, metrics_after)}


def _mb(kib: int | None) -> float | None:
    return round(kib / 1024, 1) if kib is not None else None


def run_one(attack: Attack) -> dict[str, Any]:
    """An attack on server processes of its own, stopped after it; their logs checked."""
    server = start_stack(**attack.env)
    try:
        result = asyncio.run(measure(server.port, server.pids["gateway"], attack))
        assert server.cluster is not None
        cluster = server.cluster
        logs = {p.name: p.log() for p in [*(g for g, _ in cluster.gateways), *cluster.relays]}
    finally:
        server.stop()
    return {**result, "logs": log_findings(logs)}


def _print(line: str) -> None:
    print(line, flush=True)


def run(seconds: float, scale: float, progress: Callable[[str], None] = _print) -> dict[str, Any]:
    """Every attack of `plan`; the result the benchmark's JSON keeps, with the goals."""
    results = []
    for attack in plan(seconds, scale):
        started = time.monotonic()
        try:
            result = run_one(attack)
        except (OSError, RuntimeError, TimeoutError) as exc:
            result = {"attack": attack.name, "failed": str(exc)}
        results.append(result)
        progress(f"   {attack.name}: {time.monotonic() - started:.1f} s, {brief(result)}")
    return {"attacks": results, "goals": goals(results), "seconds": seconds, "scale": scale,
            # Not the benchmark's failure: a goal not met is what the table is for.
            "lost": 0, "error_count": 0, "errors": []}
