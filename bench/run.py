"""Switchboard vs PeerJS server and Socket.IO: `python -m bench` (or `python -m bench.run`).

Starts both servers on 127.0.0.1 (Switchboard: private redis-server + 1 gateway + 1 relay;
PeerJS server: npm `peer`, installed into bench/peerjs/ on first use), runs each scenario
against both, prints one table with the ratio, writes JSON and a PNG under bench/results/,
and exits non-zero if any message or event that was sent did not arrive (or arrived out of
order, or a server answered with an error).

Scenarios: throughput (closed loop), latency (at half the lower of the two maxima), storm
(join storm), cpu (CPU per message at a fixed load), idle (idle connections), rooms (join
storms into a star room and into mesh rooms) and resume (resume latency, CPU of resumable
peers against plain ones); the last two Switchboard only, as PeerJS has neither.
Two sweeps run only when named in --only: roomsizes (join storms into mesh and star rooms
of each size, Switchboard only) and idlesweep (the idle scenario at each socket count); so
do attacks (hostile clients beside a bystander pair, Switchboard only:
bench/attack_scenario.py), admin (the admin API's latency while the cpu scenario's load
runs: bench/admin_latency.py) and identities (the cpu scenario with plain joins against
joins with identity tokens, alternated, on fresh servers each run), joinhook (join
latency without and with a join hook asking a local receiver process, alternated, on
fresh servers each run: bench/hook_receiver.py) and webhooks (the cpu scenario without
and with webhooks to a local receiver process, alone and with join/leave churn: CPU per
message of each and how late the webhooks came: bench/webhook_receiver.py); all
Switchboard only. The scale-out (bench/scaleout.py) runs Switchboard, Socket.IO with each
Redis adapter (bench/socketio/, installed on first use) and PeerJS at 1, 2 and 4 front
processes, at the CPU scenario's load and at 20,000 msg/s, and prints its targets.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from bench import attack_report, attack_scenario, report, scaleout, scenarios
from bench.procstat import machine_busy_seconds
from bench.protocols import ADAPTERS
from bench.scenarios import Settings, WorkerFailed
from bench.servers import (
    PEERJS_DIR,
    SOCKETIO_DIR,
    PeerJSServer,
    Server,
    SocketIoServer,
    SwitchboardServer,
    node_unavailable,
    npm_ci,
    raise_open_files_limit,
    start_peerjs,
    start_socketio,
    start_switchboard,
)

RESULTS = Path(__file__).resolve().parent / "results"
ORDER = ("throughput", "latency", "storm", "cpu", "idle", "rooms", "resume", "roomsizes",
         "idlesweep", "attacks", "admin", "identities", "joinhook", "webhooks", "scaleout")
# The sweeps are slow (a fresh server for every size): they run when --only names them,
# but for the scale-out, whose targets every run reports.
DEFAULT = (*ORDER[:7], "scaleout")
# Servers that run in the scale-out alone (bench/scaleout.py).
SCALEOUT_ONLY = ("socketio-pubsub", "socketio-streams")
SERVER_NAMES = ("switchboard", "peerjs", *SCALEOUT_ONLY)
# Sweeps: one run per size (identities: per run), each on server processes of its own.
SWEEPS = ("roomsizes", "idlesweep", "identities", "joinhook", "webhooks")
# Scenarios that only Switchboard can run.
SWITCHBOARD_ONLY = ("rooms", "resume", "roomsizes", "attacks", "admin", "identities",
                    "joinhook", "webhooks")
# About 10 s of load in all: small enough for the CI suite, large enough to catch a loss.
SMOKE = Settings(workers=2, pairs=10, window=4, warmup=0.2, seconds=0.5, storm_clients=40,
                 storm_concurrency=20, cpu_pairs=10, cpu_rate=40.0, cpu_seconds=0.5,
                 idle_clients=100, idle_seconds=0.5, star_members=40, mesh_room_size=10,
                 resume_pairs=4, resume_rounds=3, resume_backlog=3, mesh_sizes="2,5,10",
                 star_sizes="5,20", sweep_joiners=20, idle_counts="50,100",
                 sweep_idle_seconds=0.3, attack_seconds=0.5, attack_scale=0.1,
                 admin_gets=10, admin_removes=5, identity_rounds=1, joinhook_joins=40,
                 joinhook_concurrency=10, joinhook_rounds=1, webhook_rounds=1,
                 churn_rate=40.0, churn_rooms=4, scaleout_fronts="1,2",
                 scaleout_rates="400", scaleout_rounds=1)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    defaults = Settings()
    parser.add_argument("--smoke", action="store_true",
                        help="a ~10 s run with small sizes that checks nothing is lost")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES),
                        help=f"comma-separated of {','.join(SERVER_NAMES)} (default: all; "
                             "the Socket.IO ones run in the scale-out alone)")
    parser.add_argument("--only", default=",".join(DEFAULT),
                        help=f"comma-separated scenarios of {','.join(ORDER)} (default: "
                             f"{','.join(DEFAULT)})")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every client count (pairs, clients, sockets) by this")
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="offered msg/s for the latency scenario (default: 50%% of the "
                             "lower of the two throughputs)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    helps = {"workers": "load-generator processes", "pairs": "throughput/latency pairs",
             "window": "closed loop: messages in flight per direction",
             "warmup": "seconds of load before measuring", "seconds": "measured seconds",
             "storm_clients": "join storm clients", "storm_concurrency":
             "connections being opened at once (storm and idle)",
             "cpu_pairs": "CPU scenario pairs",
             "cpu_rate": "CPU scenario msg/s per pair (half each way)",
             "cpu_seconds": "CPU scenario seconds", "idle_clients": "idle sockets",
             "idle_seconds": "seconds of idle CPU measurement",
             "star_members": "room storms: members of the star room, host included",
             "mesh_room_size": "room storms: members per mesh room",
             "resume_pairs": "resume: pairs resuming at once",
             "resume_rounds": "resume: resumes per pair",
             "resume_backlog": "resume: frames waiting at each resume",
             "mesh_sizes": "roomsizes: comma-separated mesh room sizes",
             "star_sizes": "roomsizes: comma-separated star room sizes",
             "sweep_joiners": "roomsizes: joiners per size, at least (every room filled)",
             "idle_counts": "idlesweep: comma-separated socket counts",
             "sweep_idle_seconds": "idlesweep: seconds of idle CPU measurement per count",
             "attack_seconds": "attacks: seconds each flood lasts",
             "attack_scale": "attacks: factor on every attack's socket count",
             "admin_gets": "admin: room details asked for during the cpu scenario's load",
             "admin_removes": "admin: peers removed during the cpu scenario's load",
             "identity_rounds": "identities: plain/tokens runs, alternated",
             "joinhook_joins": "joinhook: joins (rooms of 2) per run",
             "joinhook_concurrency": "joinhook: joins in flight, all workers together",
             "joinhook_rounds": "joinhook: without/with hook runs, alternated",
             "webhook_rounds": "webhooks: off/on runs, alternated",
             "churn_rate": "webhooks: churn joins/s (and as many leaves), all rooms",
             "churn_rooms": "webhooks: rooms of 2 whose members join and leave",
             "scaleout_fronts": "scaleout: comma-separated front process counts",
             "scaleout_rates": "scaleout: comma-separated msg/s (the first: the targets')",
             "scaleout_rounds": "scaleout: runs of each server at each step (medians)"}
    for field in fields(Settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(getattr(defaults,
                            field.name)), default=None,
                            help=f"{helps[field.name]} (default {getattr(defaults, field.name)}"
                                 f", smoke {getattr(SMOKE, field.name)})")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    base = SMOKE if args.smoke else Settings()
    values = asdict(base)
    for name in ("pairs", "storm_clients", "cpu_pairs", "idle_clients", "star_members",
                 "sweep_joiners"):
        values[name] = max(2, int(values[name] * args.scale))
    values["idle_counts"] = ",".join(str(max(2, int(count * args.scale)))
                                     for count in scenarios.sizes(values["idle_counts"]))
    for name in values:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    return Settings(**values)


def _machine() -> dict[str, Any]:
    def run(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return "-"

    return {"nproc": os.cpu_count(), "free_h": run("free", "-h"),
            "python": platform.python_version(), "node": run("node", "--version"),
            "kernel": platform.release(), "cpu": _cpu_model()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "-"


def _available(names: list[str], smoke: bool) -> tuple[list[str], list[str]]:
    """The servers that can run here (the node ones: installed from npm now if need be)."""
    available: list[str] = []
    notes: list[str] = []
    for name in names:
        why = None if name == "switchboard" else node_unavailable()
        if why is None and name != "switchboard":
            try:
                npm_ci(PEERJS_DIR if name == "peerjs" else SOCKETIO_DIR)
            except (OSError, subprocess.SubprocessError) as exc:
                why = f"could not install it from npm: {exc}"
        if why is None:
            available.append(name)
            continue
        if not smoke:
            raise SystemExit(f"{name} is not available: {why}\n"
                             "(run with --servers switchboard to benchmark Switchboard alone)")
        notes.append(f"{name} skipped: {why}. Smoke run without it.")
        print(f"!! {notes[-1]}", flush=True)
    return available, notes


def _start(name: str, settings: Settings, env: dict[str, str] | None = None,
           fronts: int = 1) -> Server:
    """`name`'s server with `fronts` front processes (gateways, node processes; PeerJS has
    one); Switchboard's with `env` added to its settings."""
    if name == "switchboard":
        return start_switchboard(gateways=fronts, env=env)
    if name in SCALEOUT_ONLY:
        return start_socketio(name.removeprefix("socketio-"), fronts)
    return start_peerjs(max(5000, settings.idle_clients, settings.storm_clients,
                            *scenarios.sizes(settings.idle_counts)) + 1000)


