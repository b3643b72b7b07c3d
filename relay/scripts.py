"""Lua scripts run by EVALSHA inside pipelines, reloaded when Redis has forgotten them."""

from __future__ import annotations

import hashlib

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from shared.resp import pack


class LuaScript:
    """A script known by its SHA1; `queue` adds a call to a redis-py pipeline, `command`
    packs one for a RespConnection.

    A restarted Redis has an empty script cache: calls then fail with NOSCRIPT, which the
    worker treats like any Redis error, calling `load` before it resumes.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def queue(self, pipe: Pipeline, keys: list[str], args: list[str | bytes | int]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)

    def command(self, keys: list[str], args: list[str | bytes | int]) -> bytes:
        """The EVALSHA call as RESP, for the relay's hot path (shared.resp)."""
        return pack(b"EVALSHA", self.sha, len(keys), *keys, *args)

    async def load(self, redis: Redis) -> None:
        await redis.script_load(self.source)
