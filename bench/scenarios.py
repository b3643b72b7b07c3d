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
from bench.hook_receiver import WEBHOOK_SECRET, start_receiver
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
from bench.webhook_receiver import WebhookReceiver, start_webhook_receiver
from harness.processes import http_get

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
    # Join hook (Switchboard only): `joinhook_joins` clients, connected beforehand, join
    # rooms of 2, `joinhook_concurrency` joins in flight, on servers without a join hook
    # (A) and with one asking a receiver process (B), alternated `joinhook_rounds` times.
    joinhook_joins: int = 1000
    joinhook_concurrency: int = 10
    joinhook_rounds: int = 3
    # Webhooks (Switchboard only): the CPU scenario on servers without webhooks and with
    # them (a receiver process of the bench's own), alternated `webhook_rounds` times; each
    # run then again with `churn_rooms` rooms of 2 whose members join and leave,
    # `churn_rate` joins/s in all.
    webhook_rounds: int = 3
    churn_rate: float = 100.0
    churn_rooms: int = 20
    # Scale-out (bench.scaleout): Switchboard and Socket.IO with each Redis adapter on each
    # of these front process counts, at each rate (msg/s in all; the first should be the
    # CPU scenario's), `scaleout_rounds` runs of each, PeerJS at one process beside them.
    scaleout_fronts: str = "1,2,4"
    scaleout_rates: str = "5000,20000"
    scaleout_rounds: int = 1


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


def joins(server: Server, settings: Settings) -> dict[str, Any]:
    """`joinhook_joins` clients, all connected before, join rooms of 2 at go,
    `joinhook_concurrency` joins in flight: join latency from join_room sent to
    joined_room received, and the CPU each process used per join."""
    clients, concurrency = settings.joinhook_joins, max(1, settings.joinhook_concurrency)
    # No more workers than joins in flight: each worker holds its exact share of them.
    task = _task("joins", server, replace(settings, workers=min(settings.workers,
                                                                concurrency)),
                 clients=clients, room_size=2, concurrency=concurrency)
    measured = _run_workers(server, task, 120, 180)
    runs = measured.results
    figures = _join_figures(runs)
    joined = figures["joined"]
    latencies = sorted(x for r in runs for x in array("q", r["latencies"]))
    return {
        "clients": clients, "concurrency": concurrency, "workers": task.workers, **figures,
        "join_max_ms": round(latencies[-1] / 1e6, 2) if latencies else None,
        "warmup_joins": sum(r["warmup_joins"] for r in runs),
        "new_peers": sum(r["new_peers"] for r in runs),
        "expected_new_peers": sum(r["expected_new_peers"] for r in runs),
        "cpu_ms_per_join": {role: round(1000 * (user + kernel) / max(joined, 1), 3)
                            for role, (user, kernel) in measured.split_by_process.items()},
        "wall_s": round(measured.wall, 3),
        # The machine's CPU beside the servers' (the load generator's and anyone else's).
        "others_cpu_s": round(measured.machine_cpu - measured.server_cpu, 3),
        "lost": (clients - joined) + sum(r["lost"] for r in runs),
        "error_count": sum(r["error_count"] for r in runs),
        "errors": [e for r in runs for e in r["errors"]][:10],
    }


def _hook_env(url: str) -> dict[str, str]:
    return {"SWITCHBOARD_JOIN_HOOK_URL": url, "SWITCHBOARD_WEBHOOK_SECRET": WEBHOOK_SECRET}


