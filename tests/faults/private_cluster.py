"""A cluster on a Redis of its own, for tests that set limits or stop every relay.

Clusters that shared one Redis would share shard leases too: a relay started with one
test's limits would serve another test's rooms. So each of these gets its own Redis.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.processes import ROOT, Cluster, Process, start_cluster, start_redis

ARTIFACTS = ROOT / "tests" / "artifacts" / "faults.jsonl"


@contextmanager
def private_cluster(gateways: int, relays: int, **env: str) -> Iterator[Cluster]:
    """A Redis, `relays` relays and `gateways` gateways of their own; all stopped after.

    Gateways stop without the shutdown notice period unless `env` sets one: these tests
    are not about shutting down, and the notice would only add to their time.
    """
    workdir = Path(tempfile.mkdtemp(prefix="switchboard-faults-"))
    redis = start_redis(workdir)
    cluster: Cluster | None = None
    try:
        cluster = start_cluster(redis, gateways=gateways, relays=relays,
                                **{"SWITCHBOARD_SHUTDOWN_SECONDS": "0", **env})
        yield cluster
    finally:
        if cluster is not None:
            cluster.stop()
        redis.process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def processes(cluster: Cluster) -> list[Process]:
    return [process for process, _ in cluster.gateways] + cluster.relays


def tracebacks(cluster: Cluster) -> dict[str, str]:
    """Each process's log, for those that logged a traceback."""
    return {p.name: p.log() for p in processes(cluster) if "Traceback" in p.log()}


def resident_kib(pid: int) -> int:
    """VmRSS of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def record(test: str, **figures: Any) -> None:
    """Print measured figures and append them as one JSON line to the artifacts."""
    line = json.dumps({"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **figures},
                      sort_keys=True)
    print(f"\n[figures] {line}")
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    with ARTIFACTS.open("a") as out:
        out.write(line + "\n")
