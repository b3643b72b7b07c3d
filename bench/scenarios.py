"""The scenarios, run against one server at a time by forked load-generator workers.

Each scenario deals its pairs or clients to `workers` processes (bench.loadgen), waits until
all are set up, starts them together, and reads the server's CPU and memory from /proc
around the measured part. Every scenario returns a flat dict of numbers for the report,
including `lost` (messages or events that were sent but never arrived) and `errors`.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from statistics import median
from typing import Any

from bench.admin_latency import AdminCalls, AdminCallsFailed
from bench.identities import ADMIN_KEY, INFO_BYTES, JOIN_SECRET
from bench.loadgen import Task, worker_main
from bench.procstat import (
    cpu_seconds,
    machine_busy_seconds,
    rss_kib,
    settle,
    user_and_kernel_seconds,
)
from bench.resume import resume_latency
from bench.servers import Server

_tags = iter(range(1_000_000))


@dataclass(frozen=True)
class Settings:
    """Scenario sizes (the command-line flags)."""

    workers: int = 2
    pairs: int = 100
    window: int = 8
    warmup: float = 1.0
    seconds: float = 10.0
    storm_clients: int = 2000
    storm_concurrency: int = 100
    cpu_pairs: int = 125
    cpu_rate: float = 40.0  # messages/s sent by each pair, half in each direction
    cpu_seconds: float = 10.0
    idle_clients: int = 10_000
    idle_seconds: float = 20.0  # one server ping interval (SWITCHBOARD_PING_INTERVAL)
    # Room storms (Switchboard only): a star room filled to this many members (the host
    # first; the default fills SWITCHBOARD_STAR_ROOM_CAPACITY), and as many joiners into
    # mesh rooms of `mesh_room_size`, each with its first member in before.
    star_members: int = 1000
    mesh_room_size: int = 100
    # Resume (Switchboard only): pairs x rounds resumes, each with this many frames waiting;
    # and the CPU scenario's load once with plain peers, once with resumable ones.
    resume_pairs: int = 20
    resume_rounds: int = 10
    resume_backlog: int = 5
    # Room-size sweep (Switchboard only): for each size, at least `sweep_joiners` joiners
    # (rounded up to fill every room) storm rooms of that size, each with its first member
    # in before; on fresh server processes for each size.
    mesh_sizes: str = "2,10,50,100"
    star_sizes: str = "10,100,1000"
    sweep_joiners: int = 999
    # Idle sweep: the idle scenario at each of these socket counts, fresh servers for each,
    # with a shorter idle period than the idle scenario's.
    idle_counts: str = "1000,5000,10000,20000"
    sweep_idle_seconds: float = 5.0
    # Attacks (Switchboard only, bench.attacks): seconds each flood lasts, and a factor on
    # every attack's socket count.
    attack_seconds: float = 5.0
    attack_scale: float = 1.0
    # Admin API (Switchboard only): room details asked for and peers removed through it,
    # spread over the CPU scenario's measured window, while its load runs.
    admin_gets: int = 200
    admin_removes: int = 100
    # Identities: the CPU scenario with plain joins, then with tokens carrying a user and
    # its info, alternated this many times, each run on fresh servers.
    identity_rounds: int = 3


class WorkerFailed(RuntimeError):
    pass


def _expect(conns: list[Connection], what: str, timeout: float, server: Server) -> list[Any]:
    """Read one `what` message from every worker (in worker order)."""
    replies: dict[int, Any] = {}
    deadline = time.monotonic() + timeout
    while len(replies) < len(conns):
        left = deadline - time.monotonic()
        if left <= 0:
            raise WorkerFailed(f"workers gave no {what!r} within {timeout:.0f} s")
        for conn in wait([c for i, c in enumerate(conns) if i not in replies], min(left, 1.0)):
            assert isinstance(conn, Connection)
            try:
                kind, value = conn.recv()
            except EOFError:
                raise WorkerFailed(f"a worker exited before {what!r}") from None
            if kind == "failed":
                raise WorkerFailed(f"a worker failed:\n{value}")
            replies[conns.index(conn)] = value
        if not server.alive():
            raise WorkerFailed(f"{server.name} died")
    return [replies[i] for i in range(len(conns))]


@dataclass
class Measured:
    results: list[dict[str, Any]]
    # Per server process: user and kernel CPU seconds, from go until every worker reported
    # (see bench.procstat).
    split_by_process: dict[str, tuple[float, float]]
    machine_cpu: float  # the same for every process of the machine (ours and anyone's)
    wall: float

    @property
    def server_cpu(self) -> float:
        return sum(user + kernel for user, kernel in self.split_by_process.values())

    @property
    def cpu_by_process(self) -> dict[str, float]:
        return {role: round(user + kernel, 2)
                for role, (user, kernel) in self.split_by_process.items()}


def _run_workers(server: Server, task: Task, setup_timeout: float, run_timeout: float,
                 at_ready: Any = None) -> Measured:
    """Fork `task.workers` workers for `task`, start them together, return their results."""
    context = multiprocessing.get_context("fork")
    processes, conns = [], []
    for index in range(task.workers):
        parent, child = context.Pipe()
        process = context.Process(target=worker_main, args=(child, replace(task, worker=index)),
                                  daemon=True)
        process.start()
        child.close()
        processes.append(process)
        conns.append(parent)
    try:
        _expect(conns, "ready", setup_timeout, server)
        if at_ready is not None:
            at_ready()
        started = time.monotonic()
        split_before = {role: user_and_kernel_seconds(pid) for role, pid in server.pids.items()}
        machine_before = machine_busy_seconds()
        t0 = time.monotonic_ns() + 50_000_000
        for conn in conns:
            conn.send(("go", t0))
        results = _expect(conns, "result", run_timeout, server)
        split = {role: _minus(user_and_kernel_seconds(pid), split_before[role])
                 for role, pid in server.pids.items()}
        measured = Measured(results, split, machine_busy_seconds() - machine_before,
                            time.monotonic() - started)
        for conn in conns:
            conn.send(("close", None))
        _expect(conns, "closed", 60, server)
        return measured
    finally:
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for conn in conns:
            conn.close()


def _minus(after: tuple[float, float], before: tuple[float, float]) -> tuple[float, float]:
    return after[0] - before[0], after[1] - before[1]


def _task(kind: str, server: Server, settings: Settings, **fields: Any) -> Task:
    return Task(kind=kind, protocol=server.name, port=server.port, ports=server.ports,
                tag=f"b{next(_tags)}",
                worker=0, workers=settings.workers, warmup=settings.warmup, **fields)


def _pairs_summary(measured: Measured) -> dict[str, Any]:
    results = measured.results
    received = sum(r["received"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    return {
        "pairs": sum(r["pairs"] for r in results),
        "sent": sum(r["sent"] for r in results), "received": received,
        "lost": sum(r["lost"] for r in results),
        "disorder": sum(r["disorder"] for r in results),
        "error_count": sum(r["error_count"] for r in results), "errors": errors[:10],
        "server_cpu_s": round(measured.server_cpu, 3),
        "server_cpu_by_process_s": measured.cpu_by_process,
        "server_cpu_per_1k": round(1000 * measured.server_cpu / max(received, 1), 4),
        # Where it went: µs per message delivered, by process, [user, kernel].
        "server_us_per_msg_user_kernel": {
            role: [round(1e6 * seconds / max(received, 1), 1) for seconds in both]
            for role, both in measured.split_by_process.items()},
        "client_cpu_s": round(sum(r["client_cpu"] for r in results), 3),
        # Machine CPU not used by the server or the load generator: other processes' noise.
        "others_cpu_s": round(measured.machine_cpu - measured.server_cpu -
                              sum(r["client_cpu"] for r in results), 3),
        "wall_s": round(measured.wall, 3),
    }


def throughput(server: Server, settings: Settings) -> dict[str, Any]:
    """(1) N pairs in rooms of their own, closed loop, fixed time: messages/s delivered."""
    task = _task("closed", server, settings, pairs=settings.pairs, window=settings.window,
                 seconds=settings.seconds)
    measured = _run_workers(server, task, 120, settings.warmup + settings.seconds + 60)
    counted = sum(r["counted"] for r in measured.results)
    return {"msgs_per_s": round(counted / settings.seconds), "window": settings.window,
            "seconds": settings.seconds, **_pairs_summary(measured)}


def paced(server: Server, settings: Settings, pairs: int, rate: float,
          seconds: float, resumable: bool = False, join_secret: str = "") -> dict[str, Any]:
    """N pairs offered `rate` messages/s in all: latency send -> receive, and server CPU.
    With `join_secret`, every peer joins with a token giving it a user and info."""
    task = _task("paced", server, settings, pairs=pairs, rate=rate, seconds=seconds,
                 resumable=resumable, join_secret=join_secret)
    measured = _run_workers(server, task, 120, settings.warmup + seconds + 60)
    return _paced_figures(measured, rate, seconds)


def _paced_figures(measured: Measured, rate: float, seconds: float) -> dict[str, Any]:
    samples = array("q")
    for result in measured.results:
        samples.frombytes(result["latencies"])
    ordered = sorted(samples)

    def ms(q: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6, 3)

    sent_in_window = sum(r["sent_in_window"] for r in measured.results)
    return {"offered_per_s": round(rate), "achieved_per_s": round(sent_in_window / seconds),
            "seconds": seconds, "samples": len(ordered), "p50_ms": ms(0.5), "p99_ms": ms(0.99),
            "p999_ms": ms(0.999), "max_ms": ms(1.0), **_pairs_summary(measured)}


def _join_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Joins of a storm: how many, how fast, how long until all joined (and until every
    new_peer arrived), join latency percentiles."""
    start = min(r["start_ns"] for r in runs)
    joined = sum(r["joined"] for r in runs)
    all_joined = (max(r["last_joined_ns"] for r in runs) - start) / 1e9
    all_events = (max(r["last_event_ns"] for r in runs) - start) / 1e9
    latencies = sorted(x for r in runs for x in array("q", r["latencies"]))

    def ms(q: float) -> float | None:
        return round(latencies[int(len(latencies) * q)] / 1e6, 2) if latencies else None

    return {"joined": joined,
            "joins_per_s": round(joined / all_joined) if all_joined > 0 else None,
            "all_joined_s": round(all_joined, 3), "all_events_s": round(all_events, 3),
            "join_p50_ms": ms(0.5), "join_p99_ms": ms(0.99)}


