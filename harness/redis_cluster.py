"""A private Redis Cluster for tests: redis-server processes on free loopback ports (three
masters with a replica each by default), joined with `redis-cli --cluster create`, and the
faults tests make in it: a master killed and failed over, a node started again, slots moved.

Every process is started with harness.processes, remembered by pid and stopped by that pid.
Nothing is written outside `workdir`: each node's cluster-config-file lives there, so that
a node started again on its port comes back with its node id and rejoins as a replica.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from redis.crc import key_slot

from harness.processes import RedisServer, _launch_redis, free_port, wait_until

SLOTS = 16384
BUS_OFFSET = 10000  # a node's cluster bus listens on its port + 10000
RESERVED_PORTS = frozenset({6379, 6379 + BUS_OFFSET})  # a developer's own Redis
UNHEALTHY_FLAGS = frozenset({"fail", "fail?", "handshake", "noaddr"})

T = TypeVar("T")


class RedisCliError(subprocess.CalledProcessError):
    """redis-cli got an error reply (`-e`): MOVED, a refused CLUSTER SETSLOT, ..."""

    def __str__(self) -> str:
        reply = (self.stdout + self.stderr).decode().strip()
        return f"{super().__str__()} Reply: {reply!r}"


@dataclass
class ClusterNode(RedisServer):
    """One redis-server of the cluster; its `cli` fails on an error reply, so that a
    refused command fails where it was sent."""

    def cli(self, *args: str) -> str:
        argv = ["redis-cli", "-e", "-p", str(self.port), *args]
        out = subprocess.run(argv, capture_output=True, timeout=10)
        if out.returncode != 0:
            raise RedisCliError(out.returncode, argv, out.stdout, out.stderr)
        return out.stdout.decode()


@dataclass(frozen=True)
class NodeEntry:
    """One line of CLUSTER NODES: how one node sees another (or itself)."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str | None
    slots: tuple[tuple[int, int], ...]  # inclusive ranges; open slots ("[...]") left out

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def healthy(self) -> bool:
        return not self.flags & UNHEALTHY_FLAGS

    def owns(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.slots)

    def slot_count(self) -> int:
        return sum(high - low + 1 for low, high in self.slots)

    def agreed(self) -> tuple[object, ...]:
        """What every node must see alike (not `myself`, pings or link states)."""
        return (self.id, self.port, self.flags - {"myself"}, self.master_id, self.slots)


def parse_cluster_nodes(text: str) -> list[NodeEntry]:
    """CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent>
    <pong-recv> <config-epoch> <link-state> <slot> ...`, one node a line."""
    return [_parse_entry(line.split()) for line in text.splitlines() if line.strip()]


def _parse_entry(fields: list[str]) -> NodeEntry:
    port = int(fields[1].split("@")[0].rsplit(":", 1)[1] or 0)
    slots = tuple(_slot_range(token) for token in fields[8:] if not token.startswith("["))
    master = None if fields[3] == "-" else fields[3]
    return NodeEntry(fields[0], port, frozenset(fields[2].split(",")), master, slots)


def _slot_range(token: str) -> tuple[int, int]:
    low, _, high = token.partition("-")
    return int(low), int(high or low)


