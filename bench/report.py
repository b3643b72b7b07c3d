"""The results: one table with both servers and the ratio, a JSON file and a PNG plot."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVERS = ("switchboard", "peerjs")


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    key: str
    better: str  # "higher" or "lower"
    digits: int = 0


ROWS = {
    "throughput": [Row("1 relay throughput", "messages/s delivered", "msgs_per_s", "higher")],
    "latency": [Row("2 latency at fixed rate", "p50 ms", "p50_ms", "lower", 2),
                Row("", "p99 ms", "p99_ms", "lower", 2),
                Row("", "p99.9 ms", "p999_ms", "lower", 2)],
    "storm": [Row("3 join storm", "joins/s", "joins_per_s", "higher"),
              Row("", "s until all joined", "all_joined_s", "lower", 2),
              Row("", "s until all joined + new_peer", "all_events_s", "lower", 2)],
    "cpu": [Row("4 CPU per message", "server CPU s per 1000 msgs", "server_cpu_per_1k",
                "lower", 4),
            Row("", "p99 ms (did it keep up?)", "p99_ms", "lower", 2)],
    "idle": [Row("5 idle connections", "KB/conn, gateway (PeerJS: node)", "main_kib_per_conn",
                 "lower", 1),
             Row("", "KB/conn, all server processes", "all_kib_per_conn", "lower", 1),
             Row("", "idle CPU, % of a core", "idle_cpu_percent", "lower", 2)],
    "rooms": [Row("6 room storms", "star room: joins/s", "star_joins_per_s", "higher"),
              Row("", "star room: frames per join", "star_frames_per_join", "lower", 2),
              Row("", "star room: s until all joined", "star_all_joined_s", "lower", 2),
              Row("", "mesh rooms: joins/s", "mesh_joins_per_s", "higher"),
              Row("", "mesh rooms: frames per join", "mesh_frames_per_join", "lower", 2),
              Row("", "mesh rooms: s until all joined", "mesh_all_joined_s", "lower", 2)],
    "resume": [Row("7 resume", "cut -> joined_room resumed, p50 ms", "joined_p50_ms", "lower", 2),
               Row("", "cut -> joined_room resumed, p99 ms", "joined_p99_ms", "lower", 2),
               Row("", "cut -> backlog delivered, p50 ms", "backlog_p50_ms", "lower", 2),
               Row("", "cut -> backlog delivered, p99 ms", "backlog_p99_ms", "lower", 2),
               Row("", "CPU s per 1000 msgs, plain peers", "plain_cpu_per_1k", "lower", 4),
               Row("", "CPU s per 1000 msgs, resumable", "resumable_cpu_per_1k", "lower", 4),
               Row("", "resumable / plain", "resumable_over_plain", "lower", 3)],
    "admin": [Row("10 admin API under load", "GET a room: p50 ms", "get_p50_ms", "lower", 2),
              Row("", "GET a room: p99 ms", "get_p99_ms", "lower", 2),
              Row("", "remove a peer: p50 ms", "remove_p50_ms", "lower", 2),
              Row("", "remove a peer: p99 ms", "remove_p99_ms", "lower", 2),
              Row("", "load: p99 ms a message", "p99_ms", "lower", 2),
              Row("", "load: server CPU s per 1000 msgs", "server_cpu_per_1k", "lower", 4)],
    "identities": [Row("11 identities in tokens", "CPU s per 1000 msgs, plain joins",
                       "plain_cpu_per_1k", "lower", 4),
                   Row("", "CPU s per 1000 msgs, sub + info tokens", "identities_cpu_per_1k",
                       "lower", 4),
                   Row("", "tokens / plain (medians)", "identities_over_plain", "lower", 3),
                   Row("", "tokens / plain, lowest round", "ratio_min", "lower", 3),
                   Row("", "tokens / plain, highest round", "ratio_max", "lower", 3),
                   Row("", "plain runs, highest / lowest", "plain_spread", "lower", 3)],
    "joinhook": [Row("12 join hook", "no hook (A): join p50 ms", "plain_p50_ms", "lower", 2),
                 Row("", "no hook (A): join p99 ms", "plain_p99_ms", "lower", 2),
                 Row("", "hook (B): join p50 ms", "hook_p50_ms", "lower", 2),
                 Row("", "hook (B): join p99 ms", "hook_p99_ms", "lower", 2),
                 Row("", "p50 added, B - A (median)", "added_p50_ms", "lower", 2),
                 Row("", "p99 added, B - A (median)", "added_p99_ms", "lower", 2),
                 Row("", "p99 added, lowest round", "added_p99_min_ms", "lower", 2),
                 Row("", "p99 added, highest round", "added_p99_max_ms", "lower", 2),
                 Row("", "no hook runs: p99 highest - lowest", "plain_p99_spread_ms",
                     "lower", 2),
                 Row("", "hook call as the gateway times it, mean ms", "hook_call_mean_ms",
                     "lower", 2),
                 Row("", "gateway CPU ms per join, A", "plain_gateway_cpu_ms_per_join",
                     "lower", 3),
                 Row("", "gateway CPU ms per join, B", "hook_gateway_cpu_ms_per_join",
                     "lower", 3),
                 Row("", "receiver CPU ms per join", "receiver_cpu_ms_per_join", "lower", 3)],
    "webhooks": [Row("13 webhooks", "CPU s per 1000 msgs, webhooks off", "off_cpu_per_1k",
                     "lower", 4),
                 Row("", "CPU s per 1000 msgs, webhooks on", "on_cpu_per_1k", "lower", 4),
                 Row("", "on / off (medians)", "on_over_off", "lower", 3),
                 Row("", "on / off, lowest round", "ratio_min", "lower", 3),
                 Row("", "on / off, highest round", "ratio_max", "lower", 3),
                 Row("", "off runs, highest / lowest", "off_spread", "lower", 3),
                 Row("", "with churn: CPU s per 1000 msgs, off", "churn_off_cpu_per_1k",
                     "lower", 4),
                 Row("", "with churn: CPU s per 1000 msgs, on", "churn_on_cpu_per_1k",
                     "lower", 4),
                 Row("", "with churn: on / off (medians)", "churn_on_over_off", "lower", 3),
                 Row("", "with churn: webhooks/s delivered", "webhooks_per_s", "higher", 1),
                 Row("", "delivery (at -> receiver) p50 ms", "delivery_p50_ms", "lower", 2),
                 Row("", "delivery p99 ms (all rounds' events)", "delivery_p99_ms", "lower",
                     2),
                 Row("", "delivery p99 ms, lowest round", "delivery_p99_min_ms", "lower", 2),
                 Row("", "delivery p99 ms, highest round", "delivery_p99_max_ms", "lower",
                     2),
                 Row("", "delivery max ms", "delivery_max_ms", "lower", 2),
                 Row("", "churn join p99 ms, off", "off_churn_join_p99_ms", "lower", 2),
                 Row("", "churn join p99 ms, on", "on_churn_join_p99_ms", "lower", 2),
                 Row("", "receiver CPU ms per webhook", "receiver_cpu_ms_per_webhook",
                     "lower", 3)],
}


def _steps(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A sweep's steps (size label -> result), from the first server that ran them."""
    return next((r["steps"] for r in results.values() if r and "steps" in r), {})


