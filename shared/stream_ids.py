"""Redis stream entry ids (``"<ms>-<seq>"``) and how they order: the one place that
compares them. Redis's clock is in them, so relays also read time from them
(docs/architecture.md, "A resume")."""

from __future__ import annotations


def stream_order(entry_id: str | bytes) -> tuple[int, int]:
    """Sort key of a stream id: ids compare as these tuples do, not as strings
    (``"9-0"`` comes before ``"10-0"``). A bare ``"<ms>"`` counts as ``"<ms>-0"``."""
    if isinstance(entry_id, bytes):
        entry_id = entry_id.decode("ascii")
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)