def _joins_with_hook(start: Callable[[dict[str, str]], Server],
                     settings: Settings) -> dict[str, Any]:
    """`joins` on servers whose gateway asks a receiver process of its own
    (bench.hook_receiver) before each join; the receiver's CPU is counted beside the
    servers' (`hook-receiver`), and it must have verified one request per join."""
    receiver = start_receiver()
    try:
        server = start(_hook_env(receiver.url))
        try:
            server.pids["hook-receiver"] = receiver.pid
            result = joins(server, settings)
            stats = receiver.stats()
            _, _, metrics = http_get(server.port, "/metrics")
        finally:
            server.stop()
    finally:
        receiver.stop()
    result.update({"hook_verified": stats["verified"], "hook_refused": stats["refused"],
                   "hook_connections": stats["connections"] - 1,  # less /stats' own
                   **_hook_seconds(metrics)})
    # Every join let in was asked (and verified) once; a join the gateway gave up on (its
    # timeout: `not allowed`, a lost join) may have been verified too, late.
    admitted, tried = (result["joined"] + result["warmup_joins"],
                       result["clients"] + result["warmup_joins"])
    if not admitted <= stats["verified"] <= tried or stats["refused"]:
        result["error_count"] += 1
        result["errors"] = [f"the receiver verified {stats['verified']} requests and "
                            f"refused {stats['refused']} for {admitted} joins let in of "
                            f"{tried} (the warm-up's included)", *result["errors"]][:10]
    return result


def _hook_seconds(metrics: str) -> dict[str, Any]:
    """From the gateway's /metrics: how long its join hook calls took (its own timing,
    around the HTTP request), as a mean, and the share within 5 ms (a histogram bucket);
    the warm-up's calls included."""
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        if name in ('switchboard_join_hook_seconds_bucket{le="0.005"}',
                    "switchboard_join_hook_seconds_count", "switchboard_join_hook_seconds_sum"):
            values[name.split("{")[0].rsplit("_", 1)[1]] = float(value)
    count = values.get("count")
    if not count:
        return {}
    return {"hook_calls": int(count), "hook_call_mean_ms": round(1000 * values["sum"] / count, 2),
            "hook_calls_within_5ms": round(values.get("bucket", 0.0) / count, 3)}


def join_hook(start: Callable[[dict[str, str]], Server], settings: Settings) -> dict[str, Any]:
    """(12) What the join hook adds to a join: `joins` on servers without a join hook
    (A, "plain"), then with SWITCHBOARD_JOIN_HOOK_URL pointing at a receiver process that
    verifies each request's signature and allows at once (B, "hook"), alternated
    `joinhook_rounds` times, each run on fresh server (and receiver) processes. The p99
    added is the median of the rounds' own B - A; their lowest and highest show the
    spread, and the plain runs' highest - lowest p99 this machine's noise."""
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    for round_ in range(1, settings.joinhook_rounds + 1):
        def plain() -> dict[str, Any]:
            server = start({})
            try:
                return joins(server, settings)
            finally:
                server.stop()

        def hook() -> dict[str, Any]:
            return _joins_with_hook(start, settings)

        steps += [(f"plain_{round_}", plain), (f"hook_{round_}", hook)]
    swept = _sweep(steps)
    runs = swept["steps"]
    rounds = [(runs[f"plain_{r}"], runs[f"hook_{r}"])
              for r in range(1, settings.joinhook_rounds + 1)
              if runs[f"plain_{r}"].get("join_p99_ms") is not None
              and runs[f"hook_{r}"].get("join_p99_ms") is not None]
    figures: dict[str, Any] = {"rounds": settings.joinhook_rounds,
                               "clients": settings.joinhook_joins,
                               "concurrency": settings.joinhook_concurrency}
    if rounds:
        def middle(name: str, side: int) -> float:
            return round(float(median(pair[side][name] for pair in rounds)), 2)

        added = {q: [hook_[f"join_{q}_ms"] - plain_[f"join_{q}_ms"]
                     for plain_, hook_ in rounds] for q in ("p50", "p99")}
        plain_p99 = [plain_["join_p99_ms"] for plain_, _ in rounds]
        figures.update({
            "plain_p50_ms": middle("join_p50_ms", 0), "plain_p99_ms": middle("join_p99_ms", 0),
            "hook_p50_ms": middle("join_p50_ms", 1), "hook_p99_ms": middle("join_p99_ms", 1),
            "added_p50_ms": round(median(added["p50"]), 2),
            "added_p99_ms": round(median(added["p99"]), 2),
            "added_p99_min_ms": round(min(added["p99"]), 2),
            "added_p99_max_ms": round(max(added["p99"]), 2),
            "plain_p99_spread_ms": round(max(plain_p99) - min(plain_p99), 2),
            "plain_joins_per_s": middle("joins_per_s", 0),
            "hook_joins_per_s": middle("joins_per_s", 1)})
        for name, side in (("plain", 0), ("hook", 1)):
            by_role: dict[str, list[float]] = {}
            for pair in rounds:
                for role, ms in pair[side]["cpu_ms_per_join"].items():
                    by_role.setdefault(role, []).append(ms)
            figures[f"{name}_cpu_ms_per_join"] = {role: round(median(values), 3)
                                                   for role, values in by_role.items()}
        means = [hook_["hook_call_mean_ms"] for _, hook_ in rounds
                 if "hook_call_mean_ms" in hook_]
        figures["hook_call_mean_ms"] = round(median(means), 2) if means else None
        figures["plain_gateway_cpu_ms_per_join"] = figures["plain_cpu_ms_per_join"].get(
            "gateway")
        figures["hook_gateway_cpu_ms_per_join"] = figures["hook_cpu_ms_per_join"].get(
            "gateway")
        figures["receiver_cpu_ms_per_join"] = figures["hook_cpu_ms_per_join"].get(
            "hook-receiver")
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


