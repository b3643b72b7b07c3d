"""The relay's Prometheus metrics, on its health port's `/metrics`.

Counts are taken per batch, once the batch is committed (a batch that did not commit is
applied again). Rooms, members and shards are read from the relay's state when scraped;
the stream lag, from Redis then. The usage statistics keep signaltower's counter names,
so that its dashboards keep working. No room, peer id or address appears in a label.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from relay.rooms import RoomBook, RoomStats
from shared.events import EVENT_NAMES, AnyEvent

# No `_created` series beside each histogram: a process's start time says as much.
disable_created_metrics()  # type: ignore[no-untyped-call]


class Buckets:
    """A histogram observed on every read of the streams: counts in plain lists (no lock,
    as prometheus-client's Histogram takes), made a metric family when scraped."""

    __slots__ = ("name", "help", "bounds", "counts", "total")

    def __init__(self, name: str, help_text: str, bounds: tuple[float, ...]) -> None:
        self.name = name
        self.help = help_text
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last: above every bound (+Inf)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def family(self) -> HistogramMetricFamily:
        cumulative, running = [], 0
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, running))
        return HistogramMetricFamily(self.name, self.help, buckets=cumulative,
                                     sum_value=self.total)


class RelayMetrics:
    def __init__(self, books: Callable[[], list[RoomBook]]) -> None:
        self._books = books
        self.applied = dict.fromkeys(EVENT_NAMES.values(), 0)
        self.usage = {"room_created": 0, "room_closed": 0, "joined_room": 0, "leave_room": 0}
        self.stream_lag = 0  # set before each scrape (relay.readiness.stream_lag)
        self.wait_shortfalls = 0
        self.registry = CollectorRegistry()
        self.batch_events = Buckets(
            "switchboard_batch_events", "Events one read of the shard streams brought, "
            "once committed.", (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))
        self.commit_seconds = Buckets(
            "switchboard_commit_seconds", "How long a read's commits took in Redis, "
            "one script call per shard, sent together.",
            (.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5))
        self.peak_members = Histogram(
            "switchboard_room_peak_members", "The most members a room had, observed when "
            "it closes.", buckets=(1, 2, 3, 4, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry)
        self.room_duration = Histogram(
            "switchboard_room_duration_seconds", "How long rooms were open, observed when "
            "they close.", buckets=(10, 60, 300, 900, 1800, 3600, 7200, 4 * 3600, 12 * 3600,
                                   24 * 3600), registry=self.registry)
        self.registry.register(self)

    def committed(self, applied: dict[type[AnyEvent], int], stats: RoomStats) -> None:
        """A shard's batch is in Redis: count what it did."""
        for kind, count in applied.items():
            self.applied[EVENT_NAMES[kind]] += count
        if not (stats.joined or stats.left):
            return
        self.usage["room_created"] += stats.created
        self.usage["room_closed"] += stats.closed
        self.usage["joined_room"] += stats.joined
        self.usage["leave_room"] += stats.left
        for seconds, peak in stats.lifetimes:
            self.room_duration.observe(seconds)
            self.peak_members.observe(peak)

    def collect(self) -> Iterator[Metric]:
        books = self._books()
        yield GaugeMetricFamily("switchboard_shards_held", "Shards this relay holds.",
                                value=len(books))
        yield GaugeMetricFamily("switchboard_rooms", "Rooms on the shards this relay holds.",
                                value=sum(len(book.rooms) for book in books))
        yield GaugeMetricFamily("switchboard_room_members", "Members of those rooms.",
                                value=sum(len(room.members) for book in books
                                          for room in book.rooms.values()))
        yield GaugeMetricFamily("switchboard_stream_lag_events", "Events XADDed to this "
                                "relay's shard streams and not applied yet.",
                                value=self.stream_lag)
        yield CounterMetricFamily("switchboard_redis_wait_shortfalls",
                                  "Batches of commits that fewer replicas than "
                                  "SWITCHBOARD_REDIS_WAIT_REPLICAS acknowledged in time.",
                                  value=self.wait_shortfalls)
        yield self.batch_events.family()
        yield self.commit_seconds.family()
        applied = CounterMetricFamily("switchboard_events_applied",
                                      "Events applied and committed, by event.",
                                      labels=["event"])
        for event, count in self.applied.items():
            applied.add_metric([event], count)
        yield applied
        # signaltower's names (palava_*), as its dashboards read them.
        for name, help_text in (("room_created", "Rooms opened."),
                                ("room_closed", "Rooms closed (their last member left)."),
                                ("joined_room", "Joins."), ("leave_room", "Leaves.")):
            yield CounterMetricFamily(f"palava_{name}", help_text, value=self.usage[name])
