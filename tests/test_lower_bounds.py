"""The lower bounds in pyproject.toml still hold: the protocol, resume, limits and
Redis-fault tests pass on the lowest release each range allows (requirements/lowest.lock,
written by scripts/lock), run in a virtualenv of their own.

Users install the package into their own environments, where pip may pick any version
within a range; the lock the rest of the suite runs on only proves the newest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.processes import ROOT

LOCK = ROOT / "requirements" / "lowest.lock"
VENV = ROOT / ".venv-lowest"
# Every layer a dependency touches: sanic and websockets (gateway/), redis-py on a single
# server and on a cluster, stopped and frozen (relay/, the faults), msgspec and orjson
# (every event), PyJWT and cryptography (tokens), prometheus-client (metrics), aiohttp and
# standardwebhooks (the hooks). Not the browser and aiortc tests, whose tools are
# test-only and not bounds users install. Of the cluster's faults, a master killed under
# traffic: redis-py's cluster failover, without the whole file's 100 s again (and without
# WAIT for replicas, which our own RESP code sends, not redis-py).
TESTS = [
    "tests/shared", "tests/redis_io", "tests/gateway", "tests/relay", "tests/switchboard_client",
    "tests/e2e/test_protocol.py", "tests/e2e/test_resume.py", "tests/e2e/test_star_rooms.py",
    "tests/e2e/test_access.py", "tests/e2e/test_metrics.py", "tests/e2e/test_webhooks.py",
    "tests/e2e/test_join_hook.py", "tests/faults/test_redis_restart.py",
    "tests/faults/test_redis_cluster_faults.py::test_master_killed_under_traffic[wait0]",
]
INSTALL_S = 300
RUN_S = 420


def run(argv: list[str], timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)  # type: ignore[call-overload]


def lowest_venv() -> Path:
    """.venv-lowest with exactly what the lock pins (hashes checked) and the project;
    built again whenever the lock changes."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".lock-sha256"
    # The lock, and the project's own packages (an editable install lists them).
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == digest:
        return python
    base = getattr(sys, "_base_executable", sys.executable)
    made = run([base, "-m", "venv", "--clear", str(VENV)], INSTALL_S)
    assert made.returncode == 0, made.stderr
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    for argv in ([*pip, "--require-hashes", "-r", str(LOCK)],
                 [*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT)]):
        installed = run(argv, INSTALL_S)
        assert installed.returncode == 0, installed.stdout + installed.stderr
    stamp.write_text(digest)
    return python


@pytest.mark.timeout(2 * INSTALL_S + RUN_S + 60)
def test_the_lowest_releases_the_ranges_allow_pass_the_service_tests() -> None:
    python = lowest_venv()
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    result = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *TESTS],
                 RUN_S, cwd=ROOT, env=env)
    tail = "\n".join(result.stdout.splitlines()[-30:])
    assert result.returncode == 0, f"on requirements/lowest.lock:\n{tail}\n{result.stderr[-2000:]}"
    # Proof that it ran what it names: the lowest redis-py and sanic, not the suite's.
    versions = run([str(python), "-c", "import redis, sanic; print(redis.__version__, "
                    "sanic.__version__)"], 30)
    assert versions.stdout.split() == [pin(name) for name in ("redis", "sanic")], versions


def pin(name: str) -> str:
    prefix = f"{name}=="
    line = next(line for line in LOCK.read_text().splitlines() if line.startswith(prefix))
    return line.removeprefix(prefix).split()[0]
