"""The two servers under test, started and stopped here on 127.0.0.1, by pid.

- Switchboard: a private redis-server, one gateway and one relay (the Procfile's two
  commands, through the test harness's launcher), with the per-socket frame rate limit
  lifted: a closed loop sends far faster than a browser's 50 frames/s.
- PeerJS server: npm `peer`, installed on demand into bench/peerjs/node_modules, run as
  `peerjs --port P --host 127.0.0.1 --path /myapp --key peerjs` (what `npx peerjs ...` runs,
  without npm's wrapper process in between, so the pid we hold is the server's).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import (
    Cluster,
    RedisServer,
    accepts,
    free_port,
    start_cluster,
    start_redis,
    stop_popens,
)
from harness.redis_cluster import RedisCluster, start_redis_cluster

PEERJS_DIR = Path(__file__).resolve().parent / "peerjs"
PEERJS_BIN = PEERJS_DIR / "node_modules" / "peer" / "dist" / "bin" / "peerjs.js"
# Socket.IO with its Redis adapters (bench/socketio/server.js): the peer that scales out.
SOCKETIO_DIR = Path(__file__).resolve().parent / "socketio"
SOCKETIO_ADAPTERS = ("pubsub", "streams")


def raise_open_files_limit() -> int:
    """Lift RLIMIT_NOFILE to the hard limit; children (the servers, the workers) inherit it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class Server:
    """A running server: where clients connect, which pids are its, how to stop it."""

    name: str
    port: int
    # The processes whose CPU and memory count, by role ("gateway", "relay", "redis", "node";
    # "gateway-2", "redis-3"... when there are several).
    pids: dict[str, int]
    version: str
    # Every gateway's port: clients are dealt to them in turn (a pair's two ends differ).
    ports: tuple[int, ...] = ()

    def alive(self) -> bool:
        return all(Path(f"/proc/{pid}").exists() for pid in self.pids.values())

    def stop(self) -> None:
        raise NotImplementedError


@dataclass
class SwitchboardServer(Server):
    redis: RedisServer | RedisCluster | None = None
    cluster: Cluster | None = None
    workdir: Path | None = None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            shutil.rmtree(self.cluster.workdir, ignore_errors=True)  # its processes' logs
        if isinstance(self.redis, RedisServer):
            self.redis.process.stop()
        elif self.redis is not None:
            self.redis.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_switchboard(gateways: int = 1, relays: int = 1, redis_masters: int = 0,
                      env: Mapping[str, str] | None = None) -> SwitchboardServer:
    """Gateways and relays on a private redis-server, or with `redis_masters` on a
    private Redis Cluster of that many masters (no replicas: the figures are the cost of
    routing by slot, not of replication). `env` adds settings (an admin key, a join
    secret) to every process's environment."""
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-bench-"))
    redis: RedisServer | RedisCluster
    if redis_masters:
        redis = start_redis_cluster(workdir, masters=redis_masters, replicas_per_master=0)
        redis_pids = [node.process.pid for node in redis.nodes]
        redis_version = redis.cli(redis.nodes[0].port, "info", "server")
    else:
        redis = start_redis(workdir)
        redis_pids = [redis.process.pid]
        redis_version = redis.cli("info", "server")
    try:
        cluster = start_cluster(redis, gateways=gateways, relays=relays, LOG_LEVEL="warning",
                                SWITCHBOARD_FRAME_RATE="1000000",
                                SWITCHBOARD_FRAME_BURST="1000000",
                                SWITCHBOARD_WIRE_FRAME_RATE="1000000",
                                SWITCHBOARD_WIRE_FRAME_BURST="1000000",
                                SWITCHBOARD_WIRE_BYTE_RATE="1000000000",
                                # Stop at once: no shutdown notice to drain through.
                                SWITCHBOARD_SHUTDOWN_SECONDS="0", **(env or {}))
    except BaseException:
        SwitchboardServer("switchboard", 0, {}, "", redis=redis).stop()
        raise
    pids = {**_roles("gateway", [process.pid for process, _ in cluster.gateways]),
            **_roles("relay", [process.pid for process in cluster.relays]),
            **_roles("redis", redis_pids)}
    version = redis_version.split("redis_version:")[1].split()[0]
    ports = tuple(port for _, port in cluster.gateways)
    return SwitchboardServer("switchboard", ports[0], pids, f"0.1.0 (redis {version})",
                             ports, redis=redis, cluster=cluster, workdir=workdir)


def _roles(role: str, pids: list[int]) -> dict[str, int]:
    """`gateway`, `gateway-2`, ...: the first keeps the plain name the report reads."""
    return {role if index == 0 else f"{role}-{index + 1}": pid
            for index, pid in enumerate(pids)}