# The servers' SWITCHBOARD_WEBHOOK_SECRET in the webhooks scenario ("whsec_" + base64 of
# 32 bytes).
WEBHOOKS_SECRET = "whsec_YmVuY2gtd2ViaG9va3Mtc2VjcmV0LTAxMjM0NTY3ODk="


def _until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll `check` every 50 ms until it holds (True) or `timeout` s passed (False)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _percentile(ordered: list[float], q: float) -> float | None:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else None


class _Deliveries:
    """What the receiver must have had by the end of each run on one server: a
    `peer.joined` for every join made there (the pairs' and the churn's), every room's life
    finished (all sockets closed), nothing refused, no room_seq skipped."""

    def __init__(self, receiver: WebhookReceiver) -> None:
        self.receiver = receiver
        self.joins = 0  # joins made on the server so far
        self.delivered = 0  # webhooks the receiver had by the end of the last run

    def joined(self) -> int:
        by_type: dict[str, int] = self.receiver.stats()["by_type"]
        return by_type.get("peer.joined", 0)

    def wait_joined(self, joins: int, timeout: float = 30) -> None:
        if not _until(lambda: self.joined() >= joins, timeout):
            raise WorkerFailed(f"the webhook receiver had {self.joined()} peer.joined of "
                               f"{joins} joins after {timeout:g} s")

    def check(self, joins: int, timeout: float = 30) -> tuple[dict[str, Any], list[str]]:
        """Wait for every webhook of the run; the receiver's counts, and what was wrong."""
        self.joins = joins

        def done() -> bool:
            stats = self.receiver.stats()
            return stats["by_type"].get("peer.joined", 0) >= joins and not stats["open_lives"]

        _until(done, timeout)
        stats = self.receiver.stats()
        by_type = stats["by_type"]
        wrong = []
        if by_type.get("peer.joined", 0) != joins or by_type.get("peer.left", 0) != joins:
            wrong.append(f"webhooks: {by_type.get('peer.joined', 0)} peer.joined and "
                         f"{by_type.get('peer.left', 0)} peer.left for {joins} joins")
        if stats["open_lives"] or by_type.get("room.started") != by_type.get("room.finished"):
            wrong.append(f"webhooks: {stats['open_lives']} room lives not finished")
        for key in ("refused", "malformed", "gaps"):
            if stats[key]:
                wrong.append(f"webhooks: {stats[key]} {key}")
        return stats, wrong


