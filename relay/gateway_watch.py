"""When a relay may declare a gateway dead (docs/architecture.md, rule 4). Pure: no Redis.

A gateway's heartbeat key can go missing without the gateway stopping: on a Redis
Cluster, a failover that outlasts the key's TTL leaves it expired on the promoted replica
(production defaults: node timeout 15 s, TTL 7 s), and a Redis restarted empty has none.
Removing that gateway's peers then would cost every one of its sockets.
So a missing key counts only once this relay has read the gateway's key without a break
for `settle_s`: long enough for a live gateway, which beats every ttl/3 and whose
call may take up to CALL_S to fail, to have set it again since the key's master
answered. A Redis error, or a pause in the relay's own reads, starts the wait anew.
A gateway that dies while nothing fails is declared as soon as its key is missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from shared import keys

Verdict = Literal["alive", "dead", "declare"]


class GatewayWatch:
    """Per gateway: since when this relay has read its heartbeat key without a break."""

    def __init__(self, settle_s: float, max_gap_s: float) -> None:
        self.settle_s = settle_s
        self.max_gap_s = max_gap_s  # reads further apart than this are a break
        self._since: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def read(self, gateways: Iterable[str], now: float) -> None:
        """These gateways' keys were just read (whatever they held)."""
        for gateway in gateways:
            last = self._last.get(gateway)
            if last is None or now - last > self.max_gap_s:
                self._since[gateway] = now
            self._last[gateway] = now

    def failed(self) -> None:
        """Redis did not answer: what was read before proves nothing any more."""
        self._since.clear()
        self._last.clear()

    def may_declare(self, gateway: str, now: float) -> bool:
        """Whether a missing key, read just now, means the gateway is gone."""
        since = self._since.get(gateway)
        return since is not None and now - since >= self.settle_s

    def verdict(self, gateway: str, value: bytes | None, now: float) -> Verdict:
        """What the gateway's heartbeat key, read just now, says: "dead" when a relay
        declared it so; "declare" when it is missing and may be (this relay then writes
        the verdict before acting on it); "alive" otherwise."""
        if value == keys.GATEWAY_DEAD:
            return "dead"
        if value is None and self.may_declare(gateway, now):
            return "declare"
        return "alive"

    def keep_only(self, gateways: set[str]) -> None:
        """Forget gateways that no longer have peers in this relay's shards."""
        for gone in self._last.keys() - gateways:
            del self._last[gone]
            self._since.pop(gone, None)
