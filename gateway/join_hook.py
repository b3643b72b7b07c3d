"""The join hook (docs/protocol.md, "Join hook"): before each `join_room` (not a resume)
the gateway asks the app, which may admit the peer by its own session cookie and say who
it is, as a join token's claims would.

The request is signed as Standard Webhooks are (the `standardwebhooks` library), so the
app can tell it from anyone else's, and sent over a pool of keep-alive connections
(aiohttp); anything but a 200 `{"allow": true}` within the timeout is `not allowed` (fail
closed). Tokens and cookies are sent to the app only, and never logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry, Counter, Histogram
from standardwebhooks.webhooks import Webhook

from gateway.join_tokens import Identity, identity_of
from shared.events import Status
from shared.webhook_signing import signed_headers

log = logging.getLogger(__name__)

# How an answer ended (a metrics label): the only values.
OUTCOMES = ("allowed", "denied", "timeout", "unreachable", "malformed")
# A JSON answer larger than this is no answer.
_MAX_ANSWER_BYTES = 16 * 1024


class HookRequest(msgspec.Struct, omit_defaults=True):
    """What the app is asked (`token` only when the join carried one)."""

    room: str
    peer_id: str
    status: Status
    origin: str | None
    headers: dict[str, str]
    token: str | None = None


class _Answer(msgspec.Struct):
    """The app's answer: `allow`, and optional claims in the join token's shapes (checked
    by `identity_of`)."""

    allow: bool = False
    user: Any = msgspec.UNSET
    info: Any = msgspec.UNSET
    host: Any = msgspec.UNSET
    room_ends_at: Any = msgspec.UNSET


_request_encoder = msgspec.json.Encoder()
_answer_decoder = msgspec.json.Decoder(_Answer)


def identity_from(answer: bytes) -> tuple[str, Identity | None]:
    """The outcome and, when allowed, the identity of an answer's body."""
    try:
        parsed = _answer_decoder.decode(answer)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return "malformed", None
    if parsed.allow is not True:
        return "denied", None
    claims = {name: value for name, value in (
        ("sub", parsed.user), ("info", parsed.info), ("host", parsed.host),
        ("room_ends_at", parsed.room_ends_at)) if value is not msgspec.UNSET}
    identity = identity_of(claims)
    return ("allowed", identity) if identity is not None else ("malformed", None)


class JoinHook:
    """The app's URL, the signing key, a pool of keep-alive connections to the app."""

    def __init__(self, url: str, secret: str, timeout_s: float,
                 registry: CollectorRegistry) -> None:
        self.url = url
        self.signer = Webhook(secret)
        self.timeout_s = timeout_s
        # Made on the first ask, in the running loop.
        self._http: aiohttp.ClientSession | None = None
        self.answers = Counter("switchboard_join_hook_answers", "Join hook answers, by "
                               "outcome.", ["outcome"], registry=registry)
        for outcome in OUTCOMES:
            self.answers.labels(outcome)
        self.latency = Histogram("switchboard_join_hook_seconds", "How long the join hook "
                                 "took to answer (or to fail).", registry=registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                          0.25, 0.5, 1, 2.5, 5))

    async def ask(self, request: HookRequest) -> Identity | None:
        """The identity the app gives the joiner; None when the join is not allowed."""
        body = _request_encoder.encode(request)
        headers = signed_headers(self.signer, f"msg_{uuid.uuid4().hex}", body)
        started = time.perf_counter()
        outcome, identity = "unreachable", None
        try:
            async with asyncio.timeout(self.timeout_s), self._session().post(
                    self.url, data=body, headers=headers,
                    allow_redirects=False) as answer:
                content = await answer.content.read(_MAX_ANSWER_BYTES + 1)
                if answer.status != 200:
                    outcome = "denied"
                elif len(content) > _MAX_ANSWER_BYTES:
                    outcome = "malformed"
                else:
                    outcome, identity = identity_from(content)
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError as exc:
            log.warning("join hook unreachable: %s", type(exc).__name__)
        if outcome == "malformed":
            log.warning("join hook answered what is not an answer: the join is not allowed")
        self.answers.labels(outcome).inc()
        self.latency.observe(time.perf_counter() - started)
        return identity

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