def _reproduce(args: argparse.Namespace, settings: Settings,
               servers: dict[str, Server]) -> list[str]:
    flags = [f"--{k.replace('_', '-')} {v}" for k, v in asdict(settings).items()]
    lines = [".venv/bin/python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
             "  (every size spelled out: .venv/bin/python -m bench --servers "
             f"{','.join(servers)} --only {args.only} {' '.join(flags)})"]
    for server in servers.values():
        if isinstance(server, SwitchboardServer) and server.cluster is not None:
            lines.append("  switchboard: redis-server --port R --save '' --appendonly no; "
                         "REDIS_URL=redis://127.0.0.1:R/0 SWITCHBOARD_FRAME_RATE=1000000 "
                         "SWITCHBOARD_FRAME_BURST=1000000 SWITCHBOARD_WIRE_FRAME_RATE=1000000 "
                         "SWITCHBOARD_WIRE_FRAME_BURST=1000000 "
                         "SWITCHBOARD_WIRE_BYTE_RATE=1000000000 SWITCHBOARD_SHUTDOWN_SECONDS=0 "
                         "switchboard-relay & "
                         "PORT=P HOST=127.0.0.1 (same env) switchboard-gateway")
        if isinstance(server, SwitchboardServer):
            only = args.only.split(",")
            if "admin" in only:
                lines.append("  admin: with SWITCHBOARD_ADMIN_KEY and SWITCHBOARD_JOIN_SECRET "
                             "set (bench/identities.py)")
            if "identities" in only:
                lines.append("  identities: every other run with SWITCHBOARD_JOIN_SECRET set "
                             "(bench/identities.py)")
            if "joinhook" in only:
                lines.append("  joinhook: every other run with SWITCHBOARD_JOIN_HOOK_URL (a "
                             "receiver process: python -m bench.hook_receiver SECRET) and "
                             "SWITCHBOARD_WEBHOOK_SECRET set (bench/hook_receiver.py)")
            if "webhooks" in only:
                lines.append("  webhooks: every other run with SWITCHBOARD_WEBHOOK_URL (a "
                             "receiver process: python -m bench.webhook_receiver SECRET) and "
                             "SWITCHBOARD_WEBHOOK_SECRET set (bench/webhook_receiver.py)")
        if isinstance(server, SocketIoServer) and server.name == "socketio-pubsub":
            lines.append("  socketio: redis-server as above; (cd bench/socketio && npm ci && "
                         "PORT=P REDIS_URL=redis://127.0.0.1:R/0 ADAPTER=pubsub node "
                         "server.js), one for each front (ADAPTER=streams: the other adapter)")
        if isinstance(server, PeerJSServer) and server.popen is not None:
            argv = server.popen.args
            assert isinstance(argv, list)
            lines.append("  peerjs: (cd bench/peerjs && npm install && npx peerjs "
                         + " ".join(str(a) for a in argv[2:]) + ")")
    return lines


