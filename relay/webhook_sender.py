"""Delivering the webhooks of the shards a relay holds (docs/protocol.md, "Webhooks";
docs/architecture.md, rule 11).

A shard's commits record its rooms' lifecycle events in the shard's outbox (a Redis
stream); this reads them, off the hot path, and POSTs each to every URL, signed. A room's
next event goes only once the previous one is answered 2xx by every URL, so each room's
events arrive in order; rooms have a task each and never wait for each other. A delivered
event is deleted from the outbox at once: what the outbox holds is what is not delivered
yet, which the relay that takes the shard over sends again (the same `id`: at least once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from redis.exceptions import RedisError
from standardwebhooks.webhooks import Webhook

from redis_io.clients import CALL_S, RedisClient, bounded
from relay.readers import pause
from shared import keys
from shared.backoff import Backoff
from shared.settings import Settings
from shared.stream_ids import stream_order
from shared.webhook_events import delivery_decoder
from shared.webhook_signing import signed_headers

log = logging.getLogger(__name__)

# How one POST ended (a metrics label).
OUTCOMES = ("delivered", "failed", "timeout", "unreachable")
# An event not answered 2xx by every URL is POSTed again after 1 s, 2, 4, ... at most 5 min
# apart (docs/protocol.md, "Webhooks").
FIRST_RETRY_S, LAST_RETRY_S = 1.0, 300.0
# Retries woken by their endpoint's recovery go within this, spread at random.
WAKE_SPREAD_S = 1.0
# The outbox is read this many entries at a time. Only our own commits add to it, and each
# that does wakes its reader; else it is looked at again after a second when that is
# wanted (a Redis error, reading held back by the backlog), and after ten anyway (a relay
# holds dozens of shards: polling them all each second cost as much CPU as idling).
_READ_COUNT = 500
_RETRY_S = 1.0
_POLL_S = 10.0
# A relay that stops or gives a shard away lets the POSTs in flight end this long first:
# their events would otherwise be sent again by the next holder.
FINISH_S = 1.0


@dataclass(slots=True)
class Pending:
    entry_id: str
    body: bytes
    dropped: bool = False  # pushed out of the outbox by its bound: no further attempt


class WebhookSender:
    """The relay's deliveries: an outbox reader per shard held, a task per room with
    events waiting, and one pool of keep-alive connections to the app (aiohttp)."""

    def __init__(self, settings: Settings, redis: RedisClient,
                 registry: CollectorRegistry) -> None:
        self.urls = settings.webhook_url_list
        self.signer = Webhook(settings.webhook_secret)
        self.timeout_s = settings.webhook_timeout_ms / 1000
        self.retry_ms = settings.webhook_retry_s * 1000
        self.bound = settings.webhook_backlog
        self.redis = redis
        self.outboxes: dict[int, Outbox] = {}
        self._http: aiohttp.ClientSession | None = None
        self.deliveries = Counter("switchboard_webhook_deliveries", "Webhook POSTs, by "
                                  "outcome (a retry is another POST).", ["outcome"],
                                  registry=registry)
        for outcome in OUTCOMES:
            self.deliveries.labels(outcome)
        self.dropped = Counter("switchboard_webhooks_dropped", "Webhooks given up: not "
                               "delivered within SWITCHBOARD_WEBHOOK_RETRY_S "
                               "(retry_window), or pushed out of a full outbox (backlog).",
                               ["reason"], registry=registry)
        for reason in ("retry_window", "backlog"):
            self.dropped.labels(reason)
        self.latency = Histogram("switchboard_webhook_delivery_seconds", "From the state "
                                 "change to the app's 2xx answer.", registry=registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                          5, 10, 30, 60, 300, 900, 3600))
        # By URL, while retries wait on it: set (and dropped) when it answers 2xx again.
        self._back_up: dict[str, asyncio.Event] = {}
        self._answered_at: dict[str, float] = {}  # by URL: its last 2xx (monotonic s)
        self.backlog = Gauge("switchboard_webhook_backlog", "Webhooks waiting in the "
                             "outboxes of the shards this relay holds.", registry=registry)

    async def measure_backlog(self) -> None:
        """Read the outboxes' lengths into the backlog gauge (when metrics are scraped)."""
        pipe = self.redis.pipeline(transaction=False)
        for outbox in self.outboxes.values():
            pipe.xlen(outbox.stream)
        self.backlog.set(sum(await bounded(pipe.execute(), CALL_S)))

    def start(self, number: int) -> None:
        """Deliver the shard's outbox (the relay took the shard)."""
        if number not in self.outboxes:
            self.outboxes[number] = Outbox(self, number)

    def stop(self, number: int) -> None:
        """Stop at once (the shard was lost: another relay holds it now)."""
        outbox = self.outboxes.pop(number, None)
        if outbox is not None:
            outbox.cancel()

    async def release(self, numbers: list[int]) -> None:
        """Stop, letting POSTs in flight end first (the relay gives the shards away)."""
        outboxes = [self.outboxes.pop(n) for n in numbers if n in self.outboxes]
        await asyncio.gather(*(outbox.finish() for outbox in outboxes))

    def wake(self, number: int) -> None:
        """A commit of ours recorded events there."""
        outbox = self.outboxes.get(number)
        if outbox is not None:
            outbox.woken.set()

    async def close(self) -> None:
        await self.release(list(self.outboxes))
        if self._http is not None:
            await self._http.close()

    async def deliver(self, pending: Pending, stopping: Callable[[], bool]) -> bool:
        """POST the event to every URL until each answered 2xx, retrying with backoff
        until the retry window (from the event's time) is over: then it is dropped. True
        when done with it (delivered or dropped); False when `stopping` said no retry
        is to start (the shard is being given away: its next holder sends the event)."""
        head = delivery_decoder.decode(pending.body)
        waiting = self.urls
        backoff = Backoff(first=FIRST_RETRY_S, most=LAST_RETRY_S)
        may_wake = True  # woken early once at most: an endpoint refusing this event alone
        # (and answering others) must not have it retried at the pace of their answers
        while not pending.dropped:
            tried_at = time.monotonic()
            answered = await asyncio.gather(*(self._post(url, head.id, pending.body)
                                              for url in waiting))
            waiting = [url for url, ok in zip(waiting, answered, strict=True) if not ok]
            now_ms = time.time() * 1000
            if not waiting:
                self.latency.observe(max(now_ms - head.at, 0) / 1000)
                return True
            delay = backoff.next()
            if now_ms + delay * 1000 > head.at + self.retry_ms:
                self.dropped.labels("retry_window").inc()
                log.warning("webhook %s (%s) not delivered within the retry window: "
                            "dropped", head.id, head.type)
                return True
            if may_wake:
                may_wake = not await self._until_back_up(waiting, delay, tried_at)
            else:
                await asyncio.sleep(delay)
            if stopping():
                return False  # the shard's next holder sends it
        log.warning("webhook %s (%s) pushed out of a full outbox while it was retried: "
                    "dropped", head.id, head.type)
        return True

    async def _until_back_up(self, urls: list[str], seconds: float, since: float) -> bool:
        """Wait `seconds`, or until one of `urls` answers another event 2xx (or has since
        `since`, while this event's attempt was under way): an endpoint back after an
        outage gets what waited at once, not after backoffs of up to 5 min. True when
        woken so; then the retry waits up to a second more, at random, so that all that
        waited does not reach the app (and the connection pool) in the same instant."""
        if not any(self._answered_at.get(url, 0.0) > since for url in urls):
            events = [self._back_up.setdefault(url, asyncio.Event()) for url in urls]
            waits = [asyncio.ensure_future(event.wait()) for event in events]
            try:
                done, _ = await asyncio.wait(waits, timeout=seconds,
                                             return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
            if not done:
                return False
        await asyncio.sleep(random.uniform(0.0, WAKE_SPREAD_S))
        return True

    async def _post(self, url: str, message_id: str, body: bytes) -> bool:
        outcome = "unreachable"
        try:
            async with asyncio.timeout(self.timeout_s), self._session().post(
                    url, data=body, headers=signed_headers(self.signer, message_id, body),
                    allow_redirects=False) as answer:
                outcome = "delivered" if 200 <= answer.status < 300 else "failed"
        except TimeoutError:
            outcome = "timeout"
        except aiohttp.ClientError as exc:
            log.debug("webhook endpoint unreachable: %s", type(exc).__name__)
        self.deliveries.labels(outcome).inc()
        if outcome != "delivered":
            return False
        self._answered_at[url] = time.monotonic()
        back_up = self._back_up.pop(url, None)
        if back_up is not None:
            back_up.set()
        return True

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30))
        return self._http


