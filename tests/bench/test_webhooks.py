"""The webhooks scenario's receiver (bench/webhook_receiver.py): it answers at once,
verifies a sample of the signatures, and counts what the scenario checks (duplicates,
gaps in a room's order, lives not finished) and how late each event came."""

from __future__ import annotations

import datetime
import http.client
import json
import time

from standardwebhooks.webhooks import Webhook

from bench.scenarios import WEBHOOKS_SECRET
from bench.webhook_receiver import VERIFY_EVERY, start_webhook_receiver


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("POST", "/webhooks", body=body, headers=headers)
        reply = connection.getresponse()
        reply.read()
        return reply.status
    finally:
        connection.close()


def _signed(body: bytes, message_id: str) -> dict[str, str]:
    now = datetime.datetime.now(datetime.UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(WEBHOOKS_SECRET).sign(message_id, now, body.decode())}


def _event(kind: str, life: str, seq: int, at: int) -> bytes:
    return json.dumps({"type": kind, "id": f"{life}-{seq}", "room": "r", "room_seq": seq,
                       "at": at}).encode()


def test_the_receiver_counts_orders_times_and_verifies_a_sample() -> None:
    receiver = start_webhook_receiver(WEBHOOKS_SECRET)
    try:
        at = int(time.time() * 1000) - 40  # the state changes 40 ms ago
        life = [("room.started", 1), ("peer.joined", 2), ("peer.joined", 2),  # again
                ("peer.left", 4),  # 3 skipped
                ("room.finished", 5)]
        for index, (kind, seq) in enumerate(life):
            body = _event(kind, "aaaa", seq, at + index)
            assert _post(receiver.port, body, _signed(body, f"aaaa-{seq}")) == 200
        # Another room's life, outside the window asked for below, unsigned up to the
        # next request verified (none of the sample)...
        others = VERIFY_EVERY - len(life)
        for seq in range(1, others + 1):
            body = _event("room.started" if seq == 1 else "peer.joined", "bbbb", seq,
                          at - 10_000)
            assert _post(receiver.port, body, {}) == 200
        # ... which is this one: forged, it is refused.
        forged = _event("peer.left", "bbbb", others + 1, at)
        assert _post(receiver.port, forged, {"webhook-signature": "v1,AAAA"}) == 401
        stats = receiver.stats()
        assert stats["received"] == VERIFY_EVERY + 1
        assert (stats["verified"], stats["refused"]) == (1, 1)
        assert stats["duplicates"] == 1 and stats["gaps"] == 1, stats
        assert stats["open_lives"] == 1  # bbbb never finished
        assert stats["by_type"] == {"room.started": 2, "peer.joined": 1 + others - 1,
                                    "peer.left": 1, "room.finished": 1}
        late = receiver.latencies(at, at + 1000)
        assert len(late) == 4  # aaaa's, less the duplicate
        assert all(35 < ms < 5000 for ms in late), late
    finally:
        receiver.stop()
    assert receiver.popen.returncode == 0  # it stopped at its SIGTERM