def _one(name: str, server: Server, settings: Settings, rate: float | None) -> dict[str, Any]:
    started = time.monotonic()
    print(f"-- {name} / {server.name} (pids {server.pids}) ...", end=" ",
          flush=True)
    try:
        if name == "throughput":
            result = scenarios.throughput(server, settings)
        elif name == "latency":
            assert rate is not None
            result = scenarios.paced(server, settings, settings.pairs, rate, settings.seconds)
        elif name == "storm":
            result = scenarios.storm(server, settings)
        elif name == "cpu":
            result = scenarios.paced(server, settings, settings.cpu_pairs,
                                     settings.cpu_rate * settings.cpu_pairs,
                                     settings.cpu_seconds)
        elif name == "rooms":
            result = scenarios.room_storms(server, settings)
        elif name == "resume":
            result = scenarios.resume(server, settings)
        elif name == "admin":
            result = scenarios.admin(server, settings)
        else:
            result = scenarios.idle(server, settings)
    except (WorkerFailed, OSError, TimeoutError) as exc:
        result = {"failed": str(exc), "lost": None}
    _print_brief(result, started)
    return result


def _sweep(name: str, server_name: str, settings: Settings,
           servers: dict[str, Server]) -> dict[str, Any]:
    """A sweep: every size on fresh server processes (the last kept for the report)."""
    started = time.monotonic()
    each = "run" if name in ("identities", "joinhook", "webhooks") else "size"
    print(f"-- {name} / {server_name} (fresh servers for each {each}) ...", end=" ",
          flush=True)

    def start(env: dict[str, str] | None = None) -> Server:
        server = servers[server_name] = _start(server_name, settings, env)
        return server

    if name == "roomsizes":
        result = scenarios.room_sizes(start, settings)
    elif name == "identities":
        result = scenarios.identities(start, settings)
    elif name == "webhooks":
        result = scenarios.webhooks(start, settings)
    elif name == "joinhook":
        result = scenarios.join_hook(start, settings)
    else:
        result = scenarios.idle_sweep(start, settings)
    _print_brief(result, started)
    return result