@dataclass
class RedisCluster:
    """A running cluster. Roles change (failover, restarts): `masters()`, `master_of_slot`
    and `replica_of` read them from CLUSTER NODES each time."""

    workdir: Path
    nodes: list[ClusterNode]
    replicas_per_master: int
    node_timeout_ms: int
    node_ids: dict[int, str] = field(default_factory=dict)  # by port; kept over restarts
    _killed: dict[int, tuple[float, NodeEntry, list[int]]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The first node, a master when the cluster was created (a cluster has db 0 only);
        a cluster client learns every other node from it."""
        return f"redis://127.0.0.1:{self.nodes[0].port}/0"

    def node(self, port: int) -> ClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def cli(self, port: int, *args: str) -> str:
        """redis-cli on the node at `port` (no redirections followed); raises RedisCliError
        on an error reply."""
        return self.node(port).cli(*args)

    def key_slot(self, key: str) -> int:
        return key_slot(key.encode())

    def masters(self) -> list[int]:
        """The ports of the masters now (not failed), as a live node sees them."""
        return sorted(e.port for e in self._view() if e.is_master and "fail" not in e.flags)

    def master_of_slot(self, slot: int) -> int:
        return self.masters_of_slots([slot])[slot]

    def masters_of_slots(self, slots: Iterable[int]) -> dict[int, int]:
        """`master_of_slot` for many slots at once, from one look at CLUSTER NODES."""
        view = self._view()
        owners: dict[int, int] = {}
        for slot in slots:
            port = _owner(view, slot)
            if port is None:
                raise LookupError(f"no master serves slot {slot}")
            owners[slot] = port
        return owners

    def slot_ranges(self, port: int) -> tuple[tuple[int, int], ...]:
        """The slots the master at `port` serves, as inclusive ranges, lowest first (the
        order in which `redis-cli --cluster reshard` takes them from a source)."""
        return tuple(sorted(next(e for e in self._view() if e.port == port).slots))

    def replica_of(self, master_port: int) -> int:
        """The port of a healthy replica of the master at `master_port`."""
        master_id = self.node_ids[master_port]
        ports = sorted(e.port for e in self._view() if e.master_id == master_id and e.healthy)
        if not ports:
            raise LookupError(f"no replica of the master on port {master_port}")
        return ports[0]

    def slot_count(self, port: int) -> int:
        """How many slots the node at `port` serves."""
        return next(e for e in self._view() if e.port == port).slot_count()

    def kill_master(self, port: int) -> float:
        """SIGKILL the master at `port` (the process started here), remembering what it
        served and its replicas for `wait_failover`; return when the signal was sent
        (monotonic seconds)."""
        view = self._view()
        entry = next(e for e in view if e.port == port)
        if not entry.is_master:
            raise ValueError(f"the node on port {port} is not a master")
        replicas = [e.port for e in view if e.master_id == entry.id]
        process = self.node(port).process
        process.signal(signal.SIGKILL)
        killed_at = time.monotonic()
        self._killed[port] = (killed_at, entry, replicas)
        process.wait(5)
        return killed_at

    def wait_failover(self, old_master_port: int, timeout: float = 15.0) -> tuple[int, float]:
        """Wait until one of the killed master's replicas is master of its slots and the
        survivors agree and say cluster_state:ok; return that replica's port and the
        seconds since the kill."""
        killed_at, old, replicas = self._killed[old_master_port]
        new_port = self._until(lambda: self._promoted(old, replicas), timeout,
                               f"a replica of {old_master_port} to take over")
        return new_port, time.monotonic() - killed_at

    def restart_node(self, port: int, timeout: float = 20.0) -> ClusterNode:
        """Start the (stopped) node at `port` again with its config file; it rejoins (a
        former master as a replica of the one that took over), and is returned once every
        node sees it healthy and, as a replica, it is in sync with its master."""
        if self.node(port).process.alive():
            raise ValueError(f"the node on port {port} is still running")
        node = _launch_redis(ClusterNode, self.workdir, port,
                             _node_options(self.workdir, port, self.node_timeout_ms))
        self.nodes = [node if old.port == port else old for old in self.nodes]
        self._until(lambda: self._rejoined(port), timeout, f"node {port} to rejoin")
        return node

    def move_slot(self, slot: int, to_port: int, timeout: float = 10.0) -> None:
        """Move exactly `slot`, with its keys, to the master at `to_port` (the procedure of
        CLUSTER SETSLOT's documentation), and wait until every node agrees on it.
        Keys are read line by line from redis-cli: none may contain a newline."""
        source = self.master_of_slot(slot)
        if source == to_port:
            return
        at, deadline = str(slot), time.monotonic() + timeout
        self.cli(to_port, "cluster", "setslot", at, "importing", self.node_ids[source])
        self.cli(source, "cluster", "setslot", at, "migrating", self.node_ids[to_port])
        self._migrate_keys(slot, source, to_port, deadline)
        others = [port for port in self.masters() if port not in (source, to_port)]
        for port in [to_port, source, *others]:  # the target first: it then owns the slot
            self.cli(port, "cluster", "setslot", at, "node", self.node_ids[to_port])
        self._until(lambda: self._agreed_owner(slot) == to_port,
                    max(deadline - time.monotonic(), 1.0),
                    f"every node to see slot {slot} on {to_port}")

    def reshard(self, from_port: int, to_port: int, slots: int, timeout: float = 60.0) -> None:
        """Move `slots` slots with `redis-cli --cluster reshard`, and wait until
        `redis-cli --cluster check` finds every slot covered and none open."""
        subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{from_port}",
                        "--cluster-from", self.node_ids[from_port],
                        "--cluster-to", self.node_ids[to_port],
                        "--cluster-slots", str(slots), "--cluster-yes"],
                       capture_output=True, check=True, timeout=timeout)
        self._until(lambda: self._check_clean(to_port), timeout, "redis-cli --cluster check")

    def wait_healthy(self, timeout: float = 20.0) -> None:
        """Wait until every node runs, says cluster_state:ok and sees the same slot map
        covering all slots, and every master has its replicas in sync."""
        self._until(self._healthy, timeout, "the Redis Cluster to be healthy")

    def stop(self) -> None:
        """SIGTERM every node at once, then wait for each (SIGKILL past 10 s)."""
        for node in self.nodes:
            node.process.signal(signal.SIGTERM)
        for node in self.nodes:
            node.process.stop()

    # What the waits poll.

    def _until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """`wait_until` for a check that asks the nodes, where a node that does not answer
        (yet) means "not yet"; returns the check's first true answer."""
        answer: list[T | None] = [None]

        def answered() -> bool:
            try:
                answer[0] = check()
            except subprocess.SubprocessError:
                return False
            return bool(answer[0])

        wait_until(answered, timeout, what)
        assert answer[0] is not None
        return answer[0]

    def _view(self) -> list[NodeEntry]:
        """CLUSTER NODES as the first running node that answers sees it."""
        for node in self.nodes:
            if node.process.alive():
                try:
                    return parse_cluster_nodes(node.cli("cluster", "nodes"))
                except subprocess.SubprocessError:
                    continue
        raise RuntimeError("no node of the Redis Cluster answers")

    def _views(self) -> dict[int, list[NodeEntry]] | None:
        """Every running node's CLUSTER NODES, when each also says cluster_state:ok."""
        views = {}
        for node in self.nodes:
            if node.process.alive():
                if "cluster_state:ok" not in node.cli("cluster", "info"):
                    return None
                views[node.port] = parse_cluster_nodes(node.cli("cluster", "nodes"))
        return views

    def _healthy(self) -> bool:
        views = self._views()
        if views is None or len(views) != len(self.nodes):
            return False
        seen = {frozenset(entry.agreed() for entry in view) for view in views.values()}
        view = next(iter(views.values()))
        return len(seen) == 1 and self._well_formed(view) and all(
            self._replicas_online(entry.port) for entry in view if entry.is_master)

    def _well_formed(self, view: list[NodeEntry]) -> bool:
        """Every node healthy, all slots served, each master with its replicas."""
        masters = {entry.id for entry in view if entry.is_master}
        replicas = [entry.master_id for entry in view if not entry.is_master]
        return (len(view) == len(self.nodes) and all(entry.healthy for entry in view)
                and sum(entry.slot_count() for entry in view) == SLOTS
                and set(replicas) <= masters
                and all(replicas.count(master) == self.replicas_per_master
                        for master in masters))

    def _replicas_online(self, master_port: int) -> bool:
        info = self.cli(master_port, "info", "replication")
        return f"connected_slaves:{self.replicas_per_master}\r\n" in info and (
            info.count("state=online") == self.replicas_per_master)

    def _promoted(self, old: NodeEntry, replicas: list[int]) -> int | None:
        """The replica now serving all of `old`'s slots, if every survivor says so."""
        views = self._views()
        if views is None:
            return None
        owners = {_owner(view, low) for view in views.values() for low, _ in old.slots}
        owner = owners.pop() if len(owners) == 1 else None
        return owner if owner in replicas else None

    def _rejoined(self, port: int) -> bool:
        views = self._views()
        if views is None or port not in views:
            return False
        mine = next(entry for entry in views[port] if entry.port == port)
        if any(entry.agreed() != mine.agreed() or not entry.healthy
               for view in views.values() for entry in view if entry.port == port):
            return False
        if mine.is_master:
            return True
        info = self.cli(port, "info", "replication")
        return "master_link_status:up" in info and "master_sync_in_progress:0" in info

    def _agreed_owner(self, slot: int) -> int | None:
        views = self._views()
        if views is None:
            return None
        owners = {_owner(view, slot) for view in views.values()}
        return owners.pop() if len(owners) == 1 else None

    def _migrate_keys(self, slot: int, source: int, target: int, deadline: float) -> None:
        """MIGRATE the slot's keys from `source` to `target`, a batch at a time."""
        while time.monotonic() < deadline:
            reply = self.cli(source, "cluster", "getkeysinslot", str(slot), "100")
            keys = [key for key in reply.splitlines() if key]  # none: one empty line
            if not keys:
                return
            self.cli(source, "migrate", "127.0.0.1", str(target), "", "0", "5000",
                     "keys", *keys)
        raise TimeoutError(f"slot {slot}'s keys still on {source}")

    def _check_clean(self, port: int) -> bool:
        out = subprocess.run(["redis-cli", "--cluster", "check", f"127.0.0.1:{port}"],
                             capture_output=True, timeout=10).stdout.decode()
        return (f"[OK] All {SLOTS} slots covered." in out and "[WARNING]" not in out
                and "[OK] All nodes agree about slots configuration." in out)


def _owner(view: list[NodeEntry], slot: int) -> int | None:
    """The port of the master serving `slot` in `view` (a failed one serves nothing)."""
    for entry in view:
        if entry.is_master and "fail" not in entry.flags and entry.owns(slot):
            return entry.port
    return None


def start_redis_cluster(workdir: Path, masters: int = 3, replicas_per_master: int = 1,
                        node_timeout_ms: int = 2000) -> RedisCluster:
    """A new cluster of `masters` masters with `replicas_per_master` replicas each, on free
    loopback ports, returned once healthy (see `RedisCluster.wait_healthy`)."""
    ports = _cluster_ports(masters * (1 + replicas_per_master))
    nodes: list[ClusterNode] = []
    cluster = RedisCluster(workdir, nodes, replicas_per_master, node_timeout_ms)
    try:
        for port in ports:
            nodes.append(_launch_redis(ClusterNode, workdir, port,
                                       _node_options(workdir, port, node_timeout_ms)))
        _create(ports, replicas_per_master)
        cluster.wait_healthy()
        cluster.node_ids.update({node.port: node.cli("cluster", "myid").strip()
                                 for node in nodes})
        if ports[0] not in cluster.masters():
            raise RuntimeError("redis-cli --cluster create did not make the first node a master")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@contextmanager
def running_redis_cluster(**options: int) -> Iterator[RedisCluster]:
    """`start_redis_cluster(**options)` in a directory of its own, stopped and removed
    afterwards: what a fixture yields."""
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-redis-cluster-"))
    cluster = start_redis_cluster(workdir, **options)
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _create(ports: list[int], replicas_per_master: int) -> None:
    """`redis-cli --cluster create`: the first nodes listed become the masters."""
    subprocess.run(["redis-cli", "--cluster", "create",
                    *(f"127.0.0.1:{port}" for port in ports),
                    "--cluster-replicas", str(replicas_per_master), "--cluster-yes"],
                   capture_output=True, check=True, timeout=30)


def _node_options(workdir: Path, port: int, node_timeout_ms: int) -> list[str]:
    # Without full coverage the other masters keep serving while one fails over; with no
    # reads when down, a node cut off from the majority answers CLUSTERDOWN, not stale data.
    # A replica keeps the RDB of its full sync in `dbfilename`, and a node loads that file
    # when it starts: one each, so that a node started again never loads another's keys.
    # A master sends that RDB at once rather than waiting 5 s for more replicas.
    return ["--port", str(port), "--cluster-enabled", "yes",
            "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
            "--cluster-node-timeout", str(node_timeout_ms),
            "--cluster-require-full-coverage", "no", "--cluster-allow-reads-when-down", "no",
            "--dbfilename", f"dump-{port}.rdb", "--repl-diskless-sync-delay", "0"]


def _cluster_ports(count: int) -> list[int]:
    """`count` free loopback ports whose cluster bus ports (+10000) are free too, none
    of them another's port or a developer's own Redis (6379, 16379)."""
    taken: set[int] = set(RESERVED_PORTS)
    ports: list[int] = []
    for _ in range(count * 100):
        port = free_port()
        bus = port + BUS_OFFSET
        if bus <= 65535 and not {port, bus} & taken and _port_free(bus):
            ports.append(port)
            taken |= {port, bus}
            if len(ports) == count:
                return ports
    raise RuntimeError(f"found no {count} free port pairs for a Redis Cluster")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
