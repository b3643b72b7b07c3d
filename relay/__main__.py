"""`python -m relay`: run one relay until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import signal

import uvloop
from redis.asyncio import Redis

from relay.health import serve_health
from relay.worker import Relay
from shared.logs import configure_logging
from shared.runtime import tune_garbage_collector
from shared.settings import Settings


async def serve(settings: Settings) -> None:
    redis = Redis.from_url(settings.redis_url, health_check_interval=10)
    relay = Relay(settings, redis)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, relay.stopping.set)
    health = None
    if settings.relay_health_port:
        health = await serve_health(settings.host, settings.relay_health_port,
                                    relay.readiness_problems)
    try:
        await relay.run()
    finally:
        if health is not None:
            health.close()
        await redis.aclose()


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    tune_garbage_collector()
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
