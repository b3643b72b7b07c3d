"""Which entries of a batch a shard's checkpoint already covers (docs/architecture.md, rule 2).
Pure: no Redis.

The checkpoint is the id of the last entry whose effects were committed. A relay that
takes a shard over reads first what earlier holders were given but never acknowledged;
the entries up to the checkpoint among them were applied before the crash, so they are
acknowledged, not applied again.
"""

from __future__ import annotations

from shared.stream_ids import stream_order


def is_applied(entry_id: str, checkpoint: str) -> bool:
    """Whether the entry's effects were committed: it is not past the checkpoint ("" before
    the shard's first commit, which covers nothing)."""
    return bool(checkpoint) and stream_order(entry_id) <= stream_order(checkpoint)


def applied_prefix(ids: list[bytes], checkpoint: str) -> int:
    """How many of a batch's entry ids, in stream order, the checkpoint covers: they come
    first, since once one entry is past the checkpoint all that follow are."""
    if not checkpoint:
        return 0
    covered = stream_order(checkpoint)
    for count, entry_id in enumerate(ids):
        if stream_order(entry_id) > covered:
            return count
    return len(ids)


def checkpoint_after(last_id: str, checkpoint: str) -> str:
    """The checkpoint once the batch ending with `last_id` is committed: that entry, unless
    the whole batch was applied already (the checkpoint never moves back)."""
    return checkpoint if is_applied(last_id, checkpoint) else last_id