def node_unavailable() -> str | None:
    """Why the node servers (PeerJS, Socket.IO) cannot run here (no node or npm), or
    None."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found (Debian: apt-get install nodejs npm)"
    return None


def npm_ci(folder: Path) -> None:
    """`npm ci` in `folder` (what its package-lock.json pins) unless done since the lock
    last changed."""
    stamp = folder / "node_modules" / ".bench-installed"
    if stamp.exists() and stamp.stat().st_mtime >= (folder / "package-lock.json").stat().st_mtime:
        return
    print(f"installing the npm packages of {folder}/package-lock.json", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=folder, check=True, timeout=300)
    stamp.touch()


@dataclass
class PeerJSServer(Server):
    popen: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    def stop(self) -> None:
        if self.popen is not None:
            stop_popens([self.popen])
        if self.log_path is not None:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)


def start_peerjs(concurrent_limit: int) -> PeerJSServer:
    """PeerJS server on a free loopback port; its default limit of 5,000 clients is raised."""
    npm_ci(PEERJS_DIR)
    port = free_port()
    log_path = Path(tempfile.mkdtemp(prefix="peerjs-bench-")) / "peerjs.log"
    argv = ["node", str(PEERJS_BIN), "--port", str(port), "--host", "127.0.0.1",
            "--path", "/myapp", "--key", "peerjs", "--concurrent_limit", str(concurrent_limit)]
    try:
        popen = _start_node(argv, PEERJS_DIR, dict(os.environ), port, log_path)
    except RuntimeError:
        shutil.rmtree(log_path.parent, ignore_errors=True)
        raise
    return PeerJSServer("peerjs", port, {"node": popen.pid}, _peerjs_version(),
                        popen=popen, log_path=log_path)


def _start_node(argv: list[str], cwd: Path, env: dict[str, str], port: int,
                log_path: Path) -> subprocess.Popen[bytes]:
    """A node server in a session of its own, its output to `log_path`; returned once it
    accepts on `port`, else stopped and RuntimeError with its log."""
    with log_path.open("wb") as log:
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                 env=env, start_new_session=True)
    deadline = time.monotonic() + 20
    while not accepts(port):
        if popen.poll() is not None or time.monotonic() > deadline:
            stop_popens([popen])
            raise RuntimeError(f"{' '.join(argv[:2])} did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return popen


@dataclass
class SocketIoServer(Server):
    """`fronts` node processes of bench/socketio/server.js and the redis-server that joins
    them; clients are dealt to the fronts in turn (`ports`)."""

    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    redis: RedisServer | None = None
    workdir: Path | None = None

    def stop(self) -> None:
        stop_popens(self.processes)
        if self.redis is not None:
            self.redis.process.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_socketio(adapter: str, fronts: int) -> SocketIoServer:
    """Socket.IO on `fronts` node processes joined by one redis-server through `adapter`
    (`pubsub` or `streams`), each on a free loopback port."""
    assert adapter in SOCKETIO_ADAPTERS, adapter
    npm_ci(SOCKETIO_DIR)
    workdir = Path(tempfile.mkdtemp(prefix="socketio-bench-"))
    redis = start_redis(workdir)
    server = SocketIoServer(f"socketio-{adapter}", 0, {"redis": redis.process.pid},
                            _socketio_version(adapter), redis=redis, workdir=workdir)
    ports = []
    try:
        for n in range(fronts):
            port = free_port()
            env = {**os.environ, "PORT": str(port), "REDIS_URL": redis.url, "ADAPTER": adapter}
            popen = _start_node(["node", "server.js"], SOCKETIO_DIR, env, port,
                                workdir / f"front-{n}.log")
            server.processes.append(popen)
            server.pids["node" if fronts == 1 else f"node-{n + 1}"] = popen.pid
            ports.append(port)
    except BaseException:
        server.stop()
        raise
    server.port, server.ports = ports[0], tuple(ports)
    return server


def _socketio_version(adapter: str) -> str:
    package = {"pubsub": "@socket.io/redis-adapter",
               "streams": "@socket.io/redis-streams-adapter"}[adapter]
    versions = [json.loads((SOCKETIO_DIR / "node_modules" / name / "package.json")
                           .read_text())["version"] for name in ("socket.io", package)]
    return f"socket.io {versions[0]} + {package} {versions[1]}"


def _peerjs_version() -> str:
    package = json.loads((PEERJS_BIN.parents[2] / "package.json").read_text())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
    return f"peer {package['version']} (node {node.stdout.strip()})"