def _room_size_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for index, label in enumerate(_steps(results)):
        topology, size = label.split("_")
        room = f"{topology} {int(size):,}"
        rows += [Row("8 room sizes" if index == 0 else "", f"{room}: joins/s",
                     f"{label}_joins_per_s", "higher"),
                 Row("", f"{room}: frames per join", f"{label}_frames_per_join", "lower", 2),
                 Row("", f"{room}: frames to fill a room", f"{label}_frames_per_room",
                     "lower"),
                 Row("", f"{room}: server CPU ms per join",
                     f"{label}_server_cpu_ms_per_join", "lower", 3)]
    return rows


def _idle_sweep_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for index, label in enumerate(_steps(results)):
        sockets = f"{int(label.split('_')[1]):,} sockets"
        rows += [Row("9 idle sweep" if index == 0 else "", f"{sockets}: KB/conn, gateway "
                     "(PJ: node)", f"{label}_main_kib_per_conn", "lower", 1),
                 Row("", f"{sockets}: KB/conn, all processes", f"{label}_all_kib_per_conn",
                     "lower", 1),
                 Row("", f"{sockets}: idle CPU, % of a core", f"{label}_idle_cpu_percent",
                     "lower", 2)]
    return rows


def rows(name: str, results: dict[str, Any]) -> list[Row]:
    """A scenario's rows; a sweep has rows for each of the sizes it ran."""
    if name == "roomsizes":
        return _room_size_rows(results)
    if name == "idlesweep":
        return _idle_sweep_rows(results)
    return ROWS.get(name, [])


