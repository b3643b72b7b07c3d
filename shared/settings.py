"""Settings, read once from environment variables (documented in README.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

# Where `npm install` (scripts/setup.sh) puts palava-client in a checkout of the project.
DEFAULT_PALAVA_BUNDLE = str(
    Path(__file__).resolve().parent.parent / "node_modules" / "palava-client" / "palava.bundle.js"
)


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway or relay can be told. Field names map to env names below."""

    host: str = "0.0.0.0"
    port: int = 8080
    redis_url: str = "redis://127.0.0.1:6379/0"
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line
    # Rooms are hashed onto this many shard streams; every process must agree on it.
    shards: int = 64
    room_capacity: int = 100
    # Members of a star room (protocol.md, "Star rooms"): a join costs O(1) frames there.
    star_room_capacity: int = 1000
    shutdown_seconds: int = 3
    # A relay's hold on a shard expires this long after its last renewal; a dead relay's
    # shards are taken over at most ~0.3 s after that.
    lease_ttl_ms: int = 4000
    # Events a relay reads from its shard streams in one XREADGROUP.
    batch_size: int = 256
    # After a read that found less than a full batch, a relay waits this long before the
    # next, so that events arriving meanwhile share one read and one commit per shard:
    # at moderate traffic most of Redis's and the relay's work is per read and per
    # commit, not per event. Costs at most this much latency; not taken when traffic is
    # too thin to fill it (shared/linger.py); 0 reads again at once.
    relay_linger_ms: float = 1.0
    # The same for a gateway's XADDs to each Redis master: a wait before the next round
    # trip, so that more sockets' events share one write and one read.
    gateway_linger_ms: float = 1.0
    # After each batch of XADDs and of commits, WAIT for this many replicas to have it
    # (0: don't): a master that fails then loses less of what it acknowledged, at the
    # cost of a replication round trip per batch.
    redis_wait_replicas: int = 0
    # XADD MAXLEN ~: how many unapplied events a shard stream keeps at most.
    stream_maxlen: int = 100_000
    max_frame_bytes: int = 64 * 1024
    # Client frames per connection: sustained rate and burst (protocol.md, "Limits").
    frame_rate: float = 50.0
    frame_burst: int = 200
    # Frames of any kind (pings, pongs, continuations too) and bytes a socket may send:
    # sustained per second, and bursts. Far above an honest client (which stays within
    # the frame rate above): beyond, the socket is closed 1008 before its frames are
    # parsed, so that one client cannot hold the gateway's event loop.
    wire_frame_rate: float = 200.0
    wire_frame_burst: int = 1000
    wire_byte_rate: float = 2.0 * 1024 * 1024
    wire_byte_burst: int = 16 * 1024 * 1024
    # Frames of one fragmented message, beyond which: close 1009.
    max_fragments: int = 1024
    send_buffer_bytes: int = 1024 * 1024
    ping_interval_s: float = 20.0
    idle_timeout_s: float = 60.0
    # A gateway that has not renewed its heartbeat for this long is dead: relays remove
    # its peers from their rooms.
    gateway_ttl_ms: int = 7000
    # The relay's /healthz, /readyz and /metrics; 0 turns them off.
    relay_health_port: int = 8081
    # The gateway's /metrics on a port of its own (and then there only); 0: on PORT.
    metrics_port: int = 0
    # The palava-client browser bundle that the demo page (/demo) loads.
    palava_bundle: str = DEFAULT_PALAVA_BUNDLE
    # Resume (protocol.md): how long a peer whose socket dropped stays a member, and how
    # many of its latest frames are kept for it.
    resume_grace_s: float = 15.0
    resume_buffer_frames: int = 1000
    # TURN credentials (coturn's use-auth-secret) and ICE servers for joined_room.
    turn_secret: str = field(default="", repr=False)
    turn_ttl_s: int = 10800
    ice_urls: str = ""
    # Join tokens: an HS256 secret and/or a PEM public key (RS256/ES256), or a file of it.
    join_secret: str = field(default="", repr=False)
    join_public_key: str = ""
    # WebSocket upgrades whose Origin is not on this comma-separated list get 403.
    allowed_origins: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for setting in fields(cls):
            raw = env.get(ENV_NAMES[setting.name])
            if raw is None or raw == "":
                continue
            kind = type(getattr(cls(), setting.name))
            try:
                values[setting.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{ENV_NAMES[setting.name]}={raw!r} is not a valid {kind.__name__}"
                ) from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that would make the service misbehave rather than fail."""
        for name in ("shards", "room_capacity", "star_room_capacity", "lease_ttl_ms",
                     "batch_size", "stream_maxlen", "max_frame_bytes", "send_buffer_bytes",
                     "gateway_ttl_ms", "frame_burst", "resume_buffer_frames", "turn_ttl_s",
                     "wire_frame_burst", "wire_byte_burst", "max_fragments"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{ENV_NAMES[name]} must be at least 1")
        for name in ("frame_rate", "wire_frame_rate", "wire_byte_rate"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{ENV_NAMES[name]} must be positive")
        # Data frames are frames too: a wire bound below the frame rate would close the
        # clients that the frame rate lets through.
        for wire, data in (("wire_frame_rate", "frame_rate"), ("wire_frame_burst", "frame_burst")):
            if getattr(self, wire) < getattr(self, data):
                raise SettingsError(f"{ENV_NAMES[wire]} must be at least {ENV_NAMES[data]} "
                                    f"({getattr(self, data):g})")
        for name in ("relay_linger_ms", "gateway_linger_ms"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{ENV_NAMES[name]} must not be negative")
        if self.redis_wait_replicas < 0:
            raise SettingsError(f"{ENV_NAMES['redis_wait_replicas']} must not be negative")
        if self.shutdown_seconds < 0:
            raise SettingsError(f"{ENV_NAMES['shutdown_seconds']} must not be negative")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"{ENV_NAMES['log_format']} must be text or json")
        if self.resume_grace_s <= 0:
            raise SettingsError(f"{ENV_NAMES['resume_grace_s']} must be positive")
        for url in self.ice_url_list:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise SettingsError(f"{ENV_NAMES['ice_urls']}: {url!r} is not a stun:, "
                                    "turn: or turns: URL")

    @property
    def ice_url_list(self) -> list[str]:
        return [url.strip() for url in self.ice_urls.split(",") if url.strip()]

    @property
    def allowed_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.allowed_origins.split(",")
                if origin.strip()]


ENV_NAMES: dict[str, str] = {
    "host": "HOST",
    "port": "PORT",
    "redis_url": "REDIS_URL",
    "log_level": "LOG_LEVEL",
    "log_format": "SWITCHBOARD_LOG_FORMAT",
    "shards": "SWITCHBOARD_SHARDS",
    "room_capacity": "SWITCHBOARD_ROOM_CAPACITY",
    "star_room_capacity": "SWITCHBOARD_STAR_ROOM_CAPACITY",
    "shutdown_seconds": "SWITCHBOARD_SHUTDOWN_SECONDS",
    "lease_ttl_ms": "SWITCHBOARD_LEASE_TTL_MS",
    "batch_size": "SWITCHBOARD_BATCH_SIZE",
    "relay_linger_ms": "SWITCHBOARD_RELAY_LINGER_MS",
    "gateway_linger_ms": "SWITCHBOARD_GATEWAY_LINGER_MS",
    "redis_wait_replicas": "SWITCHBOARD_REDIS_WAIT_REPLICAS",
    "stream_maxlen": "SWITCHBOARD_STREAM_MAXLEN",
    "max_frame_bytes": "SWITCHBOARD_MAX_FRAME_BYTES",
    "frame_rate": "SWITCHBOARD_FRAME_RATE",
    "frame_burst": "SWITCHBOARD_FRAME_BURST",
    "wire_frame_rate": "SWITCHBOARD_WIRE_FRAME_RATE",
    "wire_frame_burst": "SWITCHBOARD_WIRE_FRAME_BURST",
    "wire_byte_rate": "SWITCHBOARD_WIRE_BYTE_RATE",
    "wire_byte_burst": "SWITCHBOARD_WIRE_BYTE_BURST",
    "max_fragments": "SWITCHBOARD_MAX_FRAGMENTS",
    "send_buffer_bytes": "SWITCHBOARD_SEND_BUFFER_BYTES",
    "ping_interval_s": "SWITCHBOARD_PING_INTERVAL",
    "idle_timeout_s": "SWITCHBOARD_IDLE_TIMEOUT",
    "gateway_ttl_ms": "SWITCHBOARD_GATEWAY_TTL_MS",
    "relay_health_port": "SWITCHBOARD_RELAY_HEALTH_PORT",
    "metrics_port": "SWITCHBOARD_METRICS_PORT",
    "palava_bundle": "SWITCHBOARD_PALAVA_BUNDLE",
    "resume_grace_s": "SWITCHBOARD_RESUME_GRACE_S",
    "resume_buffer_frames": "SWITCHBOARD_RESUME_BUFFER_FRAMES",
    "turn_secret": "SWITCHBOARD_TURN_SECRET",
    "turn_ttl_s": "SWITCHBOARD_TURN_TTL",
    "ice_urls": "SWITCHBOARD_ICE_URLS",
    "join_secret": "SWITCHBOARD_JOIN_SECRET",
    "join_public_key": "SWITCHBOARD_JOIN_PUBLIC_KEY",
    "allowed_origins": "SWITCHBOARD_ALLOWED_ORIGINS",
}
