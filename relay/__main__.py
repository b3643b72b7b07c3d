"""`python -m relay`: run one relay until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from functools import partial

import uvloop
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from redis_io.clients import STOP_S, close_client, discover, redis_client
from relay.readiness import readiness_problems, stream_lag
from relay.worker import Relay
from shared.health_port import serve_health_port
from shared.logs import configure_logging
from shared.process_id import process_id
from shared.runtime import tune_garbage_collector
from shared.settings import Settings

log = logging.getLogger(__name__)

# From SIGTERM to the relay's loop ended: it finishes its batch and gives its shards back
# (within STOP_S) when Redis answers; a call to a Redis that does not answer may hold
# the loop longer (a shard read back: LOAD_S), and is then cancelled: its leases lapse.
_STOP_WITHIN_S = STOP_S + 1.0


async def serve(settings: Settings, relay_id: str) -> None:
    nodes = await discover(settings.redis_url)
    redis = redis_client(nodes)
    relay = Relay(settings, redis, nodes, relay_id)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stopping.set)
    async def metrics() -> tuple[bytes, str]:
        try:
            relay.metrics.stream_lag = await stream_lag(
                redis, [shard.stream for shard in relay.owned.values()])
            if relay.webhooks is not None:
                await relay.webhooks.measure_backlog()
        except RedisError as exc:  # the rest of the metrics are still worth having
            log.warning("stream lag or webhook backlog unknown: %s", exc)
        return generate_latest(relay.metrics.registry), CONTENT_TYPE_LATEST

    health = None
    if settings.relay_health_port:
        health = await serve_health_port(
            settings.host, settings.relay_health_port,
            partial(readiness_problems, redis, settings.shards), metrics)
    try:
        await _run_until_stopped(relay)
    finally:
        if health is not None:
            health.close()
        await close_client(redis)


async def _run_until_stopped(relay: Relay) -> None:
    """`relay.run()`, cancelled if it has not ended _STOP_WITHIN_S after SIGTERM."""
    running = asyncio.ensure_future(relay.run())
    stopping = asyncio.ensure_future(relay.stopping.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.wait_for(running, _STOP_WITHIN_S)
    except TimeoutError:
        log.warning("Redis did not answer within %.0f s of SIGTERM: stopped without "
                    "giving the shards back (their leases lapse)", _STOP_WITHIN_S)
    finally:
        stopping.cancel()


def main() -> None:
    settings = Settings.from_env()
    relay_id = process_id("relay")
    configure_logging(settings.log_level, settings.log_format, {"relay": relay_id})
    tune_garbage_collector()
    uvloop.run(serve(settings, relay_id))


if __name__ == "__main__":
    main()