def _scaleout(settings: Settings, names: list[str],
              servers: dict[str, Server]) -> dict[str, dict[str, Any]]:
    """The scale-out sweep (bench.scaleout), every server on fresh processes each run."""
    started = time.monotonic()
    print(f"-- scaleout / {', '.join(names)} (fresh servers for each run) ", end="",
          flush=True)

    def start(name: str, fronts: int) -> Server:
        server = servers[name] = _start(name, settings, fronts=fronts)
        return server

    results = scaleout.sweep(settings, start, tuple(names))
    print(f" {time.monotonic() - started:.1f} s", flush=True)
    return results


def _attacks(settings: Settings) -> dict[str, Any]:
    """The attacks, each on server processes of its own (bench.attack_scenario)."""
    started = time.monotonic()
    print("-- attacks / switchboard (fresh servers for each attack) ...", flush=True)
    result = attack_scenario.run(settings.attack_seconds, settings.attack_scale)
    print(f"   {time.monotonic() - started:.1f} s", flush=True)
    return result


def _print_brief(result: dict[str, Any], started: float) -> None:
    brief: dict[str, Any] = {k: result.get(k) for k in ("msgs_per_s", "p99_ms", "joins_per_s",
                                        "star_joins_per_s", "star_frames_per_join",
                                        "backlog_p99_ms", "resumable_over_plain",
                                        "get_p99_ms", "remove_p99_ms",
                                        "identities_over_plain", "ratio_min", "ratio_max",
                                        "plain_p99_ms", "hook_p99_ms", "added_p99_ms",
                                        "added_p99_min_ms", "added_p99_max_ms",
                                        "on_over_off", "churn_on_over_off",
                                        "delivery_p50_ms", "delivery_p99_ms",
                                        "server_cpu_per_1k", "main_kib_per_conn", "lost",
                                        "error_count", "failed") if k in result}
    for key in ("joins_per_s", "frames_per_join", "main_kib_per_conn", "idle_cpu_percent"):
        brief.update({k: v for k, v in result.items() if k.endswith(f"_{key}")
                      and "steps" in result})
    print(f"{time.monotonic() - started:.1f} s {brief}", flush=True)


