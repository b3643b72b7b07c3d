"""What gateways' and relays' /readyz say about the shards (docs/architecture.md, rule 5)."""

from __future__ import annotations

from collections.abc import Sequence


def shards_without_relay(holders: Sequence[object]) -> list[str]:
    """The problem of shards whose lease no relay holds, given every shard's lease value
    (None when unheld), in shard order; empty when each has a holder. Events for such a
    shard wait in its stream until a relay takes it over."""
    unowned = sum(holder is None for holder in holders)
    return [f"{unowned} of {len(holders)} shards have no relay"] if unowned else []