def _cell(result: dict[str, Any] | None, row: Row) -> str:
    if result is None:
        return "-"
    if "failed" in result:
        return "FAILED"
    value = result.get(row.key)
    if value is None:
        return "-"
    return f"{value:,.{row.digits}f}"


def _ratio(results: dict[str, Any], row: Row) -> str:
    ours, theirs = (results.get(name) or {} for name in SERVERS)
    a, b = ours.get(row.key), theirs.get(row.key)
    if not isinstance(a, int | float) or not isinstance(b, int | float) or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def describe(name: str, results: dict[str, Any]) -> str:
    """What a scenario ran, from the first server's result (both ran the same)."""
    r = next((v for v in results.values() if v and "failed" not in v), None)
    if r is None:
        return ""
    if name == "throughput":
        return f"{r['pairs']} pairs, window {r['window']}, {r['seconds']:g} s"
    if name == "latency":
        return f"{r['pairs']} pairs, {r['offered_per_s']:,} msg/s offered, {r['seconds']:g} s"
    if name == "storm":
        return f"{r['clients']} clients, rooms of 4, {r['concurrency']} connecting at once"
    if name == "cpu":
        return f"{r['pairs']} pairs, {r['offered_per_s']:,} msg/s offered, {r['seconds']:g} s"
    if name == "idle":
        return f"{r['clients']} sockets, {r['idle_seconds']:g} s idle"
    if name == "resume":
        return (f"{r['resumes']} resumes, {r['pairs']} at once, {r['backlog']} frames "
                f"waiting; CPU at {r['offered_per_s']:,} msg/s")
    if name == "rooms":
        return (f"host + {r['joiners']} joiners; mesh rooms of {r['mesh_room_size']}; "
                f"{r['concurrency']} at once")
    if name == "roomsizes":
        return f">= {r['sweep_joiners']} joiners a size, rooms full, {r['concurrency']} at once"
    if name == "idlesweep":
        return f"{r['idle_seconds']:g} s idle each; fresh servers each count"
    if name == "admin":
        return (f"{r['gets']} GETs, {r['removes']} removes; {r['pairs']} pairs, "
                f"{r['offered_per_s']:,} msg/s, {r['seconds']:g} s")
    if name == "identities":
        return (f"{r['pairs']} pairs, {r['offered_per_s']:,} msg/s, {r['seconds']:g} s; "
                f"A/B x{r['rounds']}")
    if name == "joinhook":
        return (f"{r['clients']:,} joins, rooms of 2, {r['concurrency']} in flight; "
                f"A/B x{r['rounds']}")
    if name == "webhooks":
        return (f"{r['pairs']} pairs, {r['offered_per_s']:,} msg/s, {r['seconds']:g} s; "
                f"churn {r['churn_rate']:g} joins/s in {r['churn_rooms']} rooms; "
                f"off/on x{r['rounds']}")
    return ""


