"""Real processes for tests: a private redis-server, gateways and relays, on free ports.

Every process is started here, remembered by pid, and stopped by that pid.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

ROOT = Path(__file__).resolve().parent.parent

T = TypeVar("T")


def free_port() -> int:
    """A port no one listens on, below the kernel's range of ephemeral ports: a port the
    kernel handed out (bind to 0) can be taken again by any outgoing connection before
    the process meant to listen there binds it (a relay's health port once was: "address
    already in use"). Never the same one twice in this process."""
    low = _ephemeral_low()
    if low < 4096:  # an unusual range: what bind to 0 gives will do
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(1000):
        port = _ports.randrange(max(1024, low - 12_000), low)
        if port in _handed_out or port in (6379, 16379):
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port below {low}")


_ports = random.Random()
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def stop_popens(popens: Sequence[subprocess.Popen[Any]], timeout: float = 10.0) -> None:
    """SIGTERM to each that runs, then wait for each: SIGKILL past `timeout`."""
    for popen in popens:
        if popen.poll() is None:
            os.kill(popen.pid, signal.SIGTERM)
    for popen in popens:
        try:
            popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(popen.pid, signal.SIGKILL)
            popen.wait(timeout)


def accepts(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port` now."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(check: object, timeout: float, what: str) -> None:
    """Poll `check()` until it is true; the one place tests wait for a process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


async def eventually(check: Callable[[], T | Awaitable[T]], timeout: float, what: str) -> T:
    """Poll `check()` (a function or a coroutine function) every 50 ms until it gives
    something true, and return that; bounded by `timeout`. The asyncio twin of
    `wait_until`, so that the test's sockets are served meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, signum: int) -> None:
        if self.alive():
            os.kill(self.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, timeout: float = 10.0) -> int | None:
        stop_popens([self.popen], timeout)
        return self.popen.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class RedisServer:
    port: int
    process: Process

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             check=True, timeout=10)
        return out.stdout.decode()


def spawn(name: str, argv: list[str], env: Mapping[str, str], workdir: Path) -> Process:
    log_path = workdir / f"{name}.log"
    log = log_path.open("wb")
    popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=dict(env),
                             cwd=ROOT, start_new_session=True)
    return Process(name, popen, log_path)


R = TypeVar("R", bound="RedisServer")


def start_redis(workdir: Path, port: int | None = None) -> RedisServer:
    """A private, empty redis-server; on `port` when given (to restart one in place)."""
    port = free_port() if port is None else port
    return _launch_redis(RedisServer, workdir, port, ["--port", str(port)])


def _launch_redis(kind: type[R], workdir: Path, port: int, options: list[str]) -> R:
    """redis-server on loopback, keeping nothing on disk, with `options` for its port(s)
    and any further configuration (a cluster node's); returned once it answers PING."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (the test command installs it)")
    process = spawn(f"redis-{port}", [server, *options, "--bind", "127.0.0.1", "--save", "",
                                       "--appendonly", "no", "--dir", str(workdir)],
                     os.environ, workdir)
    redis = kind(port, process)

    def pong() -> bool:
        try:
            return redis.cli("ping").strip() == "PONG"
        except subprocess.CalledProcessError:
            return False

    wait_until(pong, 10, f"{kind.__name__} on port {port}")
    return redis


@dataclass
class TlsRedisServer(RedisServer):
    """A private redis-server that speaks TLS only, with a self-signed certificate, as
    Heroku Redis does; its URL asks for no certificate check (`ssl_cert_reqs=none`)."""

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=none"

    def cli(self, *args: str) -> str:
        out = subprocess.run(["redis-cli", "--tls", "--insecure", "-p", str(self.port), *args],
                             capture_output=True, check=True, timeout=10)
        return out.stdout.decode()


def start_tls_redis(workdir: Path) -> TlsRedisServer:
    """A TLS-only redis-server with a certificate made here (none is kept)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (workdir / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (workdir / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    port = free_port()
    return _launch_redis(TlsRedisServer, workdir, port, [
        "--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no",
        "--tls-cert-file", str(workdir / "tls.crt"), "--tls-key-file", str(workdir / "tls.key")])


class RedisLike(Protocol):
    """A private redis-server, or a Redis Cluster of them (harness/redis_cluster.py)."""

    @property
    def url(self) -> str: ...


@dataclass
class Cluster:
    """A private Redis (or Redis Cluster) with any number of gateways and relays."""

    redis: RedisLike
    workdir: Path
    env: dict[str, str]
    gateways: list[tuple[Process, int]] = field(default_factory=list)
    relays: list[Process] = field(default_factory=list)
    relay_health_ports: dict[int, int] = field(default_factory=dict)  # by pid

    def start_gateway(self, **env: str) -> tuple[Process, int]:
        port = free_port()
        process = spawn(f"gateway-{port}", [sys.executable, "-m", "gateway"],
                         {**self.env, "PORT": str(port), "HOST": "127.0.0.1", **env},
                         self.workdir)
        tls = bool({**self.env, **env}.get("SWITCHBOARD_TLS_CERT"))
        wait_until(lambda: _http_ok(port, "/healthz", tls) or not process.alive(), 20,
                   f"gateway on port {port}")
        if not process.alive():
            raise RuntimeError(f"gateway died:\n{process.log()}")
        self.gateways.append((process, port))
        return process, port

    def start_relay(self, **env: str) -> Process:
        port = free_port()
        process = spawn(f"relay-{len(self.relays)}", [sys.executable, "-m", "relay"],
                         {**self.env, "SWITCHBOARD_RELAY_HEALTH_PORT": str(port), **env},
                         self.workdir)
        self.relays.append(process)
        self.relay_health_ports[process.pid] = port
        return process

    def wait_ready(self, port: int, timeout: float = 20) -> None:
        wait_until(lambda: _http_ok(port, "/readyz"), timeout, f"gateway {port} ready")

    def url(self, index: int = 0) -> str:
        return f"ws://127.0.0.1:{self.gateways[index][1]}/"

    def stop(self) -> None:
        """SIGTERM every process at once, then wait for each (SIGKILL past 10 s)."""
        everyone = [process for process, _ in self.gateways] + self.relays
        for process in everyone:
            process.signal(signal.SIGTERM)
        for process in everyone:
            process.stop()


def start_cluster(redis: RedisLike, gateways: int, relays: int, **env: str) -> Cluster:
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-"))
    base = {**os.environ, "REDIS_URL": redis.url, "LOG_LEVEL": "info",
            "PYTHONPATH": str(ROOT), **env}
    cluster = Cluster(redis, workdir, base)
    try:
        for _ in range(relays):
            cluster.start_relay()
        for _ in range(gateways):
            cluster.start_gateway()
        for _, port in cluster.gateways:
            cluster.wait_ready(port)
    except BaseException:
        # Not ready in time: stop what was started, or it outlives the test run.
        cluster.stop()
        print(f"\nprocess logs in {workdir}")
        raise
    return cluster


def http_get(port: int, path: str, context: ssl.SSLContext | None = None
             ) -> tuple[int, str, str]:
    """GET http://127.0.0.1:`port``path` (https:// with a TLS `context`): status,
    Content-Type and body, errors included."""
    scheme = "https" if context is not None else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}{path}", timeout=5,
                                    context=context) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read().decode()


def _http_ok(port: int, path: str, tls: bool = False) -> bool:
    # A gateway serving TLS itself has a certificate of the test's: its start is all that is
    # waited for here.
    context = ssl._create_unverified_context() if tls else None
    scheme = "https" if tls else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://127.0.0.1:{port}{path}", timeout=1,
                                    context=context) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False
