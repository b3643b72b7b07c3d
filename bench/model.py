"""A capacity plan for a million peers from the benchmark's figures (docs/scaling.md).

`plan(figures, workload)` turns what one gateway, one relay and one Redis were measured to
cost (bench/RESULTS.md; `SOURCES` names the scenario behind each default) into how many of
each a workload needs, and which resource runs out first. Pure arithmetic: no I/O, no
clock. `python -m bench.model` prints the plans for mesh rooms of 2, 5 and 10 and star
rooms of 1,000; docs/scaling.md writes the formulae out.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec

Kind = Literal["gateway", "relay", "redis"]
Resource = Literal["cpu", "memory"]
Topology = Literal["mesh", "star"]


class PerProcess(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One figure for each kind of process."""

    gateway: float
    relay: float
    redis: float

    def of(self, kind: Kind) -> float:
        return float(getattr(self, kind))


ONES = PerProcess(gateway=1.0, relay=1.0, redis=1.0)


# Unknown fields are refused (unlike the structs that cross Redis): a misspelt figure in a
# --figures file would otherwise leave its default in place without a word.
class Figures(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the benchmark measured; the defaults and their sources are in SOURCES."""

    us_per_msg: PerProcess = PerProcess(gateway=22.1, relay=8.8, redis=10.2)
    us_per_join: PerProcess = PerProcess(gateway=270.0, relay=60.0, redis=70.0)
    resumable_overhead: PerProcess = PerProcess(gateway=1.0, relay=1.126, redis=1.216)
    split_overhead: PerProcess = ONES
    cluster_overhead: PerProcess = ONES
    gateway_idle_us_per_socket_s: float = 1.65
    gateway_kib_per_socket: float = 3.5
    relay_kib_per_member: float = 0.54
    redis_kib_per_member: float = 0.70
    redis_kib_per_kept_frame: float = 0.337
    redis_kib_per_kept_sdp: float = 5.07
    base_mib: float = 44.0
    star_frames_per_join: float = 2.0
    messages_per_read: float = 106.0
    messages_per_commit: float = 3.3


SOURCES = {
    "us_per_msg": "CPU us per relayed message, user+kernel: scenario 2 (latency, 100 pairs "
    "paced at 29,602 msg/s), full run at 335aaff (RESULTS.md 'Latest full run', by process: "
    "gateway 13.8+8.3, relay 8.1+0.7, redis 8.5+1.7); bench --only throughput,latency",
    "us_per_join": "CPU us per connect + join: scenario 3 (storm, 2,000 joins into rooms "
    "of 4), full run at 58ce46e, the same server code (RESULTS.md third session, 'CPU "
    "seconds by process', storm: 0.54 / 0.12 / 0.14 s); bench --only storm",
    "resumable_overhead": "CPU per message, resumable over plain peers: scenario 7 "
    "(resume), fifth session run 1 (relay 32.1 / 28.5 us, Redis 32.7 / 26.9, gateway "
    "unchanged); bench --only resume",
    "split_overhead": "CPU per message with several gateways and relays over with one: "
    "not measured yet (1.0; docs/scaling.md, TODO)",
    "cluster_overhead": "CPU per message on Redis Cluster over a single Redis: not "
    "measured yet (1.0; docs/scaling.md, TODO)",
    "gateway_idle_us_per_socket_s": "CPU us per second per idle socket: scenario 5 "
    "(idle, 10,000 sockets), 335aaff: 1.65% of a core for all processes, all charged to "
    "the gateway (an upper bound); bench --only idle",
    "gateway_kib_per_socket": "gateway RSS per idle socket: scenario 5 (idle), 335aaff: "
    "3.5 KB",
    "relay_kib_per_member": "relay RSS per member: scenario 5 (idle, rooms of 2), baseline "
    "2026-11-21 by process: 0.54 KiB (335aaff: relay + Redis 4.7 - 3.5 = 1.2 KB, the same)",
    "redis_kib_per_member": "Redis RSS per member, its room and channel included: "
    "scenario 5 (idle, rooms of 2), baseline 2026-11-21 by process: 0.70 KiB",
    "redis_kib_per_kept_frame": "Redis memory per kept 330-byte frame (the bench's "
    "candidate with sender_id and frame_seq): no scenario; RPUSH into 2,000 lists on "
    "redis-server 7.0.15, INFO used_memory before and after: 345 B (docs/scaling.md)",
    "redis_kib_per_kept_sdp": "Redis memory per kept offer or answer, taken as 4,096 "
    "bytes (a browser's audio+video SDP is 3-6 KB; assumed): measured as above, 5,189 B",
    "base_mib": "RSS of a gateway before any socket: baseline 2026-11-21, scenario 5 "
    "(44 MB, 295 MB with 10,000 sockets); a relay's taken as the same",
    "star_frames_per_join": "scenario 6 (rooms), fifth session: 2.00 frames per join "
    "into a star room of 1,000; bench --only rooms (mesh rooms: 1 + (n - 1) / 2, as the "
    "measured 50.59 in rooms of 100)",
    "messages_per_read": "messages per XREADGROUP: RESULTS.md fourth session, 'Where Redis "
    "spends its time' at 28,000 msg/s (1.75 us per message at 185 us per call)",
    "messages_per_commit": "messages per commit script: the same (0.30 calls per message)",
}

# Commands the commit script runs besides its PUBLISHes (relay/store.py, COMMIT): GET
# lease, GET checkpoint, XRANGE (gap check), SET checkpoint, XACK, XTRIM.
COMMIT_COMMANDS = 6
# A resumable peer's frame adds an RPUSH, and at most one 'T' op (LTRIM, PEXPIRE, HSET).
RESUMABLE_COMMANDS = 4


class Workload(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What the peers do, and the deployment planned for them."""

    peers: int = 1_000_000
    topology: Topology = "mesh"
    room_size: int = 5
    # Each peer joins a room and leaves it once per call: that is the churn.
    call_s: float = 600.0
    # ICE candidates trickled over one link, both ends together, besides offer and answer.
    candidates_per_link: int = 16
    # send_to_peer per peer per second once the links are up (renegotiation, app messages).
    rate_per_peer: float = 0.05
    # The project's browser library asks for resume unless told not to.
    resumable_share: float = 1.0
    keep_frames: int = 1000  # SWITCHBOARD_RESUME_BUFFER_FRAMES
    shards: int = 64  # SWITCHBOARD_SHARDS
    # Headroom for bursts, GC and failover: the share of a core and of its memory limit
    # that a process is planned to use.
    cpu_budget: float = 0.7
    memory_budget: float = 0.7
    gateway_mib: float = 512.0  # k8s/gateway.yaml's memory limit
    relay_mib: float = 512.0  # k8s/relay.yaml's
    redis_mib: float = 4096.0  # per Redis master: a planning choice
    replicas: int = 1  # per master, for failover


class Fleet(msgspec.Struct, frozen=True):
    """How many processes of one kind, and what bounds the number."""

    kind: Kind
    # None: one shard alone is more than a process can carry (min_shards says how many).
    count: int | None
    needed: int  # with a perfect spread; `count` is higher when shards spread unevenly
    cores: float
    memory_mib: float
    cpu_need: float  # processes' worth of CPU
    memory_need: float  # and of memory
    bound_by: Resource

    def needs(self) -> list[tuple[Resource, float]]:
        return [("cpu", self.cpu_need), ("memory", self.memory_need)]


class Plan(msgspec.Struct, frozen=True):
    """The fleets one workload needs, the rates behind them, and its first limit."""

    workload: Workload
    msgs_per_peer_s: float
    msgs_per_s: float
    joins_per_s: float  # and as many leaves
    kept_frames_per_peer: float
    gateway: Fleet
    relay: Fleet
    redis: Fleet
    redis_nodes: int | None
    min_shards: int
    redis_commands_per_msg: float
    single_redis_peers: int
    first_limit: tuple[Kind, Resource]


def plan(figures: Figures, workload: Workload) -> Plan:
    """The processes `workload` needs, by the figures (formulae: docs/scaling.md)."""
    f, w = figures, workload
    roles = _roles(w)

    def mean(value: Callable[[int], float]) -> float:
        """The mean over a room's members of `value(links the member has)`."""
        return sum(count * value(links) for count, links in roles) / w.room_size

    per_peer = mean(lambda links: _setup_msgs(links, w)) / w.call_s + w.rate_per_peer
    msgs, joins = w.peers * per_peer, w.peers / w.call_s
    kept_frames = w.resumable_share * mean(lambda links: _kept(f, w, links)[0])
    kept_kib = w.resumable_share * mean(lambda links: _kept(f, w, links)[1])

    def cores(kind: Kind) -> float:
        factor = (f.split_overhead.of(kind) * f.cluster_overhead.of(kind) *
                  (1 + w.resumable_share * (f.resumable_overhead.of(kind) - 1)))
        # A leave (and its socket's close) is costed as a join: no scenario measures it.
        work = msgs * f.us_per_msg.of(kind) + 2 * joins * f.us_per_join.of(kind)
        return factor * work / 1e6

    usable = w.memory_budget
    gateway = _fleet("gateway", cores("gateway") + w.peers * f.gateway_idle_us_per_socket_s
                     / 1e6, w.peers * f.gateway_kib_per_socket / 1024,
                     w.gateway_mib * usable - f.base_mib, w, shards=None)
    relay = _fleet("relay", cores("relay"), w.peers * f.relay_kib_per_member / 1024,
                   w.relay_mib * usable - f.base_mib, w, shards=w.shards)
    redis = _fleet("redis", cores("redis"), w.peers * (f.redis_kib_per_member + kept_kib)
                   / 1024, w.redis_mib * usable, w, shards=w.shards)
    needs: list[tuple[Kind, Resource, float]] = [
        (fleet.kind, resource, need) for fleet in (gateway, relay, redis)
        for resource, need in fleet.needs()]
    kind, resource, _ = max(needs, key=lambda item: item[2])
    redis_need = max(redis.cpu_need, redis.memory_need)
    return Plan(
        workload=w, msgs_per_peer_s=per_peer, msgs_per_s=msgs, joins_per_s=joins,
        kept_frames_per_peer=kept_frames, gateway=gateway, relay=relay, redis=redis,
        redis_nodes=None if redis.count is None else redis.count * (1 + w.replicas),
        min_shards=_ceil(max(relay.cpu_need, relay.memory_need, redis_need)),
        redis_commands_per_msg=_commands_per_msg(f, w.resumable_share),
        single_redis_peers=math.floor(w.peers / redis_need),
        first_limit=(kind, resource))


def _roles(w: Workload) -> list[tuple[int, int]]:
    """(members, links each) of one room: in a mesh everyone links to everyone, in a star
    the host links to each client and a client to the host alone (docs/protocol.md)."""
    n = w.room_size
    if w.topology == "mesh":
        return [(n, n - 1)]
    return [(1, n - 1), (n - 1, 1)]


def _setup_msgs(links: int, w: Workload) -> float:
    """send_to_peer a member sends (and receives) per call to set its links up: each link
    carries an offer, an answer and its candidates, half of them from each end."""
    return links * (2 + w.candidates_per_link) / 2


def _kept(f: Figures, w: Workload, links: int) -> tuple[float, float]:
    """Frames a resumable member's list holds at the end of a call, and their KiB: every
    frame it received during the call (relay/rooms.py keeps them until it leaves), up to the
    bound. One frame per link is an offer or an answer, bigger than the rest."""
    n = w.room_size
    # joined_room, new_peer and peer_left: in a mesh the others who are there hear of each
    # join and leave, (n - 1) / 2 of them on average; in a star only the host does.
    joins_and_leaves = n if w.topology == "mesh" else f.star_frames_per_join + 1
    frames = _setup_msgs(links, w) + w.rate_per_peer * w.call_s + joins_and_leaves
    kib = links * f.redis_kib_per_kept_sdp + (frames - links) * f.redis_kib_per_kept_frame
    share = min(1.0, w.keep_frames / frames)
    return frames * share, kib * share


def _commands_per_msg(f: Figures, resumable_share: float) -> float:
    """Redis commands per relayed message, those the commit script runs included: the
    gateway's XADD, a share of an XREADGROUP, a share of a commit, one PUBLISH."""
    commit = (1 + COMMIT_COMMANDS) / f.messages_per_commit
    return 1 + 1 / f.messages_per_read + commit + 1 + resumable_share * RESUMABLE_COMMANDS


def _fleet(kind: Kind, cores: float, memory_mib: float, usable_mib: float, w: Workload,
           shards: int | None) -> Fleet:
    cpu_need, memory_need = cores / w.cpu_budget, memory_mib / usable_mib
    needed = _ceil(max(cpu_need, memory_need))
    count: int | None = needed
    if shards is not None:
        count = _spread(max(cpu_need, memory_need), shards)
    return Fleet(kind=kind, count=count, needed=needed, cores=cores, memory_mib=memory_mib,
                 cpu_need=cpu_need, memory_need=memory_need,
                 bound_by="cpu" if cpu_need >= memory_need else "memory")


def _spread(need: float, shards: int) -> int | None:
    """The fewest processes that carry `need` (in processes' worth) when it comes in
    `shards` equal parts, whole parts to a process: the busiest holds ceil(shards / n)."""
    if need > shards * (1 + 1e-9):
        return None
    count = _ceil(need)
    while math.ceil(shards / count) * need / shards > 1 + 1e-9:
        count += 1
    return count


def _ceil(x: float) -> int:
    # A need of 3.0000000000000004 processes is 3: float sums must not add a process.
    return max(1, math.ceil(x - 1e-9))


# The command line.

ROOMS = "mesh:2,mesh:5,mesh:10,star:1000"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.model",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--figures", type=Path,
                        help="JSON object of Figures fields to use instead of the defaults")
    parser.add_argument("--rooms", default=ROOMS,
                        help=f"comma-separated topology:size (default {ROOMS})")
    parser.add_argument("--sources", action="store_true",
                        help="print each figure with its value and source, and exit")
    parser.add_argument("--json", action="store_true", help="print the plans as JSON")
    defaults = Workload()
    for field in msgspec.structs.fields(Workload):
        if field.name in ("topology", "room_size"):
            continue
        default = getattr(defaults, field.name)
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(default),
                            default=default, help=f"(default {default})")
    return parser


