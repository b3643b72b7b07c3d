"""coturn (Debian's `turnserver`) on loopback, checking the time-limited credentials the
gateways hand out (`use-auth-secret` with `static-auth-secret`), as README.md's "Who may
connect: TURN credentials" configures it; everything of it in a workdir of the test's."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from harness.processes import Process, accepts, free_port, spawn, wait_until

TURNSERVER = Path("/usr/bin/turnserver")
REALM = "switchboard.test"
# coturn logs one line per allocation it grants: "... ALLOCATE processed, success".
ALLOCATED = re.compile(r"ALLOCATE processed, success")
# And one per request it refused: a 401 to a request without a user is the first leg of
# every authentication, so only those that named a user (wrong credentials) count.
REFUSED = re.compile(r"user <[^>]+>: incoming packet \w+ processed, error 401")


@dataclass
class Coturn:
    process: Process
    port: int  # TURN over UDP and TCP, on 127.0.0.1
    log_path: Path
    relay_ports: tuple[int, int]

    @property
    def url(self) -> str:
        """The TURN-over-TCP URL, as SWITCHBOARD_ICE_URLS takes it."""
        return f"turn:127.0.0.1:{self.port}?transport=tcp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def allocations(self) -> int:
        """Relay allocations granted so far."""
        return len(ALLOCATED.findall(self.log()))

    def refusals(self) -> list[str]:
        """Log lines of requests refused for their credentials."""
        return [line for line in self.log().splitlines() if REFUSED.search(line)]

    def allocation_lines(self) -> list[str]:
        return [line for line in self.log().splitlines() if ALLOCATED.search(line)]

    def stop(self) -> int | None:
        return self.process.stop()


def start_coturn(workdir: Path, secret: str) -> Coturn:
    """turnserver in the foreground: loopback only, no TLS nor DTLS, no CLI, relays on a
    range of 127.0.0.1 ports, loopback peers allowed (both ends of a test call are on
    127.0.0.1); returned once it accepts TCP."""
    assert TURNSERVER.exists(), f"{TURNSERVER} is missing: scripts/test installs coturn"
    port = free_port()
    low = random.randrange(30000, 59000, 100)
    relay_ports = (low, low + 99)
    log_path = workdir / "turnserver.log"
    argv = [str(TURNSERVER), "-n",  # no configuration file
            "--listening-ip=127.0.0.1", f"--listening-port={port}",
            "--relay-ip=127.0.0.1", f"--min-port={relay_ports[0]}",
            f"--max-port={relay_ports[1]}",
            "--use-auth-secret", f"--static-auth-secret={secret}", f"--realm={REALM}",
            "--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-cli",
            "--no-multicast-peers", "--fingerprint", "--verbose",  # allocations are logged
            f"--log-file={log_path}", "--simple-log", "--no-stdout-log",
            f"--pidfile={workdir / 'turnserver.pid'}"]
    process = spawn("turnserver", argv, {}, workdir)
    coturn = Coturn(process, port, log_path, relay_ports)
    wait_until(lambda: not process.alive() or accepts(port), 10, f"coturn on port {port}")
    if not process.alive():
        raise RuntimeError(f"turnserver died:\n{process.log()}\n{coturn.log()}")
    return coturn