@dataclass(eq=False)
class Outbox:
    """One shard's outbox: read in order, each room's events queued for its task."""

    sender: WebhookSender
    number: int
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    rooms: dict[str, deque[Pending]] = field(default_factory=dict)
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    held = 0  # events read and not yet delivered or dropped
    last = ""  # the id of the last entry read
    dropped_seen: int | None = None  # the outbox's drop counter when last read
    finishing = False

    def __post_init__(self) -> None:
        self.stream = keys.webhook_outbox(self.number)
        self.reader = asyncio.get_running_loop().create_task(self._read_forever())

    def cancel(self) -> None:
        self.reader.cancel()
        for task in self.tasks.values():
            task.cancel()

    async def finish(self) -> None:
        """No further POST starts; those in flight get FINISH_S to end."""
        self.finishing = True
        self.reader.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=FINISH_S)
        self.cancel()

    async def _read_forever(self) -> None:
        while True:
            self.woken.clear()
            quiet_s = _RETRY_S
            try:
                while await self._read():
                    pass
                if self.held < self.sender.bound:
                    quiet_s = _POLL_S
            except RedisError as exc:
                log.warning("shard %d: reading the webhook outbox failed: %s",
                            self.number, exc)
            except Exception:  # a bug: logged, and the reader goes on (deliveries stop else)
                log.exception("shard %d: reading the webhook outbox failed", self.number)
            await pause(self.woken, quiet_s)

    async def _read(self) -> bool:
        """Queue what was recorded since the last read; True when there may be more."""
        sender = self.sender
        redis = sender.redis
        pipe = redis.pipeline(transaction=False)
        reading = self.held < sender.bound  # else wait for deliveries to catch up
        if reading:
            pipe.xrange(self.stream, f"({self.last}" if self.last else "-", "+",
                        count=_READ_COUNT)
        pipe.get(keys.webhooks_dropped(self.number))
        replies = await bounded(pipe.execute(), CALL_S)
        entries = replies.pop(0) if reading else []
        dropped = int(replies[0] or 0)
        if self.dropped_seen is not None and dropped > self.dropped_seen:
            sender.dropped.labels("backlog").inc(dropped - self.dropped_seen)
            await self._forget_trimmed()
        self.dropped_seen = dropped
        for entry_id, fields in entries:
            pending = Pending(entry_id.decode(), fields[b"b"])
            room = fields[b"r"].decode()
            queue = self.rooms.get(room)
            if queue is None:
                queue = self.rooms[room] = deque()
            queue.append(pending)
            self.held += 1
            if room not in self.tasks:
                self.tasks[room] = asyncio.get_running_loop().create_task(
                    self._deliver_room(room, queue))
        if entries:
            self.last = entries[-1][0].decode()
        return len(entries) == _READ_COUNT

    async def _forget_trimmed(self) -> None:
        """The outbox's bound dropped its oldest events (the commit counted them): those
        read already go too. A room's first is its task's: marked, it is not tried again
        (one being POSTed now may still be delivered)."""
        first = await bounded(self.sender.redis.xrange(self.stream, "-", "+", count=1),
                              CALL_S)
        oldest = stream_order(first[0][0] or b"0" if first else self.last or "0")
        for queue in self.rooms.values():
            for pending in queue:
                pending.dropped = stream_order(pending.entry_id) < oldest
            kept = [p for i, p in enumerate(queue) if i == 0 or not p.dropped]
            self.held -= len(queue) - len(kept)
            queue.clear()
            queue.extend(kept)

    async def _deliver_room(self, room: str, queue: deque[Pending]) -> None:
        sender = self.sender
        try:
            while queue and not self.finishing:
                pending = queue[0]
                if not await sender.deliver(pending, lambda: self.finishing):
                    return
                queue.popleft()
                self.held -= 1
                if self.held == sender.bound - 1:
                    self.woken.set()  # reading waited for this: it goes on now
                try:
                    await bounded(sender.redis.xdel(self.stream, pending.entry_id), CALL_S)
                except RedisError as exc:  # then the next holder sends it again
                    log.warning("shard %d: could not delete a delivered webhook: %s",
                                self.number, exc)
        finally:
            if self.rooms.get(room) is queue and not queue:
                del self.rooms[room]
            if self.tasks.get(room) is asyncio.current_task():
                del self.tasks[room]