def _workloads(args: argparse.Namespace) -> list[Workload]:
    base = {field.name: getattr(args, field.name) for field in msgspec.structs.fields(Workload)
            if field.name not in ("topology", "room_size")}
    workloads = []
    for room in args.rooms.split(","):
        topology, _, size = room.partition(":")
        workloads.append(msgspec.convert({**base, "topology": topology,
                                          "room_size": int(size)}, Workload))
    return workloads


def _table(plans: list[Plan]) -> str:
    def count(fleet: Fleet) -> str:
        return "more shards" if fleet.count is None else f"{fleet.count:,}"

    def need(fleet: Fleet) -> str:
        return f"{fleet.cpu_need:.1f} / {fleet.memory_need:.1f}"

    rows: list[tuple[str, Callable[[Plan], str]]] = [
        ("", lambda p: f"{p.workload.topology} {p.workload.room_size:,}"),
        ("msg/s per peer", lambda p: f"{p.msgs_per_peer_s:.3f}"),
        ("msg/s relayed", lambda p: f"{p.msgs_per_s:,.0f}"),
        ("joins/s (and as many leaves)", lambda p: f"{p.joins_per_s:,.0f}"),
        ("gateways", lambda p: count(p.gateway)),
        ("  processes' worth: cpu / memory", lambda p: need(p.gateway)),
        ("relays", lambda p: count(p.relay)),
        ("  processes' worth: cpu / memory", lambda p: need(p.relay)),
        ("Redis masters", lambda p: count(p.redis)),
        ("  processes' worth: cpu / memory", lambda p: need(p.redis)),
        ("  kept frames per peer", lambda p: f"{p.kept_frames_per_peer:.0f}"),
        ("Redis nodes, replicas included",
         lambda p: "-" if p.redis_nodes is None else f"{p.redis_nodes:,}"),
        ("Redis commands/s per master", lambda p: "-" if p.redis.count is None else
         f"{p.msgs_per_s * p.redis_commands_per_msg / p.redis.count:,.0f}"),
        ("shards: at least", lambda p: f"{p.min_shards:,}"),
        ("a single Redis carries (peers)", lambda p: f"{p.single_redis_peers:,}"),
        ("first limit", lambda p: " ".join(p.first_limit)),
    ]
    cells = [[label, *(cell(p) for p in plans)] for label, cell in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = []
    for label, *values in cells:
        right = [value.rjust(width) for value, width in zip(values, widths[1:], strict=True)]
        lines.append("  ".join([label.ljust(widths[0]), *right]).rstrip())
    return "\n".join(lines)


def _heading(w: Workload) -> str:
    return (f"{w.peers:,} peers; after setup {w.rate_per_peer:g} msg/s each; "
            f"{w.candidates_per_link} ICE candidates per link; calls of {w.call_s:g} s; "
            f"{w.resumable_share:.0%} resumable; {w.shards} shards\n"
            f"a process plans for {w.cpu_budget:g} of a core and {w.memory_budget:g} of its "
            f"memory limit (gateway {w.gateway_mib:g} MiB, relay {w.relay_mib:g}, Redis "
            f"{w.redis_mib:g})")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    figures = Figures()
    if args.figures is not None:
        figures = msgspec.json.decode(args.figures.read_bytes(), type=Figures)
    if args.sources:
        for name in SOURCES:
            value = getattr(figures, name)
            source = SOURCES[name] if value == getattr(Figures(), name) else args.figures
            print(f"{name} = {msgspec.to_builtins(value)}\n    {source}")
        return 0
    workloads = _workloads(args)
    plans = [plan(figures, w) for w in workloads]
    if args.json:
        print(msgspec.json.encode(plans).decode())
        return 0
    print(_heading(workloads[0]))
    print()
    print(_table(plans))
    return 0


if __name__ == "__main__":
    sys.exit(main())
