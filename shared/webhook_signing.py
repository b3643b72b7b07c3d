"""Signing the service's requests to the app as Standard Webhooks are (the
`standardwebhooks` library): the webhooks and the join hook, one way."""

from __future__ import annotations

from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook


def signed_headers(signer: Webhook, message_id: str, body: bytes) -> dict[str, str]:
    """The headers of `body` sent now as message `message_id` (the same on every retry)."""
    now = datetime.now(UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(message_id, now, body.decode()),
            "content-type": "application/json"}
