"""(14) Scale-out: Switchboard against the servers that scale out too, by front processes.

The peer a team with more than one process would choose is Socket.IO with a Redis adapter
(bench/socketio/server.js, with `@socket.io/redis-adapter`'s pub/sub or
`@socket.io/redis-streams-adapter`), as WebRTC signaling tutorials write it. Each is run on
1, 2 and 4 front processes (Switchboard: gateways with one relay; Socket.IO: node processes)
and one redis-server, at the CPU scenario's load (scenario 4: `cpu_pairs` pairs,
`cpu_rate` msg/s each) and at each rate of `scaleout_rates`, sender and receiver of every
pair on different fronts (the load generator deals a pair's two clients to fronts in turn).
PeerJS server, one process that cannot scale out, runs beside them as the floor.

Every run is on fresh processes; within a round the servers take turns in a rotating
order, and with several rounds each figure is the median of its runs. CPU counts every
server process: fronts, relay, redis-server.
"""

from __future__ import annotations

from collections.abc import Callable
from statistics import median
from typing import Any

from bench.scenarios import Settings, WorkerFailed, paced, sizes
from bench.servers import Server

# The servers of the sweep, in the table's order; PeerJS runs at one process only.
SCALING = ("switchboard", "socketio-pubsub", "socketio-streams")
FLOOR = "peerjs"
LABELS = {"switchboard": "Switchboard", "socketio-pubsub": "Socket.IO + redis-adapter",
          "socketio-streams": "Socket.IO + redis-streams-adapter", "peerjs": "PeerJS"}


def step_label(fronts: int, rate: float) -> str:
    return f"{fronts}x{round(rate)}"


