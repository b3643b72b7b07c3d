"""Where a key lives: the one Redis of REDIS_URL, or the node of a Redis Cluster that
serves the key's hash slot.

`REDIS_URL` names any one node; `discover` asks it whether it is part of a cluster
(CLUSTER SLOTS) and, if so, learns every master from it. The hot paths (redis_io.resp)
route each command by `node_of`; a redirect or a lost node makes them `refresh`.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from bisect import bisect_right
from dataclasses import dataclass

from redis.crc import key_slot
from redis.exceptions import RedisError, ResponseError

from redis_io.resp import RespConnection, pack

log = logging.getLogger(__name__)

SLOTS = 16384
# CLUSTER SLOTS is asked again at most this often, however many callers saw a redirect.
_REFRESH_MIN_INTERVAL_S = 0.05


@dataclass(frozen=True, slots=True)
class Node:
    """One Redis server, and the URL that reaches it with REDIS_URL's credentials and
    TLS options."""

    host: str
    port: int
    url: str


def slot_of(key: bytes | str) -> int:
    """The cluster hash slot of a key or shard channel (its `{tag}` when it has one)."""
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def node_url(url: str, host: str, port: int) -> str:
    """`url` with its host and port replaced: a cluster's nodes share credentials."""
    parts = urllib.parse.urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


class RedisNodes:
    """The slot map of a cluster (or the one node of a standalone Redis)."""

    def __init__(self, url: str, cluster: bool, node: Node) -> None:
        self.url = url
        self.cluster = cluster
        # Sorted slot-range starts, and the master serving each range.
        self._starts: list[int] = [0]
        self._masters: list[Node] = [node]
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        # Counts slot maps taken: a change tells a reader its node may have changed.
        self.version = 0

    @classmethod
    async def discover(cls, url: str) -> RedisNodes:
        """Ask the node of `url` whether it is part of a cluster; learn the slot map if
        so. Raises redis's ConnectionError when that node cannot be reached."""
        parts = urllib.parse.urlsplit(url)
        node = Node(parts.hostname or "localhost", parts.port or 6379, url)
        if parts.scheme == "unix":
            return cls(url, False, node)
        connection = await RespConnection.open(url)
        try:
            (reply,) = await connection.request(pack(b"CLUSTER", b"SLOTS"), 1, 5.0)
        finally:
            connection.close()
        if isinstance(reply, ResponseError):
            # "ERR This instance has cluster support disabled": a standalone Redis.
            return cls(url, False, node)
        nodes = cls(url, True, node)
        nodes._take(reply)
        log.info("Redis Cluster of %d masters", len(nodes.masters()))
        return nodes

    def node_of(self, key: bytes | str) -> Node:
        if not self.cluster:
            return self._masters[0]
        return self._masters[bisect_right(self._starts, slot_of(key)) - 1]

    def masters(self) -> list[Node]:
        return sorted(set(self._masters), key=lambda node: (node.host, node.port))

    async def refresh(self) -> None:
        """Read the slot map again (after MOVED, or a node lost). Callers at the same
        moment share one CLUSTER SLOTS."""
        if self.cluster:
            await asyncio.shield(self.refresh_soon())

    def refresh_soon(self) -> asyncio.Task[None]:
        """Start reading the slot map again, unless that is under way already."""
        if self._refreshing is None or self._refreshing.done():
            loop = asyncio.get_running_loop()
            wait = self._refreshed_at + _REFRESH_MIN_INTERVAL_S - loop.time()
            self._refreshing = loop.create_task(self._refresh(max(0.0, wait)))
        return self._refreshing

    async def _refresh(self, wait: float) -> None:
        if wait:
            await asyncio.sleep(wait)
        errors: list[str] = []
        # Any node will do; one that just died is tried last.
        for node in [*self.masters(), Node("", 0, self.url)]:
            url = node.url
            try:
                connection = await RespConnection.open(url, timeout=1.0)
            except RedisError as exc:
                errors.append(str(exc))
                continue
            try:
                (reply,) = await connection.request(pack(b"CLUSTER", b"SLOTS"), 1, 2.0)
            except RedisError as exc:
                errors.append(str(exc))
                continue
            finally:
                connection.close()
            if isinstance(reply, list) and reply:
                self._take(reply)
                self._refreshed_at = asyncio.get_running_loop().time()
                return
            errors.append(f"no slot map from {url}: {reply!r}")
        log.warning("cannot read the cluster's slot map: %s", "; ".join(errors))

    def _take(self, reply: object) -> None:
        """CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...]."""
        assert isinstance(reply, list)
        ranges: list[tuple[int, Node]] = []
        for start, _end, master, *_replicas in reply:
            host = master[0].decode() or urllib.parse.urlsplit(self.url).hostname or ""
            port = int(master[1])
            ranges.append((int(start), Node(host, port, node_url(self.url, host, port))))
        ranges.sort(key=lambda item: item[0])
        self._starts = [start for start, _ in ranges]
        self._masters = [node for _, node in ranges]
        if self._starts[0] != 0:  # uncovered slots: route them to some master, to be told
            self._starts.insert(0, 0)
            self._masters.insert(0, self._masters[0])
        self.version += 1


# Error replies that say where a command should go, or that the cluster is in flux; the
# command did nothing, so sending it again (there, or later) is safe.
_CLUSTER_ERRORS = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING",
                   "READONLY")


def cluster_error(error: BaseException) -> str | None:
    """What a failed command tells of the cluster: a redirect (MOVED, ASK), a state to
    wait out (TRYAGAIN, CLUSTERDOWN...), "LOST" for a node that cannot be reached; None
    for an error of the command itself."""
    if isinstance(error, ResponseError):
        word = str(error).split(" ", 1)[0]
        return word if word in _CLUSTER_ERRORS else None
    if isinstance(error, RedisError | OSError | TimeoutError):
        return "LOST"
    return None


def redirect_node(nodes: RedisNodes, error: BaseException) -> Node:
    """The node a MOVED or ASK reply names (`ASK 3999 127.0.0.1:6381`)."""
    host, _, port = str(error).split()[-1].rpartition(":")
    return Node(host, int(port), node_url(nodes.url, host, int(port)))