def table(scenarios: dict[str, dict[str, Any]]) -> str:
    header = ("scenario", "metric", "switchboard", "peerjs", "ratio SB/PJ", "better")
    lines = [header]
    for name in (*ROWS, "roomsizes", "idlesweep"):
        if name not in scenarios:
            continue
        results = scenarios[name]
        name_rows = rows(name, results)
        for index, row in enumerate(name_rows):
            label = row.scenario
            if index == 1:
                label = f"  ({describe(name, results)})"
            lines.append((label, row.metric, _cell(results.get("switchboard"), row),
                          _cell(results.get("peerjs"), row), _ratio(results, row), row.better))
        if len(name_rows) == 1:
            lines.append((f"  ({describe(name, results)})", "", "", "", "", ""))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for number, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1]),
                 *(cell.rjust(width) for cell, width in zip(line[2:5], widths[2:5], strict=True)),
                 line[5]]
        out.append("  ".join(cells).rstrip())
        if number == 0:
            out.append("  ".join("-" * width for width in widths))
    return "\n".join(out)


@dataclass(frozen=True)
class Target:
    """A benchmark goal, on a row's ratio against PeerJS or on Switchboard's own value."""

    name: str
    scenario: str
    key: str
    goal: float
    better: str  # "higher" or "lower"
    of_ratio: bool  # the goal bounds Switchboard / PeerJS, else Switchboard's value
    unit: str = "x"


TARGETS = (
    Target("relay throughput, closed loop", "throughput", "msgs_per_s", 1.0, "higher", True),
    Target("CPU per message at 5,000 msg/s", "cpu", "server_cpu_per_1k", 1.5, "lower", True),
    Target("p99 at the fixed-rate scenario", "latency", "p99_ms", 10.0, "lower", False, " ms"),
    Target("join storm", "storm", "joins_per_s", 1.0, "higher", True),
    Target("idle memory per connection, gateway", "idle", "main_kib_per_conn", 5.0, "lower",
           False, " KB"),
)
# The admin API's and the identities' goals, on Switchboard's own values.
ADMIN_GOALS = (
    Target("admin API under load: GET a room, p99", "admin", "get_p99_ms", 50.0, "lower",
           False, " ms"),
    Target("admin API under load: remove a peer, p99", "admin", "remove_p99_ms", 50.0,
           "lower", False, " ms"),
    Target("CPU per message, identity tokens / plain joins", "identities",
           "identities_over_plain", 1.05, "lower", False),
)
# The join hook's goal: what it adds to a join's p99, against a receiver that answers at once.
JOIN_HOOK_GOALS = (
    Target("join p99 added by the join hook (median of the rounds' B - A)", "joinhook",
           "added_p99_ms", 5.0, "lower", False, " ms"),
)
# The webhooks' goals: delivery under the CPU scenario's load with churn, and what having
# them on costs a message (which makes no webhook).
WEBHOOK_GOALS = (
    Target("webhook delivery p99, state change -> receiver (load + churn)", "webhooks",
           "delivery_p99_ms", 100.0, "lower", False, " ms"),
    Target("CPU per message, webhooks on / off (medians)", "webhooks", "on_over_off", 1.05,
           "lower", False),
)


def targets(scenarios: dict[str, dict[str, Any]], chosen: tuple[Target, ...] = TARGETS,
            title: str = "Targets:") -> str:
    """The benchmark's targets (or `chosen` ones), each with what this run measured and
    whether it met it."""
    lines = [title]
    for target in chosen:
        results = scenarios.get(target.scenario) or {}
        ours = (results.get("switchboard") or {}).get(target.key)
        theirs = (results.get("peerjs") or {}).get(target.key)
        value: float | None = None
        if isinstance(ours, int | float):
            if not target.of_ratio:
                value = float(ours)
            elif isinstance(theirs, int | float) and theirs:
                value = ours / theirs
        bound = ">=" if target.better == "higher" else "<="
        goal = f"{bound} {target.goal:g}{target.unit}"
        if value is None:
            lines.append(f"  {target.name}: not measured in this run (goal {goal})")
            continue
        met = value >= target.goal if target.better == "higher" else value <= target.goal
        shown = f"{value:.2f}{target.unit}"
        lines.append(f"  {target.name}: {shown} (goal {goal}): "
                     f"{'met' if met else 'not met'}")
    return "\n".join(lines)