def _webhook_load(server: Server, settings: Settings, churn: bool,
                  deliveries: _Deliveries | None) -> dict[str, Any]:
    """The CPU scenario's load (with `churn`: and the churn rooms) on `server`. With
    webhooks on (`deliveries`), the measured part starts once the receiver had the pairs'
    joins (their webhooks are not in it); after it, how late the webhooks of events in the
    measured window came, and whether every webhook of the run arrived."""
    rate, seconds = settings.cpu_rate * settings.cpu_pairs, settings.cpu_seconds
    task = _task("paced", server, settings, pairs=settings.cpu_pairs, rate=rate,
                 seconds=seconds, churn_rate=settings.churn_rate if churn else 0.0,
                 churn_rooms=settings.churn_rooms if churn else 0)
    window: list[int] = []

    def at_ready() -> None:
        if deliveries is not None:
            deliveries.wait_joined(deliveries.joins + 2 * settings.cpu_pairs)
        # The workers start 50 ms after this (_run_workers), and measure after the warm-up.
        start = time.time() + 0.05 + settings.warmup
        window[:] = [int(1000 * start), int(1000 * (start + seconds))]

    receiver_pid = [deliveries.receiver.pid] if deliveries is not None else []
    receiver_cpu = cpu_seconds(receiver_pid)
    measured = _run_workers(server, task, 120, settings.warmup + seconds + 60,
                            at_ready=at_ready)
    result = _paced_figures(measured, rate, seconds)
    runs = measured.results
    churn_joins = sum(r["churn_joins"] for r in runs)
    joins = sorted(x / 1e6 for r in runs for x in array("q", r["churn_latencies"]))
    result.update({"churn_joins": churn_joins,
                   "churn_leaves": sum(r["churn_leaves"] for r in runs),
                   "churn_late": sum(r["churn_late"] for r in runs),
                   "churn_join_rate": round(churn_joins / (settings.warmup + seconds), 1),
                   "churn_join_p50_ms": _percentile(joins, 0.5),
                   "churn_join_p99_ms": _percentile(joins, 0.99)})
    if deliveries is None:
        return result
    stats, wrong = deliveries.check(deliveries.joins + 2 * settings.cpu_pairs + churn_joins)
    late = sorted(deliveries.receiver.latencies(*window))
    result.update({
        "webhooks": stats, "delivered_in_window": len(late),
        "webhooks_per_s": round(len(late) / seconds, 1),
        "delivery_p50_ms": _percentile(late, 0.5), "delivery_p99_ms": _percentile(late, 0.99),
        "delivery_max_ms": _percentile(late, 1.0),
        "delivery_samples": late,
        "receiver_cpu_ms_per_webhook": round(
            1000 * (cpu_seconds(receiver_pid) - receiver_cpu) / max(stats["received"] -
                                                                    deliveries.delivered, 1),
            3)})
    deliveries.delivered = stats["received"]
    result["error_count"] += len(wrong)
    result["errors"] = (wrong + result["errors"])[:10]
    return result


def _webhook_env(url: str) -> dict[str, str]:
    return {"SWITCHBOARD_WEBHOOK_URL": url, "SWITCHBOARD_WEBHOOK_SECRET": WEBHOOKS_SECRET}


def _webhook_variant(start: Callable[[dict[str, str]], Server], settings: Settings, on: bool,
                     samples: list[float]) -> dict[str, Any]:
    """One round's runs of one variant, on fresh servers (with webhooks: and a fresh
    receiver): the CPU scenario's load alone ("plain"), then with churn ("churn"). The
    churn run's delivery latencies are added to `samples`."""
    receiver = start_webhook_receiver(WEBHOOKS_SECRET) if on else None
    try:
        server = start(_webhook_env(receiver.url) if receiver is not None else {})
        try:
            deliveries = _Deliveries(receiver) if receiver is not None else None
            plain = _webhook_load(server, settings, False, deliveries)
            churn = _webhook_load(server, settings, True, deliveries)
        finally:
            server.stop()
    finally:
        if receiver is not None:
            receiver.stop()
    samples += churn.pop("delivery_samples", [])
    plain.pop("delivery_samples", None)
    flat = {f"{name}_{key}": value for name, run in (("plain", plain), ("churn", churn))
            for key, value in run.items() if isinstance(value, int | float)}
    return {**flat, "plain": plain, "churn": churn,
            "lost": plain["lost"] + churn["lost"],
            "disorder": plain["disorder"] + churn["disorder"],
            "error_count": plain["error_count"] + churn["error_count"],
            "errors": (plain["errors"] + churn["errors"])[:10]}