def _warnings(results: dict[str, dict[str, Any]]) -> list[str]:
    """Runs that measured something other than what was asked (not failures)."""
    warnings = []
    for scenario, by_server in results.items():
        for server, result in by_server.items():
            if scenario == "scaleout" and server != "switchboard" and (
                    result.get("lost") or result.get("disorder") or result.get("error_count")):
                warnings.append(f"scaleout/{server}: {scaleout.failing_steps(result)} lost or "
                                f"out of order; {result.get('error_count')} errors "
                                f"{result.get('errors', [])[:2]}")
            offered, achieved = result.get("offered_per_s"), result.get("achieved_per_s")
            if offered and achieved is not None and achieved < 0.95 * offered:
                warnings.append(f"{scenario}/{server}: the load generator sent {achieved:,} "
                                f"msg/s of the {offered:,} offered (too busy)")
            for label, step in (result.get("steps") or {}).items():
                if "skipped" in step:
                    warnings.append(f"{scenario}/{server}: {label} skipped: {step['skipped']}")
            p99 = result.get("p99_ms")
            if offered and p99 is not None and p99 > 1000:
                warnings.append(f"{scenario}/{server}: did not keep up with {offered:,} msg/s "
                                f"(p99 {p99:,.0f} ms: a queue built up, drained at the end)")
    return warnings


def _frame_sizes() -> dict[str, int]:
    """Bytes of one candidate frame as each adapter sends it (peer ids of 36 characters)."""
    peer = str(uuid.uuid4())
    return {name: len(adapter.candidate_template(peer) % (123456, time.monotonic_ns()))
            for name, adapter in ADAPTERS.items()}