def sweep(settings: Settings, start: Callable[[str, int], Server],
          servers: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Every server of `servers` at each front count and rate; results by server, each with
    its `steps` (label `FRONTSxRATE` -> median figures) and the totals the run checks."""
    fronts_list = sizes(settings.scaleout_fronts)
    rates = [float(rate) for rate in sizes(settings.scaleout_rates)]
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {name: {} for name in servers}
    turn = 0
    for rate in rates:
        for fronts in fronts_list:
            names = [n for n in servers if n != FLOOR or fronts == fronts_list[0]]
            for _ in range(settings.scaleout_rounds):
                turn += 1
                order = names[turn % len(names):] + names[:turn % len(names)]
                for name in order:
                    label = step_label(1 if name == FLOOR else fronts, rate)
                    runs[name].setdefault(label, []).append(
                        _run(start, name, fronts, settings, rate))
    return {name: _summary(by_label) for name, by_label in runs.items()}


def _run(start: Callable[[str, int], Server], name: str, fronts: int, settings: Settings,
         rate: float) -> dict[str, Any]:
    print(".", end="", flush=True)
    try:
        server = start(name, fronts)
    except (OSError, RuntimeError) as exc:
        return {"failed": f"{name} did not start: {exc}"}
    try:
        return paced(server, settings, settings.cpu_pairs, rate, settings.cpu_seconds)
    except (WorkerFailed, OSError, TimeoutError) as exc:
        return {"failed": str(exc)}
    finally:
        server.stop()


def _summary(by_label: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    steps: dict[str, Any] = {}
    lost = disorder = errors = 0
    first_errors: list[str] = []
    for label, runs in by_label.items():
        good = [run for run in runs if "failed" not in run]
        failed = [run["failed"] for run in runs if "failed" in run]
        errors += len(failed)
        first_errors += failed
        for run in good:
            lost += run["lost"]
            disorder += run["disorder"]
            errors += run["error_count"]
            first_errors += run["errors"]
        if not good:
            steps[label] = {"failed": failed[0]}
            continue
        steps[label] = {
            "cpu_ms_per_1k": round(1000 * median(r["server_cpu_per_1k"] for r in good), 2),
            "p50_ms": median(r["p50_ms"] for r in good),
            "p99_ms": median(r["p99_ms"] for r in good),
            "achieved_per_s": min(r["achieved_per_s"] for r in good),
            "offered_per_s": good[0]["offered_per_s"],
            "runs": [{key: r[key] for key in ("server_cpu_per_1k", "p50_ms", "p99_ms",
                                              "server_cpu_by_process_s", "lost",
                                              "disorder", "received")} for r in good]}
    # The step whose load generator fell furthest behind stands for the server (a warning).
    lowest = min((step for step in steps.values() if "offered_per_s" in step),
                 key=lambda step: step["achieved_per_s"] / step["offered_per_s"], default=None)
    return {"steps": steps, "lost": lost, "disorder": disorder, "error_count": errors,
            "errors": first_errors[:10],
            **({key: lowest[key] for key in ("offered_per_s", "achieved_per_s")}
               if lowest else {})}


def _figure(results: dict[str, dict[str, Any]], name: str, fronts: int, rate: float,
            key: str) -> float | None:
    step = (results.get(name) or {}).get("steps", {}).get(step_label(fronts, rate)) or {}
    value = step.get(key)
    return float(value) if isinstance(value, int | float) else None


def table(results: dict[str, dict[str, Any]], settings: Settings) -> str:
    """CPU ms per 1,000 messages, p50 and p99 ms, by rate, front count and server, with
    each server's CPU per message against its own at the fewest fronts (growth)."""
    names = [name for name in (*SCALING, FLOOR) if name in results]
    fronts_list = sizes(settings.scaleout_fronts)
    head = ["msg/s", "fronts", "server", "CPU ms/1k msgs", "p50 ms", "p99 ms",
            f"CPU vs {fronts_list[0]} front"]
    lines = [head]
    for rate in (float(r) for r in sizes(settings.scaleout_rates)):
        for fronts in fronts_list:
            for index, name in enumerate(n for n in names if n != FLOOR or fronts == 1):
                cpu, p50, p99 = (_figure(results, name, fronts, rate, key)
                                 for key in ("cpu_ms_per_1k", "p50_ms", "p99_ms"))
                first = _figure(results, name, fronts_list[0], rate, "cpu_ms_per_1k")
                lines.append([f"{rate:,.0f}" if index == 0 else "",
                              str(fronts) if index == 0 else "", LABELS[name],
                              "-" if cpu is None else f"{cpu:.1f}",
                              "-" if p50 is None else f"{p50:.2f}",
                              "-" if p99 is None else f"{p99:.2f}",
                              f"{cpu / first:.2f}x" if cpu is not None and first else "-"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    rounds = settings.scaleout_rounds
    out = [f"14 scale-out, by front processes ({settings.cpu_pairs} pairs, "
           f"{settings.cpu_seconds:g} s; medians of {rounds} run{'s' if rounds > 1 else ''})"]
    for number, line in enumerate(lines):
        cells = [cell.ljust(width) if i == 2 else cell.rjust(width)
                 for i, (cell, width) in enumerate(zip(line, widths, strict=True))]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


def targets(results: dict[str, dict[str, Any]], settings: Settings) -> str:
    """The scale-out targets at the CPU scenario's load, against each Socket.IO adapter and
    PeerJS, each with what this run measured and whether it met it."""
    rate = float(sizes(settings.scaleout_rates)[0])
    lines = [f"Targets of the scale-out (at {rate:,.0f} msg/s, medians):"]

    def ratio(name: str, fronts: int, key: str, peer_fronts: int | None = None) -> float | None:
        ours = _figure(results, "switchboard", fronts, rate, key)
        theirs = _figure(results, name, peer_fronts or fronts, rate, key)
        return ours / theirs if ours is not None and theirs else None

    def line(text: str, value: float | None, goal: float) -> None:
        if value is None:
            lines.append(f"  {text}: not measured in this run (goal <= {goal:g}x)")
        else:
            met = "met" if value <= goal else "not met"
            lines.append(f"  {text}: {value:.2f}x (goal <= {goal:g}x): {met}")

    def worst(values: list[float | None]) -> float | None:
        return None if None in values else max(v for v in values if v is not None)

    for peer in SCALING[1:]:
        label = LABELS[peer]
        line(f"CPU per message vs {label}, 2 fronts", ratio(peer, 2, "cpu_ms_per_1k"), 0.75)
        line(f"CPU per message vs {label}, 4 fronts", ratio(peer, 4, "cpu_ms_per_1k"), 0.6)
        line(f"p99 vs {label}, 2 and 4 fronts (the higher)",
             worst([ratio(peer, 2, "p99_ms"), ratio(peer, 4, "p99_ms")]), 0.7)
        line(f"p50 vs {label}, 2 and 4 fronts (the higher)",
             worst([ratio(peer, 2, "p50_ms"), ratio(peer, 4, "p50_ms")]), 1.0)
    four, two = (_figure(results, "switchboard", n, rate, "cpu_ms_per_1k") for n in (4, 2))
    line("CPU per message, 4 fronts against 2 (Switchboard)",
         four / two if four is not None and two else None, 1.15)
    for peer in SCALING[1:]:
        four, two = (_figure(results, peer, n, rate, "cpu_ms_per_1k") for n in (4, 2))
        if four is not None and two:
            lines.append(f"    (the same for {LABELS[peer]}: {four / two:.2f}x)")
    line("CPU per message vs PeerJS (one process), 2 fronts",
         ratio(FLOOR, 2, "cpu_ms_per_1k", peer_fronts=1), 1.5)
    for name in results:
        broken = (results[name].get("lost") or 0) + (results[name].get("disorder") or 0)
        if name == "switchboard":
            lines.append(f"  Switchboard lost nothing, in order, every run: {broken:,} "
                         f"(goal 0): {'met' if broken == 0 else 'not met'}")
        elif broken:
            lines.append(f"    ({LABELS[name]}: {broken:,} lost or out of order: "
                         f"{failing_steps(results[name])})")
    return "\n".join(lines)


def failing_steps(result: dict[str, Any]) -> str:
    """The steps of a server's sweep that lost or reordered messages, and how many."""
    return ", ".join(
        f"{label} fronts x msg/s: {sum(run['lost'] + run['disorder'] for run in step['runs']):,}"
        for label, step in result["steps"].items()
        if any(run["lost"] or run["disorder"] for run in step.get("runs", ())))