def webhooks(start: Callable[[dict[str, str]], Server], settings: Settings) -> dict[str, Any]:
    """(13) What webhooks cost and how late they come. Each round runs on servers without
    webhooks ("off") and on servers with SWITCHBOARD_WEBHOOK_URL pointing at a receiver
    process of our own ("on", bench.webhook_receiver), in turn (off/on, then on/off...),
    each on fresh processes: scenario 4's load alone ("plain": its pairs join before the
    measured part, whose messages make no webhook), then with `churn_rooms` rooms of 2
    whose members join and leave, `churn_rate` joins/s ("churn": every join and leave a
    webhook). CPU per message on / off is the ratio of the plain runs' medians (each
    round's own ratio shows the spread); the delivery latency (the event's `at` to the
    receiver reading it) is taken over every "on" churn run's events in its measured
    window, pooled."""
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    samples: list[float] = []
    for round_ in range(1, settings.webhook_rounds + 1):
        order = ("off", "on") if round_ % 2 else ("on", "off")
        for name in order:
            def step(on: bool = name == "on") -> dict[str, Any]:
                return _webhook_variant(start, settings, on, samples)

            steps.append((f"{name}_{round_}", step))
    swept = _sweep(steps)
    runs = swept["steps"]
    figures: dict[str, Any] = {
        "rounds": settings.webhook_rounds, "pairs": settings.cpu_pairs,
        "offered_per_s": round(settings.cpu_rate * settings.cpu_pairs),
        "seconds": settings.cpu_seconds, "churn_rate": settings.churn_rate,
        "churn_rooms": settings.churn_rooms,
        "disorder": sum(run.get("disorder", 0) for run in runs.values())}
    achieved = [run[load]["achieved_per_s"] for run in runs.values() if "plain" in run
                for load in ("plain", "churn")]
    figures["achieved_per_s"] = min(achieved, default=None)
    for load in ("plain", "churn"):
        rounds = [(runs[f"off_{r}"][load]["server_cpu_per_1k"],
                   runs[f"on_{r}"][load]["server_cpu_per_1k"])
                  for r in range(1, settings.webhook_rounds + 1)
                  if load in runs[f"off_{r}"] and load in runs[f"on_{r}"]]
        if not rounds:
            continue
        off, on = median(o for o, _ in rounds), median(o for _, o in rounds)
        ratios = [b / a for a, b in rounds]
        prefix = "" if load == "plain" else "churn_"
        figures.update({
            f"{prefix}off_cpu_per_1k": round(off, 4), f"{prefix}on_cpu_per_1k": round(on, 4),
            f"{prefix}on_over_off": round(on / off, 3),
            f"{prefix}ratio_min": round(min(ratios), 3),
            f"{prefix}ratio_max": round(max(ratios), 3),
            f"{prefix}off_spread": round(max(o for o, _ in rounds) /
                                         min(o for o, _ in rounds), 3)})
    ons = [run["churn"] for label, run in runs.items() if label.startswith("on_")
           and "churn" in run]
    offs = [run["churn"] for label, run in runs.items() if label.startswith("off_")
            and "churn" in run]
    if ons:
        ordered = sorted(samples)
        p99s = [run["delivery_p99_ms"] for run in ons if run["delivery_p99_ms"] is not None]
        figures.update({
            "delivery_p50_ms": _percentile(ordered, 0.5),
            "delivery_p99_ms": _percentile(ordered, 0.99),
            "delivery_max_ms": _percentile(ordered, 1.0),
            "delivery_samples": len(ordered),
            "delivery_p99_min_ms": min(p99s, default=None),
            "delivery_p99_max_ms": max(p99s, default=None),
            "webhooks_per_s": median(run["webhooks_per_s"] for run in ons),
            "churn_join_rate": median(run["churn_join_rate"] for run in ons),
            "verified": sum(run["webhooks"]["verified"] for run in ons),
            "duplicates": sum(run["webhooks"]["duplicates"] for run in ons),
            "receiver_cpu_ms_per_webhook": median(run["receiver_cpu_ms_per_webhook"]
                                                  for run in ons),
            "on_churn_join_p99_ms": median(run["churn_join_p99_ms"] for run in ons)})
    if offs:
        figures["off_churn_join_p99_ms"] = median(run["churn_join_p99_ms"] for run in offs)
    return {**figures, **swept}