def _problems(results: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for scenario, by_server in results.items():
        for server, result in by_server.items():
            if scenario == "scaleout" and server != "switchboard":
                continue  # a peer that falls behind is a finding (_warnings), not a failure
            if "failed" in result:
                problems.append(f"{scenario}/{server}: {result['failed']}")
                continue
            counts = {key: result[key] for key in ("lost", "disorder", "error_count")
                      if result.get(key)}
            if counts:
                first = (result.get("errors") or ["-"])[0]
                problems.append(f"{scenario}/{server}: " +
                                ", ".join(f"{key} {value:,}" for key, value in counts.items()) +
                                f" (first error: {first})")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = _settings(args)
    only = [s for s in ORDER if s in args.only.split(",")]
    started = time.monotonic()
    nofile = raise_open_files_limit()
    machine = _machine()
    print(f"machine: {machine['nproc']} cores, {machine['cpu']}, Python {machine['python']}, "
          f"node {machine['node']}; open files limit {nofile}", flush=True)
    busy = machine_busy_seconds()
    time.sleep(0.5)
    busy = 2 * (machine_busy_seconds() - busy)
    background: list[str] = []
    if busy > 0.15:
        background.append(f"before the run, other processes used {busy:.2f} cores: "
                          "the results will be noisy (others_cpu_s in the JSON, per scenario)")
        print(f"!! {background[-1]}", flush=True)
    names, notes = _available([s for s in SERVER_NAMES if s in args.servers.split(",")],
                               args.smoke)
    notes = background + notes
    results: dict[str, dict[str, Any]] = {}
    servers: dict[str, Server] = {}  # the last one of each, for the report
    rate = args.latency_rate
    # Every scenario gets fresh server processes: none inherits what an earlier one left
    # (a grown heap, 10,000 closed sockets' garbage), and the other server is not running.
    for scenario in only:
        if scenario == "latency" and rate is None:
            maxima = [r.get("msgs_per_s") for r in results.get("throughput", {}).values()]
            if not maxima or not all(maxima):
                raise SystemExit("the latency scenario needs the throughput scenario's "
                                 "maxima, or --latency-rate")
            rate = 0.5 * min(m for m in maxima if m)
        if scenario == "scaleout":
            results[scenario] = _scaleout(settings, names, servers)
            continue
        results[scenario] = {}
        for name in names:
            if name in SCALEOUT_ONLY:
                continue
            if scenario in SWITCHBOARD_ONLY and name != "switchboard":
                continue
            if scenario in SWEEPS:
                results[scenario][name] = _sweep(scenario, name, settings, servers)
                continue
            if scenario == "attacks":
                results[scenario][name] = _attacks(settings)
                continue
            server = servers[name] = _start(name, settings,
                                            scenarios.ENVIRONMENTS.get(scenario))
            try:
                results[scenario][name] = _one(scenario, server, settings, rate)
            finally:
                server.stop()
    ordered = {name: results[name] for name in ORDER if name in results}
    problems = _problems(ordered)
    notes += _warnings(ordered)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    json_path = args.results_dir / f"bench-{stamp}.json"
    png_path = args.results_dir / f"bench-{stamp}.png"
    reproduce = _reproduce(args, settings, servers)
    report.write_json(json_path, {
        "date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": machine,
        "command": reproduce[0], "settings": asdict(settings), "smoke": args.smoke,
        "servers": {s.name: {"version": s.version} for s in servers.values()},
        "notes": notes, "frame_bytes": _frame_sizes(), "scenarios": ordered,
        "lost": sum(r.get("lost") or 0 for by in ordered.values() for r in by.values()),
        "problems": problems, "ok": not problems,
        "seconds": round(time.monotonic() - started, 1)})
    plot_note = report.plot(png_path, ordered)
    print()
    if set(ordered) - {"attacks", "scaleout"}:
        print(report.table(ordered))
        print()
        if {target.scenario for target in report.TARGETS} & set(ordered):
            print(report.targets(ordered))
            print()
        goals = tuple(goal for goal in report.ADMIN_GOALS if goal.scenario in ordered)
        if goals:
            print(report.targets(ordered, goals, "Goals of the admin API and identities:"))
            print()
        if "joinhook" in ordered:
            print(report.targets(ordered, report.JOIN_HOOK_GOALS, "Goal of the join hook:"))
            print()
        if "webhooks" in ordered:
            print(report.targets(ordered, report.WEBHOOK_GOALS, "Goals of the webhooks:"))
            print()
    if "scaleout" in ordered:
        print(scaleout.table(ordered["scaleout"], settings))
        print()
        print(scaleout.targets(ordered["scaleout"], settings))
        print()
    breakdown = report.cpu_breakdown(ordered)
    if breakdown:
        print(breakdown)
        print()
    hostile = ordered.get("attacks", {}).get("switchboard")
    if hostile:
        markdown = args.results_dir / f"bench-{stamp}-attacks.md"
        text = attack_report.table(hostile) + "\n\n" + attack_report.goals_text(hostile)
        markdown.write_text(text + "\n")
        print(text)
        print(f"(attacks table: {markdown})")
        print()
    print(report.NOTES)
    print("Candidate frames: " + ", ".join(f"{name} {size} bytes"
                                           for name, size in _frame_sizes().items()) + ".")
    for note in notes:
        print(f"!! {note}")
    print(f"\nresults: {json_path}\nplot:    {plot_note or png_path}")
    print("reproduce:\n  " + "\n  ".join(reproduce))
    print(f"total {time.monotonic() - started:.1f} s")
    if problems:
        print("\n!! BENCHMARK FAILED: not everything sent arrived (or a server refused):",
              file=sys.stderr)
        for problem in problems:
            print(f"!!   {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