def cpu_breakdown(scenarios: dict[str, dict[str, Any]]) -> str:
    """Server CPU per message delivered, by process, split into the process's own code
    (user) and the kernel's work for it (system calls, loopback TCP): what each hop costs."""
    lines = ["Server CPU per message delivered, by process: user + kernel us (from /proc)"]
    width = max((len(ROWS[name][0].scenario) for name in scenarios if name in ROWS), default=0)
    for name, results in scenarios.items():
        label = ROWS[name][0].scenario if name in ROWS else name
        for server in SERVERS:
            split = (results.get(server) or {}).get("server_us_per_msg_user_kernel")
            if not split:
                continue
            parts = "  ".join(f"{role} {user:.1f}+{kernel:.1f}"
                              for role, (user, kernel) in split.items())
            total = sum(user + kernel for user, kernel in split.values())
            lines.append(f"  {label.ljust(width)}  {server.ljust(11)}  {parts}  = {total:.1f}")
            label = ""
    return "\n".join(lines) if len(lines) > 1 else ""


NOTES = """\
Notes: ratio = Switchboard / PeerJS server. Switchboard = 1 gateway + 1 relay + redis-server,
PeerJS = one node process; all on the same cores as the load generator. Join storm: PeerJS
server has no rooms, so its "join" is connect + OPEN and it sends no new_peer. Idle: the
Switchboard sockets sit in rooms of 2; PeerJS clients send HEARTBEAT every 5 s (as its
browser client does). CPU per message counts every server process (Switchboard: gateway,
relay and Redis) from /proc/<pid>/stat, from the start until the last message arrived.
Room storms (Switchboard only): frames per join counts every frame any member received.
Room sizes (Switchboard only): frames to fill a room grow as n^2 in a mesh (every joiner
tells everyone there), as n in a star (the host alone hears of each). Idle sweep: scenario
5 at each socket count, with a shorter idle period.
Resume (Switchboard only): a pair's resumable peer has its TCP connection reset, frames are
sent to it, and a new socket resumes it; CPU per message as in scenario 4, plain peers and
then resumable ones (every frame numbered and kept in Redis) on the same server.
Admin API (Switchboard only): round trips of one keep-alive HTTP client on loopback while
scenario 4's load runs; each removal takes a peer alone in its room, which must be told.
Identities (Switchboard only): scenario 4 with plain joins and no join secret, and with
tokens carrying sub and info (a secret set), alternated, each run on fresh servers.
Join hook (Switchboard only): clients connected beforehand join rooms of 2, timed from
join_room sent to joined_room received, on servers without a join hook (A) and with one
asking a receiver process that verifies each signature and allows at once (B),
alternated, each run on fresh servers; the receiver's CPU is not in the gateway's.
Webhooks (Switchboard only): scenario 4 on servers without webhooks (off) and with them
posting to a receiver process (on), alternated, fresh servers each; each run alone, then
with rooms of 2 whose members join and leave (churn). Delivery: the event's `at` (the
Redis entry's millisecond) to the receiver reading it; the receiver's CPU is not counted.
Scale-out: scenario 4's pairs on 1, 2, 4 front processes (Switchboard: gateways + 1 relay;
Socket.IO: node processes of bench/socketio/server.js with the pub/sub redis-adapter or
the redis-streams-adapter), one redis-server each, a pair's two ends on different fronts,
fresh processes each run; PeerJS at one process. CPU counts every process, Redis's too."""


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


# Sweep panels: (scenario, key of each step's result, title); x is the size, on a log
# scale; y too for frames to fill a room (they span 2 to 5,000).
SWEEP_PANELS = (
    ("roomsizes", "frames_per_room", "room sizes: frames to fill a room\n(mesh ~n^2, star ~n)"),
    ("roomsizes", "joins_per_s", "room sizes: joins/s\n(higher is better)"),
    ("idlesweep", "main_kib_per_conn", "idle sweep: KB/conn, gateway (PJ: node)\n"
     "(lower is better)"),
    ("idlesweep", "idle_cpu_percent", "idle sweep: idle CPU, % of a core\n(lower is better)"),
)


