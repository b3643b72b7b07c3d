"""What the fault tests share: a cluster of their own, its processes, a recorder of the
frames a client receives, and the figures they measure.

Clusters that shared one Redis would share shard leases too: a relay started with one
test's limits would serve another test's rooms. So each of these gets its own Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import websockets
from redis.asyncio import Redis

from harness.processes import ROOT, Cluster, Process, eventually, start_cluster, start_redis
from shared import keys
from tests.peers import Peer

ARTIFACTS = ROOT / "tests" / "artifacts" / "faults.jsonl"


@contextmanager
def private_cluster(gateways: int, relays: int, **env: str) -> Iterator[Cluster]:
    """A Redis, `relays` relays and `gateways` gateways of their own; all stopped after.

    Gateways stop without the shutdown notice period unless `env` sets one: these tests
    are not about shutting down, and the notice would only add to their time. A test may
    replace `cluster.redis` (a restart): the Redis it leaves there is stopped too.
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
            print(f"\nprocess logs in {cluster.workdir}")
        redis.process.stop()
        if cluster is not None and cluster.redis is not redis:
            cluster.redis.process.stop()
        shutil.rmtree(workdir, ignore_errors=True)


SHARDS = 64  # the default SWITCHBOARD_SHARDS


async def holders(redis: Redis) -> list[str | None]:
    """Each shard's lease holder (a relay id), None where no relay holds it."""
    return [h.decode() if h else None for h in await redis.mget(keys.all_leases(SHARDS))]


async def relays_hold_every_shard(redis: Redis, relays: int) -> bool:
    """Whether every shard has a holder, and `relays` relays share them."""
    held = set(await holders(redis))
    return None not in held and len(held) == relays


def rooms_held_by(lease_of: list[str | None], relay_id: str, count: int,
                  prefix: str = "host") -> list[str]:
    """`count` room names whose shards `relay_id` holds."""
    names: list[str] = []
    n = 0
    while len(names) < count:
        name = f"{prefix}-{os.getpid()}-{n}"
        n += 1
        if lease_of[keys.shard_of(keys.room_digest(name), SHARDS)] == relay_id:
            names.append(name)
    return names


def processes(cluster: Cluster) -> list[Process]:
    return [process for process, _ in cluster.gateways] + cluster.relays


def tracebacks(cluster: Cluster) -> dict[str, str]:
    """Each process's log, for those that logged a traceback."""
    return {p.name: p.log() for p in processes(cluster) if "Traceback" in p.log()}


def pid_of(process_id: str) -> int:
    """The pid in a relay or gateway id, `<kind>-<host>-<pid>-<random>`."""
    return int(process_id.rsplit("-", 2)[1])


async def kill_after_renewal(victim: Process, redis: Redis, key: str, timeout: float,
                             what: str) -> tuple[float, float]:
    """SIGKILL `victim` right after it renewed `key`, its heartbeat or lease (the key's PTTL
    jumps back up then): the worst moment, as the key lives on for nearly a full TTL after
    its death. Return when it was killed (monotonic seconds) and the seconds the key had
    left then."""
    last_pttl = [await redis.pttl(key)]

    async def just_renewed() -> bool:
        pttl = await redis.pttl(key)
        renewed, last_pttl[0] = pttl > last_pttl[0] + 100, pttl
        return renewed

    await eventually(just_renewed, timeout, what)
    victim.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    left_s = await redis.pttl(key) / 1000
    assert await asyncio.to_thread(victim.wait, 5) == -signal.SIGKILL
    return killed_at, left_s


def record(test: str, fault: str | None = None, **figures: Any) -> None:
    """Print measured figures and append them as one JSON line to the artifacts.

    With `fault` (one of the faults of tests/faults/), the line starts with the fault, the UTC time and the
    test, then the figures as given, and is printed after `FAULT FIGURES`. Without, it has
    the test, the local time and the figures, sorted by key, printed after `[figures]`.
    """
    if fault is None:
        line = json.dumps({"test": test, "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
                           **figures}, sort_keys=True)
        label = "[figures]"
    else:
        line = json.dumps({"fault": fault,
                           "at": datetime.now(UTC).isoformat(timespec="seconds"),
                           "test": test, **figures})
        label = "FAULT FIGURES"
    print(f"\n{label} {line}")
    ARTIFACTS.parent.mkdir(parents=True, exist_ok=True)
    with ARTIFACTS.open("a") as out:
        out.write(line + "\n")


@dataclass
class Member:
    """One client socket, with everything it received and when (monotonic seconds)."""

    name: str
    room: str
    peer: Peer
    frames: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    reader: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        assert self.peer.id is not None, f"{self.name} has no peer id"
        return self.peer.id

    def start_reading(self) -> None:
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.peer.ws:
                self.frames.append((time.monotonic(), json.loads(raw)))
        except websockets.ConnectionClosed:
            pass

    def events(self, event: str) -> list[dict[str, Any]]:
        """The frames of this `event`, in the order they came."""
        return [frame for _, frame in self.frames if frame.get("event") == event]
