"""The gateway's Prometheus metrics, for `/metrics`.

Every relayed message passes the counters here, so they are plain integers on the hot
path, read into metric families only when Prometheus scrapes (a prometheus-client Counter
takes a lock per increment). Labels stay bounded: client event names, the protocol's
error texts, the server's close codes; never a room, a peer id or an address.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import msgspec
from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.session import frame_counts
from shared.close_codes import CloseCode
from shared.frame_bytes import event_prefix
from shared.frames import ErrorText

# How a socket ended: the close code the server sent, "client" when the client closed
# first, "lost" when TCP went without a closing handshake; "other" for a code not listed
# (a bug of ours, or websockets choosing one we did not expect): labels stay bounded.
CLOSE_LABELS = tuple(str(int(code)) for code in CloseCode) + ("client", "lost", "other")
# No `_created` series beside each histogram: a process's start time says as much.
disable_created_metrics()  # type: ignore[no-untyped-call]
_ERROR_PREFIX = event_prefix("error")
_ERROR_TEXTS = frozenset(text.value for text in ErrorText)


class _ErrorHead(msgspec.Struct):
    message: str = ""


_error_head = msgspec.json.Decoder(_ErrorHead)


class GatewayMetrics:
    """The gateway's counts, and the registry that exposes them."""

    def __init__(self, connections: Callable[[], int],
                 redis_reconnects: Callable[[], int],
                 wait_shortfalls: Callable[[], int] = lambda: 0) -> None:
        self.received = frame_counts()  # sessions count here (Session.handle)
        self.sent = 0
        self.errors = dict.fromkeys(sorted(_ERROR_TEXTS), 0)
        self.closes = dict.fromkeys(CLOSE_LABELS, 0)
        self._connections = connections
        self._redis_reconnects = redis_reconnects
        self._wait_shortfalls = wait_shortfalls
        self.registry = CollectorRegistry()
        self.durations = Histogram(
            "switchboard_connection_duration_seconds", "How long WebSockets were open, "
            "observed when they close.", registry=self.registry,
            buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600))
        self.loop_lag = Histogram(
            "switchboard_event_loop_lag_seconds", "How late the event loop ran a timer: "
            "the longest any socket, or the heartbeat, waited for its turn.",
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.registry.register(self)

    def frames_sent(self, frames: list[bytes]) -> None:
        """Frames handed to a socket (Outbox): counted, errors by their text."""
        self.sent += len(frames)
        for frame in frames:
            if frame.startswith(_ERROR_PREFIX):
                text = _error_head.decode(frame).message
                if text in self.errors:
                    self.errors[text] += 1

    def closed(self, label: str, seconds: float) -> None:
        """A socket ended (never raises: it runs as the socket's cleanup ends)."""
        if label not in self.closes:
            label = "other"
        self.closes[label] += 1
        self.durations.observe(max(seconds, 0.0))

    async def watch_loop_lag(self, interval: float = 0.25) -> None:
        """Observe, every `interval`, how much later than asked the loop woke us: what
        one busy socket would cost all the others (docs/architecture.md, rule 6)."""
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time() + interval
            await asyncio.sleep(interval)
            self.loop_lag.observe(max(loop.time() - asked, 0.0))

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("switchboard_connections", "Open WebSockets.",
                                value=self._connections())
        received = CounterMetricFamily("switchboard_frames_received",
                                       "Frames from clients, by event.", labels=["event"])
        for event, count in self.received.items():
            received.add_metric([event], count)
        yield received
        yield CounterMetricFamily("switchboard_frames_sent", "Frames written to clients.",
                                  value=self.sent)
        errors = CounterMetricFamily("switchboard_errors_sent",
                                     "error frames sent to clients, by text.",
                                     labels=["message"])
        for text, count in self.errors.items():
            errors.add_metric([text], count)
        yield errors
        closes = CounterMetricFamily("switchboard_closes", "WebSockets ended, by how.",
                                     labels=["code"])
        for label, count in self.closes.items():
            closes.add_metric([label], count)
        yield closes
        yield CounterMetricFamily("switchboard_redis_reconnects",
                                  "Connections to Redis made anew after one was lost.",
                                  value=self._redis_reconnects())
        yield CounterMetricFamily("switchboard_redis_wait_shortfalls",
                                  "Batches of XADDs that fewer replicas than "
                                  "SWITCHBOARD_REDIS_WAIT_REPLICAS acknowledged in time.",
                                  value=self._wait_shortfalls())