def _plot_sweep(axis: Any, results: dict[str, Any], key: str, title: str) -> None:
    """One line per server (room sizes: per topology) against the size."""
    log_y = key == "frames_per_room"
    for server in SERVERS:
        steps = (results.get(server) or {}).get("steps", {})
        lines: dict[str, list[tuple[int, float]]] = {}
        for label, step in steps.items():
            kind, size = label.split("_")
            value = step.get(key)
            if isinstance(value, int | float) and (value > 0 or not log_y):
                lines.setdefault(kind, []).append((int(size), float(step[key])))
        for kind, points in lines.items():
            name = f"{server} {kind}" if kind != "idle" else server
            axis.plot(*zip(*points, strict=True), marker="o", label=name)
    axis.set_xscale("log")
    ticks = sorted({int(x) for line in axis.lines for x in line.get_xdata()})
    axis.set_xticks(ticks, labels=[f"{tick:,}" for tick in ticks])
    axis.minorticks_off()
    if log_y:
        axis.set_yscale("log")
    axis.set_title(title, fontsize=9)
    axis.tick_params(labelsize=8)
    if axis.lines:
        axis.legend(fontsize=7)


def plot(path: Path, scenarios: dict[str, dict[str, Any]]) -> str | None:
    """A PNG with one panel per metric, both servers side by side; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "no plot: matplotlib is not installed (pip install -e '.[bench]')"
    panels = [(name, row) for name, rows in ROWS.items() if name in scenarios for row in rows
              if row.key not in ("all_joined_s", "p50_ms", "star_all_joined_s",
                                 "mesh_all_joined_s", "joined_p50_ms", "backlog_p50_ms",
                                 "get_p50_ms", "remove_p50_ms", "ratio_min", "ratio_max",
                                 "plain_spread", "plain_p50_ms", "hook_p50_ms",
                                 "added_p50_ms", "added_p99_min_ms", "added_p99_max_ms",
                                 "plain_p99_spread_ms", "receiver_cpu_ms_per_join",
                                 "hook_call_mean_ms", "ratio_min", "ratio_max",
                                 "off_spread", "delivery_p99_min_ms", "delivery_p99_max_ms",
                                 "delivery_max_ms", "off_churn_join_p99_ms",
                                 "on_churn_join_p99_ms", "receiver_cpu_ms_per_webhook",
                                 "churn_off_cpu_per_1k", "churn_on_cpu_per_1k",
                                 "webhooks_per_s") and
              (name, row.key) not in (("cpu", "p99_ms"), ("admin", "p99_ms"))]
    curves = [curve for curve in SWEEP_PANELS if curve[0] in scenarios]
    columns = 3
    count = len(panels) + len(curves)
    if not count:
        return "no plot: no scenario of this run has one"
    figure, axes = plt.subplots(-(-count // columns), columns,
                                figsize=(11, 3 * -(-count // columns)), squeeze=False)
    colours = {"switchboard": "#1f77b4", "peerjs": "#ff7f0e"}
    for axis, (name, key, title) in zip(list(axes.flat)[len(panels):], curves, strict=False):
        _plot_sweep(axis, scenarios[name], key, title)
    for axis, (name, row) in zip(axes.flat, panels, strict=False):
        results = scenarios[name]
        names = [s for s in SERVERS if results.get(s) and "failed" not in results[s]]
        values = [float(results[s].get(row.key) or 0) for s in names]
        axis.bar(names, values, color=[colours[s] for s in names])
        axis.set_title(f"{name}: {row.metric}\n({row.better} is better)", fontsize=9)
        for x, value in enumerate(values):
            axis.annotate(f"{value:,.{row.digits}f}", (x, value), ha="center", va="bottom",
                          fontsize=8)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    figure.suptitle("Switchboard vs PeerJS server", fontsize=11)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return None