def storm(server: Server, settings: Settings) -> dict[str, Any]:
    """(3) K clients connect and join rooms of 4 as fast as they can."""
    clients = settings.storm_clients
    task = _task("storm", server, settings, clients=clients, room_size=4,
                 concurrency=settings.storm_concurrency)
    measured = _run_workers(server, task, 60, 180)
    results = measured.results
    figures = _join_figures(results)
    return {
        "clients": clients, "concurrency": settings.storm_concurrency, **figures,
        "new_peers": sum(r["new_peers"] for r in results),
        "expected_new_peers": sum(r["expected_new_peers"] for r in results),
        "lost": (clients - figures["joined"]) + sum(r["lost"] for r in results),
        "error_count": sum(r["error_count"] for r in results),
        "errors": [e for r in results for e in r["errors"]][:10],
        "server_cpu_s": round(measured.server_cpu, 3),
        "server_cpu_by_process_s": measured.cpu_by_process,
        "others_cpu_s": round(measured.machine_cpu - measured.server_cpu, 3),  # incl. clients
    }


def room_storm(server: Server, settings: Settings, topology: str | None, size: int,
               joiners: int) -> dict[str, Any]:
    """One join storm: `joiners` clients into rooms of `size` (`size - 1` joiners a room,
    its first member in before). Frames per join: every frame any member received during
    the storm, per join (a star client's join costs its joined_room and the host's
    new_peer; a mesh join tells everyone already there)."""
    task = _task("rooms", server, settings, clients=joiners, room_size=size,
                 topology=topology, concurrency=settings.storm_concurrency)
    measured = _run_workers(server, task, 60, 180)
    runs = measured.results
    figures = _join_figures(runs)
    joined = figures["joined"]
    frames = sum(r["frames"] for r in runs)
    rooms = -(-joiners // (size - 1))
    return {
        **figures, "joiners": joiners, "rooms": rooms,
        "frames_per_join": round(frames / max(joined, 1), 2),
        "frames_per_room": round(frames / rooms, 1),
        "server_cpu_ms_per_join": round(1000 * measured.server_cpu / max(joined, 1), 3),
        "lost": (joiners - joined) + sum(r["lost"] for r in runs),
        "error_count": sum(r["error_count"] for r in runs),
        "errors": [e for r in runs for e in r["errors"]][:10],
    }


def room_storms(server: Server, settings: Settings) -> dict[str, Any]:
    """(6) How joins cost by topology: a star room fills up (its host first), then as many
    joiners go into mesh rooms of `mesh_room_size` (see `room_storm`)."""
    joiners = settings.star_members - 1
    results: dict[str, Any] = {"joiners": joiners, "star_members": settings.star_members,
                               "mesh_room_size": settings.mesh_room_size,
                               "concurrency": settings.storm_concurrency}
    lost = errors = 0
    first_errors: list[str] = []
    for name, topology, size in (("star", "star", settings.star_members),
                                 ("mesh", None, settings.mesh_room_size)):
        storm_ = room_storm(server, settings, topology, size, joiners)
        results.update({f"{name}_{key}": storm_[key] for key in (
            "joined", "joins_per_s", "all_joined_s", "all_events_s", "join_p50_ms",
            "join_p99_ms", "frames_per_join", "server_cpu_ms_per_join")})
        lost += storm_["lost"]
        errors += storm_["error_count"]
        first_errors += storm_["errors"]
    return {**results, "lost": lost, "error_count": errors, "errors": first_errors[:10]}


def sizes(text: str) -> list[int]:
    """A sweep's sizes, from their flag: "2,10,50" -> [2, 10, 50]."""
    return [int(size) for size in text.split(",") if size.strip()]


def _sweep(steps: list[tuple[str, Callable[[], dict[str, Any]]]]) -> dict[str, Any]:
    """Run each step of a sweep; one that fails is recorded as an error, the rest still run.
    The result holds every step under `steps` and, flat for the report, `<label>_<key>`."""
    results: dict[str, Any] = {"steps": {}}
    lost = errors = 0
    first_errors: list[str] = []
    for label, step in steps:
        try:
            result = step()
        except (WorkerFailed, OSError, TimeoutError) as exc:
            result = {"failed": str(exc)}
        results["steps"][label] = result
        results.update({f"{label}_{key}": value for key, value in result.items()
                        if isinstance(value, int | float)})
        if "skipped" in result:
            continue
        if "failed" in result:
            errors += 1
            first_errors.append(f"{label}: {result['failed']}")
            continue
        lost += result["lost"]
        errors += result["error_count"]
        first_errors += result["errors"]
    return {**results, "lost": lost, "error_count": errors, "errors": first_errors[:10]}


def _fresh(start: Callable[[], Server],
           measure: Callable[[Server], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """A sweep step on server processes of its own (none inherits a previous size's rooms
    or heap), stopped after it."""
    def step() -> dict[str, Any]:
        server = start()
        try:
            return measure(server)
        finally:
            server.stop()

    return step


def _skipped(reason: str) -> Callable[[], dict[str, Any]]:
    """A sweep step that cannot run here, and why."""
    return lambda: {"skipped": reason}


def room_sizes(start: Callable[[], Server], settings: Settings) -> dict[str, Any]:
    """(8) Join storms by room size, mesh and star: joins/s and frames per join. A mesh
    room of n costs about n/2 frames per join, n^2/2 to fill; a star room 2 and 2n."""
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for topology, text in (("mesh", settings.mesh_sizes), ("star", settings.star_sizes)):
        for size in sizes(text):
            per_room = size - 1
            joiners = -(-max(settings.sweep_joiners, per_room) // per_room) * per_room

            def measure(server: Server, topology: str = topology, size: int = size,
                        joiners: int = joiners) -> dict[str, Any]:
                return room_storm(server, settings, "star" if topology == "star" else None,
                                  size, joiners)

            steps.append((f"{topology}_{size}", _fresh(start, measure)))
    return {"mesh_sizes": sizes(settings.mesh_sizes), "star_sizes": sizes(settings.star_sizes),
            "sweep_joiners": settings.sweep_joiners,
            "concurrency": settings.storm_concurrency, **_sweep(steps)}


def idle_sweep(start: Callable[[], Server], settings: Settings) -> dict[str, Any]:
    """(9) The idle scenario at each of `idle_counts` sockets, for `sweep_idle_seconds`
    each: memory per connection and idle CPU as the count grows."""
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    # Each server process holds one descriptor a socket, and some of its own.
    open_files = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    for count in sizes(settings.idle_counts):
        step_settings = replace(settings, idle_clients=count,
                                idle_seconds=settings.sweep_idle_seconds)
        if count + 200 > open_files:
            reason = (f"{count:,} sockets need more than the open files limit "
                      f"({open_files:,}) allows a server process")
            steps.append((f"idle_{count}", _skipped(reason)))
            continue

        def measure(server: Server, step_settings: Settings = step_settings) -> dict[str, Any]:
            return idle(server, step_settings)

        steps.append((f"idle_{count}", _fresh(start, measure)))
    return {"idle_counts": sizes(settings.idle_counts),
            "idle_seconds": settings.sweep_idle_seconds, **_sweep(steps)}


def resume(server: Server, settings: Settings) -> dict[str, Any]:
    """(7) Resume latency over many resumes, and what resumable peers cost: the CPU
    scenario's load with plain peers, then with resumable ones (every frame numbered and
    kept in Redis), on the same server."""
    latency = resume_latency(server.port, f"b{next(_tags)}", settings.resume_pairs,
                             settings.resume_rounds, settings.resume_backlog)
    runs = {}
    for name, resumable in (("plain", False), ("resumable", True)):
        runs[name] = paced(server, settings, settings.cpu_pairs,
                           settings.cpu_rate * settings.cpu_pairs, settings.cpu_seconds,
                           resumable=resumable)
    plain, kept = runs["plain"], runs["resumable"]
    ratio = (kept["server_cpu_per_1k"] / plain["server_cpu_per_1k"]
             if plain.get("server_cpu_per_1k") else None)
    return {
        **latency, "offered_per_s": plain["offered_per_s"],
        "plain_cpu_per_1k": plain["server_cpu_per_1k"],
        "resumable_cpu_per_1k": kept["server_cpu_per_1k"],
        "resumable_over_plain": round(ratio, 3) if ratio else None,
        "plain_p99_ms": plain["p99_ms"], "resumable_p99_ms": kept["p99_ms"],
        "plain_us_per_msg_user_kernel": plain["server_us_per_msg_user_kernel"],
        "resumable_us_per_msg_user_kernel": kept["server_us_per_msg_user_kernel"],
        "lost": latency["lost"] + plain["lost"] + kept["lost"],
        "disorder": plain["disorder"] + kept["disorder"],
        "error_count": latency["error_count"] + plain["error_count"] + kept["error_count"],
        "errors": latency["errors"] + plain["errors"] + kept["errors"],
    }


# The settings a scenario's servers start with, beside the benchmark's own.
ENVIRONMENTS = {"admin": {"SWITCHBOARD_ADMIN_KEY": ADMIN_KEY,
                          "SWITCHBOARD_JOIN_SECRET": JOIN_SECRET}}
_IDENTITY_ENV = {"SWITCHBOARD_JOIN_SECRET": JOIN_SECRET}


def admin(server: Server, settings: Settings) -> dict[str, Any]:
    """(10) The admin API's latency under load: scenario 4's load (its peers join with
    tokens giving each a user and info), and meanwhile `admin_gets` room details and
    `admin_removes` removals through the gateway's admin API, one at a time, spread over
    the measured window (bench.admin_latency). The server runs with ENVIRONMENTS["admin"]."""
    rate, seconds = settings.cpu_rate * settings.cpu_pairs, settings.cpu_seconds
    task = _task("paced", server, settings, pairs=settings.cpu_pairs, rate=rate,
                 seconds=seconds, join_secret=JOIN_SECRET)
    rooms = [f"{task.tag}-{index}" for index in range(task.pairs)]
    try:
        with AdminCalls(server.port, f"b{next(_tags)}", rooms, settings.admin_gets,
                        settings.admin_removes, JOIN_SECRET) as calls:
            # The workers start 50 ms after they are told to (_run_workers).
            measured = _run_workers(server, task, 120, settings.warmup + seconds + 60,
                                    at_ready=lambda: calls.go(0.05 + settings.warmup,
                                                              0.9 * seconds))
    except AdminCallsFailed as exc:
        raise WorkerFailed(f"admin API calls: {exc}") from exc
    load = _paced_figures(measured, rate, seconds)
    calls_ = calls.result
    return {**load, **calls_, "lost": load["lost"] + calls_["lost"],
            "error_count": load["error_count"] + calls_["error_count"],
            "errors": (calls_["errors"] + load["errors"])[:10]}


def identities(start: Callable[[dict[str, str]], Server], settings: Settings) -> dict[str, Any]:
    """(11) What identities in join tokens cost the hot path: scenario 4 with plain joins
    on servers without a join secret, then with tokens carrying `sub` and about 200 bytes
    of `info` on servers with one, alternated `identity_rounds` times (A/B/A/B...), each
    run on fresh server processes. The ratio is of the medians; each round's own ratio
    shows the spread, and the plain runs' highest over lowest this machine's noise. Each
    run's figures are under `steps` (and flat: `plain_1_server_cpu_per_1k`...)."""
    rate, seconds = settings.cpu_rate * settings.cpu_pairs, settings.cpu_seconds
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for round_ in range(1, settings.identity_rounds + 1):
        for name, env, secret in (("plain", {}, ""), ("identities", _IDENTITY_ENV, JOIN_SECRET)):
            def measure(server: Server, secret: str = secret) -> dict[str, Any]:
                return paced(server, settings, settings.cpu_pairs, rate, seconds,
                             join_secret=secret)

            def start_(env: dict[str, str] = env) -> Server:
                return start(env)

            steps.append((f"{name}_{round_}", _fresh(start_, measure)))
    swept = _sweep(steps)
    runs = swept["steps"]
    cpu = {name: [runs[f"{name}_{r}"].get("server_cpu_per_1k")
                  for r in range(1, settings.identity_rounds + 1)]
           for name in ("plain", "identities")}
    rounds = [(plain, tokens) for plain, tokens in zip(cpu["plain"], cpu["identities"],
                                                       strict=True) if plain and tokens]
    ratios = [tokens / plain for plain, tokens in rounds]
    achieved = [run["achieved_per_s"] for run in runs.values() if "achieved_per_s" in run]
    figures: dict[str, Any] = {
        "rounds": settings.identity_rounds, "pairs": settings.cpu_pairs,
        "offered_per_s": round(rate), "achieved_per_s": min(achieved, default=None),
        "seconds": seconds, "info_bytes": INFO_BYTES,
        "disorder": sum(run.get("disorder", 0) for run in runs.values())}
    if rounds:
        plain, tokens = (median(p for p, _ in rounds), median(t for _, t in rounds))
        figures.update({
            "plain_cpu_per_1k": round(plain, 4), "identities_cpu_per_1k": round(tokens, 4),
            "identities_over_plain": round(tokens / plain, 3),
            "ratio_min": round(min(ratios), 3), "ratio_max": round(max(ratios), 3),
            "plain_spread": round(max(p for p, _ in rounds) / min(p for p, _ in rounds), 3)})
    return {**figures, **swept}


def idle(server: Server, settings: Settings) -> dict[str, Any]:
    """(5) C idle sockets (in rooms of 2 where there are rooms): memory and CPU per socket."""
    clients = settings.idle_clients
    pids = server.pids
    before = {role: rss_kib(pid) for role, pid in pids.items()}
    after: dict[str, int] = {}
    idle_cpu: dict[str, float] = {}

    def measure() -> None:
        time.sleep(0.2)
        settle(list(pids.values()))
        after.update({role: rss_kib(pid) for role, pid in pids.items()})
        cpu = {role: cpu_seconds([pid]) for role, pid in pids.items()}
        time.sleep(settings.idle_seconds)
        idle_cpu.update({role: cpu_seconds([pid]) - cpu[role] for role, pid in pids.items()})

    task = _task("idle", server, settings, clients=clients, room_size=2,
                 concurrency=settings.storm_concurrency)
    measured = _run_workers(server, task, 300, 60, at_ready=measure)
    connected = sum(r["clients"] for r in measured.results)
    main = "gateway" if "gateway" in pids else "node"
    per_conn = {role: round((after[role] - before[role]) / max(connected, 1), 2)
                for role in pids}
    return {
        "clients": clients, "connected": connected, "idle_seconds": settings.idle_seconds,
        "rss_before_kib": before, "rss_after_kib": after, "kib_per_conn": per_conn,
        "main_kib_per_conn": per_conn[main],
        "all_kib_per_conn": round((sum(after.values()) - sum(before.values())) /
                                  max(connected, 1), 2),
        "idle_cpu_percent": round(100 * sum(idle_cpu.values()) / settings.idle_seconds, 2),
        "idle_cpu_percent_by_process": {role: round(100 * cpu / settings.idle_seconds, 2)
                                        for role, cpu in idle_cpu.items()},
        "lost": clients - connected,
        "error_count": sum(r["error_count"] for r in measured.results),
        "errors": [e for r in measured.results for e in r["errors"]][:10],
    }
