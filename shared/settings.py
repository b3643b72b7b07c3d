"""Settings, read once from environment variables.

Each setting is declared once, as a field of `Settings`: its name, type and default, and
(through `setting`) its environment variable, the bound its value must keep, the
meaning that README.md's table of settings gives it and, for a setting a client can
notice, its effect in docs/protocol.md's table. `from_env`, `check`, `ENV_NAMES`,
`settings_table` and `protocol_settings_table` (the two tables, which tests compare with
README.md and docs/protocol.md) all read those declarations.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook

from shared.client_address import TrustedProxies

# Where `npm install` (scripts/setup.sh) puts palava-client in a checkout of the project.
DEFAULT_PALAVA_BUNDLE = str(
    Path(__file__).resolve().parent.parent / "node_modules" / "palava-client" / "palava.bundle.js"
)

_T = TypeVar("_T", int, float, str)


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class Bound(Enum):
    """The values a number setting admits; its value is what the refusal says."""

    AT_LEAST_ONE = "must be at least 1"
    POSITIVE = "must be positive"
    NOT_NEGATIVE = "must not be negative"

    def refuses(self, value: float) -> bool:
        if self is Bound.AT_LEAST_ONE:
            return value < 1
        if self is Bound.POSITIVE:
            return value <= 0
        return value < 0


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a setting's field holds besides its name, type and default."""

    kind: type[int] | type[float] | type[str]  # what its variable's text is read as
    env: str  # the environment variable that sets it
    meaning: str  # its row in README.md's table of settings
    bound: Bound | None = None
    one_of: tuple[str, ...] = ()  # the only values admitted, when not empty
    shown_default: str = ""  # the tables' default, when not the field's own
    # Its row in docs/protocol.md's table of the settings a client can notice ("": none).
    protocol: str = ""


MIN_ADMIN_KEY_LENGTH = 16


def setting(default: _T, env: str, meaning: str, *, bound: Bound | None = None,
            one_of: tuple[str, ...] = (), shown_default: str = "", protocol: str = "",
            secret: bool = False) -> _T:
    """A field of `Settings`, declared with everything else that is said about it.

    A `secret` setting stays out of the settings' repr (and so out of logs).
    """
    declaration = Declaration(type(default), env, meaning, bound, one_of, shown_default,
                              protocol)
    return field(default=default, repr=not secret, metadata={Declaration: declaration})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a gateway or relay can be told, in the order README.md lists it."""

    port: int = setting(8080, "PORT", "gateway HTTP/WebSocket port")
    host: str = setting("0.0.0.0", "HOST", "gateway listen address")
    # A gateway without a proxy in front (a VM, a Procfile host) serves TLS itself.
    tls_cert: str = setting(
        "", "SWITCHBOARD_TLS_CERT",
        "PEM certificate chain (path): the gateway serves `https://` and `wss://` on `PORT`",
        shown_default="(unset)")
    tls_key: str = setting(
        "", "SWITCHBOARD_TLS_KEY", "PEM private key (path) of `SWITCHBOARD_TLS_CERT`",
        shown_default="(unset)")
    trusted_proxies: str = setting(
        "", "SWITCHBOARD_TRUSTED_PROXIES",
        "comma-separated addresses or networks (CIDR) of reverse proxies whose "
        "`X-Forwarded-For` names the client (in the logs)", shown_default="(unset: none)")
    redis_url: str = setting(
        "redis://127.0.0.1:6379/0", "REDIS_URL",
        "`redis://`, `rediss://` (TLS) or `unix://`; for a Redis Cluster, any one node")
    log_level: str = setting("info", "LOG_LEVEL", "debug, info, warning, error")
    log_format: str = setting("text", "SWITCHBOARD_LOG_FORMAT",
                              "`text`, or `json`: one JSON object per line",
                              one_of=("text", "json"))
    metrics_port: int = setting(
        0, "SWITCHBOARD_METRICS_PORT",
        "the gateway's `/metrics` on this port alone, beside `/healthz` and `/readyz` (else on "
        "`PORT`)", shown_default="(unset)")
    # Every process must agree on it (docs/architecture.md).
    shards: int = setting(64, "SWITCHBOARD_SHARDS",
                          "shard streams rooms are hashed onto; the same for every process",
                          bound=Bound.AT_LEAST_ONE)
    room_capacity: int = setting(100, "SWITCHBOARD_ROOM_CAPACITY",
                                 "peers per room; beyond: error `room is full`",
                                 bound=Bound.AT_LEAST_ONE, protocol="members of a mesh room")
    # docs/protocol.md, "Star rooms": a join costs O(1) frames there.
    star_room_capacity: int = setting(
        1000, "SWITCHBOARD_STAR_ROOM_CAPACITY",
        "members of a star room (host included); beyond: error `room is full`",
        bound=Bound.AT_LEAST_ONE, protocol="members of a star room")
    shutdown_seconds: int = setting(3, "SWITCHBOARD_SHUTDOWN_SECONDS",
                                    "notice given to sockets before a gateway stops",
                                    bound=Bound.NOT_NEGATIVE, protocol="`shutdown.seconds`")
    # A relay's hold on a shard expires this long after its last renewal.
    lease_ttl_ms: int = setting(
        4000, "SWITCHBOARD_LEASE_TTL_MS",
        "a dead relay's shards are taken over after this (+ at most 0.3 s)",
        bound=Bound.AT_LEAST_ONE)
    batch_size: int = setting(256, "SWITCHBOARD_BATCH_SIZE",
                              "events a relay reads per shard stream per XREADGROUP",
                              bound=Bound.AT_LEAST_ONE)
    # At moderate traffic most of Redis's and the relay's work is per read and per commit,
    # not per event (shared/linger.py decides when the wait is worth it).
    relay_linger_ms: float = setting(
        1.0, "SWITCHBOARD_RELAY_LINGER_MS",
        "how long a relay waits after a read that found less than a full batch, so that the "
        "next read and commit carry more. The wait is skipped when, at the rate the last "
        "reads saw, fewer than 2 events would come (under 2,000 events/s per reader at "
        "1 ms): at most this much added latency, none at thin traffic; 0 turns it off",
        bound=Bound.NOT_NEGATIVE)
    gateway_linger_ms: float = setting(
        1.0, "SWITCHBOARD_GATEWAY_LINGER_MS",
        "the same for a gateway's XADDs: how long it waits after a round trip to a Redis "
        "master before the next, so that more sockets' events share one write; skipped at "
        "thin traffic (under 2,000 events/s per master at 1 ms) and after a round trip of "
        "64 events or more; 0 turns it off",
        bound=Bound.NOT_NEGATIVE)
    # A master that fails then loses less of what it acknowledged, at the cost of a
    # replication round trip per batch.
    redis_wait_replicas: int = setting(
        0, "SWITCHBOARD_REDIS_WAIT_REPLICAS",
        "WAIT for this many replicas after each batch of XADDs and of commits "
        "(see \"Redis Cluster\")",
        bound=Bound.NOT_NEGATIVE)
    stream_maxlen: int = setting(100_000, "SWITCHBOARD_STREAM_MAXLEN",
                                 "unapplied events a shard stream keeps (XADD MAXLEN ~)",
                                 bound=Bound.AT_LEAST_ONE)
    # The limits of docs/protocol.md, "Limits".
    max_frame_bytes: int = setting(64 * 1024, "SWITCHBOARD_MAX_FRAME_BYTES",
                                   "larger client frames: close 1009",
                                   bound=Bound.AT_LEAST_ONE, protocol="largest message")
    frame_rate: float = setting(
        50.0, "SWITCHBOARD_FRAME_RATE",
        "client frames per second per socket, sustained; beyond: error `rate limit exceeded`",
        bound=Bound.POSITIVE, protocol="messages per second per socket, sustained")
    frame_burst: int = setting(
        200, "SWITCHBOARD_FRAME_BURST",
        "frames a socket may send at once; persistent abuse: close 1008",
        bound=Bound.AT_LEAST_ONE, protocol="messages a socket may send at once")
    # The wire limits are far above an honest client (which stays within the frame rate):
    # they close a socket before its frames are parsed, so that one client cannot hold the
    # gateway's event loop.
    wire_frame_rate: float = setting(
        200.0, "SWITCHBOARD_WIRE_FRAME_RATE",
        "frames of any kind (pings, pongs, continuations, data) per second per socket, "
        "sustained; beyond the burst: close 1008 `too many frames`, before they are parsed. "
        "At least `SWITCHBOARD_FRAME_RATE`",
        bound=Bound.POSITIVE, protocol="frames of any kind per second per socket, sustained")
    wire_frame_burst: int = setting(
        1000, "SWITCHBOARD_WIRE_FRAME_BURST",
        "frames of any kind a socket may send at once; at least `SWITCHBOARD_FRAME_BURST`",
        bound=Bound.AT_LEAST_ONE, protocol="frames of any kind a socket may send at once")
    wire_byte_rate: float = setting(
        2.0 * 1024 * 1024, "SWITCHBOARD_WIRE_BYTE_RATE",
        "bytes per second per socket, sustained; beyond the burst: close 1008 `too many bytes`",
        bound=Bound.POSITIVE, protocol="bytes per second per socket, sustained")
    wire_byte_burst: int = setting(16 * 1024 * 1024, "SWITCHBOARD_WIRE_BYTE_BURST",
                                   "bytes a socket may send at once", bound=Bound.AT_LEAST_ONE,
                                   protocol="bytes a socket may send at once")
    max_fragments: int = setting(
        1024, "SWITCHBOARD_MAX_FRAGMENTS",
        "frames of one fragmented message; beyond: close 1009 `too many fragments`",
        bound=Bound.AT_LEAST_ONE, protocol="fragments of one message")
    send_buffer_bytes: int = setting(
        1024 * 1024, "SWITCHBOARD_SEND_BUFFER_BYTES",
        "unsent bytes for a slow client; beyond: close 1013. While a client does not read "
        "what it is sent, it is not read either (pongs cannot pile up)",
        bound=Bound.AT_LEAST_ONE, protocol="unsent bytes for a slow client")
    # Positive: at 0 the keep-alive loop would never yield, and every socket be idle.
    ping_interval_s: float = setting(20.0, "SWITCHBOARD_PING_INTERVAL",
                                     "seconds between server WebSocket pings",
                                     bound=Bound.POSITIVE, protocol="seconds between server pings")
    idle_timeout_s: float = setting(
        60.0, "SWITCHBOARD_IDLE_TIMEOUT",
        "seconds without a complete frame or pong before a socket is closed (1001): bytes "
        "trickled without completing a frame do not count", bound=Bound.POSITIVE,
        protocol="seconds of silence before close 1001")
    gateway_ttl_ms: int = setting(
        7000, "SWITCHBOARD_GATEWAY_TTL_MS",
        "a gateway silent this long is dead: relays remove its peers from their rooms",
        bound=Bound.AT_LEAST_ONE)
    relay_health_port: int = setting(
        8081, "SWITCHBOARD_RELAY_HEALTH_PORT",
        "the relay's `/healthz`, `/readyz` and `/metrics` (0: off)")
    palava_bundle: str = setting(
        DEFAULT_PALAVA_BUNDLE, "SWITCHBOARD_PALAVA_BUNDLE",
        "palava-client's browser bundle, served to the demo page",
        shown_default="`node_modules/palava-client/palava.bundle.js` in the checkout")
    # Resume: docs/protocol.md, "Resume".
    resume_grace_s: float = setting(
        15.0, "SWITCHBOARD_RESUME_GRACE_S",
        "how long a resumable peer whose socket dropped stays a member",
        bound=Bound.POSITIVE, protocol="grace period of a resumable peer")
    resume_buffer_frames: int = setting(
        1000, "SWITCHBOARD_RESUME_BUFFER_FRAMES",
        "the latest frames kept for a resumable peer; more while it is away: it leaves",
        bound=Bound.AT_LEAST_ONE, protocol="frames kept for a resumable peer")
    # ICE servers for joined_room: docs/protocol.md, "TURN and ICE servers".
    turn_secret: str = setting(
        "", "SWITCHBOARD_TURN_SECRET",
        "coturn's `static-auth-secret`: `turn_user`/`turn_password` in `joined_room`",
        secret=True, protocol="`turn_user`, `turn_password`")
    turn_ttl_s: int = setting(10800, "SWITCHBOARD_TURN_TTL",
                              "seconds the TURN credentials are valid", bound=Bound.AT_LEAST_ONE,
                              protocol="lifetime of the TURN credentials")
    ice_urls: str = setting(
        "", "SWITCHBOARD_ICE_URLS",
        "comma-separated `stun:`/`turn:`/`turns:` URLs: `ice_servers` in `joined_room`",
        protocol="`ice_servers`")
    # Join tokens: an HS256 secret and/or a PEM public key (RS256/ES256), or a file of it.
    join_secret: str = setting("", "SWITCHBOARD_JOIN_SECRET",
                               "HS256 secret: joins need a token", secret=True,
                               protocol="HS256 join tokens required")
    join_public_key: str = setting(
        "", "SWITCHBOARD_JOIN_PUBLIC_KEY",
        "PEM public key (or its path), RS256/ES256: joins need a token",
        protocol="RS256/ES256 join tokens required")
    allowed_origins: str = setting(
        "", "SWITCHBOARD_ALLOWED_ORIGINS",
        "comma-separated origins, `*` wildcards: others get 403", shown_default="(unset: all)",
        protocol="which browser origins may connect")
    # The app's control (docs/protocol.md, "Admin API").
    admin_key: str = setting(
        "", "SWITCHBOARD_ADMIN_KEY",
        "bearer key (16+ characters) of the admin API under `/admin/` (unset: no admin API; "
        "set: room names are kept while rooms have members, to list them)", secret=True,
        protocol="the [admin API](#the-admin-api), with this bearer key")
    admin_port: int = setting(
        0, "SWITCHBOARD_ADMIN_PORT",
        "the admin API on this port alone (else on `PORT`, beside the WebSocket)",
        shown_default="(unset)", protocol="the admin API on this port alone")
    # The app's hooks (docs/protocol.md, "Join hook"), signed as Standard Webhooks are.
    webhook_secret: str = setting(
        "", "SWITCHBOARD_WEBHOOK_SECRET",
        "base64 secret (optionally `whsec_`-prefixed) that signs webhooks and the join "
        "hook's requests", secret=True,
        protocol="signs webhooks and the join hook's requests")
    webhook_url: str = setting(
        "", "SWITCHBOARD_WEBHOOK_URL",
        "the app's URL (or several, comma-separated) that each room's lifecycle is POSTed "
        "to (unset: no webhooks; set: room names are kept while rooms have members)",
        protocol="where [webhooks](#webhooks) go")
    webhook_timeout_ms: int = setting(
        5000, "SWITCHBOARD_WEBHOOK_TIMEOUT_MS",
        "no 2xx answer to a webhook within this: it is retried", bound=Bound.AT_LEAST_ONE,
        protocol="a webhook's answer within this, or it is retried")
    webhook_retry_s: float = setting(
        3600.0, "SWITCHBOARD_WEBHOOK_RETRY_S",
        "a webhook not delivered this long after its event is dropped (and counted)",
        bound=Bound.POSITIVE, protocol="how long a webhook is retried")
    webhook_backlog: int = setting(
        100_000, "SWITCHBOARD_WEBHOOK_BACKLOG",
        "undelivered webhooks kept in Redis per shard; past it the oldest are dropped",
        bound=Bound.AT_LEAST_ONE, protocol="undelivered webhooks kept per shard")
    join_hook_url: str = setting(
        "", "SWITCHBOARD_JOIN_HOOK_URL",
        "the app's URL asked before each `join_room` (a resume is not asked)",
        protocol="the [join hook](#join-hook)")
    join_hook_headers: str = setting(
        "", "SWITCHBOARD_JOIN_HOOK_HEADERS",
        "comma-separated WebSocket upgrade headers forwarded to the join hook, e.g. "
        "`cookie,authorization`",
        protocol="upgrade headers the join hook is given")
    join_hook_timeout_ms: int = setting(
        2000, "SWITCHBOARD_JOIN_HOOK_TIMEOUT_MS",
        "no answer from the join hook within this: `not allowed`", bound=Bound.AT_LEAST_ONE,
        protocol="how long the join hook may take")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for declared in fields(cls):
            kind, name = declaration(declared).kind, declaration(declared).env
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                values[declared.name] = kind(raw)
            except ValueError:
                raise SettingsError(f"{name}={raw!r} is not a valid {kind.__name__}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values that would make the service misbehave rather than fail."""
        for declared in fields(self):
            bound, one_of = declaration(declared).bound, declaration(declared).one_of
            value = getattr(self, declared.name)
            if bound is not None and bound.refuses(value):
                raise SettingsError(f"{ENV_NAMES[declared.name]} {bound.value}, not {value!r}")
            if one_of and value not in one_of:
                raise SettingsError(f"{ENV_NAMES[declared.name]} must be "
                                    f"{' or '.join(one_of)}, not {value!r}")
        # Data frames are frames too: a wire bound below the frame rate would close the
        # clients that the frame rate lets through.
        for wire, data in (("wire_frame_rate", "frame_rate"), ("wire_frame_burst", "frame_burst")):
            if getattr(self, wire) < getattr(self, data):
                raise SettingsError(f"{ENV_NAMES[wire]} must be at least {ENV_NAMES[data]} "
                                    f"({getattr(self, data):g})")
        for url in self.ice_url_list:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise SettingsError(f"{ENV_NAMES['ice_urls']}: {url!r} is not a stun:, "
                                    "turn: or turns: URL")
        for name, urls in (("join_hook_url", [self.join_hook_url] if self.join_hook_url
                            else []), ("webhook_url", self.webhook_url_list)):
            for url in urls:
                if not url.startswith(("http://", "https://")):
                    raise SettingsError(f"{ENV_NAMES[name]}: {url!r} is not an http:// or "
                                        "https:// URL")
            if urls and not self.webhook_secret:
                raise SettingsError(f"{ENV_NAMES[name]} needs {ENV_NAMES['webhook_secret']}: "
                                    "the app must be able to tell the service's requests "
                                    "from others")
        if self.webhook_secret:
            try:
                Webhook(self.webhook_secret)
            except (ValueError, EmptyWebhookSecretError):
                raise SettingsError(f"{ENV_NAMES['webhook_secret']} is not base64 (with or "
                                    "without whsec_)") from None
        try:
            TrustedProxies(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"{ENV_NAMES['trusted_proxies']}: {exc}") from None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise SettingsError(f"{ENV_NAMES['tls_cert']} and {ENV_NAMES['tls_key']} go "
                                "together")
        for name in ("tls_cert", "tls_key"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise SettingsError(f"{ENV_NAMES[name]}: no file at {path!r}")
        # The admin key opens every room: one that can be guessed is no key. (The value
        # itself is never in the message: it may be a real key mistyped.)
        if self.admin_key and len(self.admin_key) < MIN_ADMIN_KEY_LENGTH:
            raise SettingsError(f"{ENV_NAMES['admin_key']} must be at least "
                                f"{MIN_ADMIN_KEY_LENGTH} characters")

    @property
    def ice_url_list(self) -> list[str]:
        return comma_list(self.ice_urls)

    @property
    def webhook_url_list(self) -> list[str]:
        return comma_list(self.webhook_url)

    @property
    def keeps_room_names(self) -> bool:
        """Room names are kept in clear while rooms have members only for the admin API
        (to list them) and webhooks (to name them)."""
        return bool(self.admin_key or self.webhook_url)

    @property
    def join_hook_header_list(self) -> list[str]:
        """The upgrade headers forwarded to the join hook, lowercase."""
        return [name.lower() for name in comma_list(self.join_hook_headers)]

    @property
    def allowed_origin_list(self) -> list[str]:
        return comma_list(self.allowed_origins)


def comma_list(text: str) -> list[str]:
    """A comma-separated setting's items, stripped, empty ones left out."""
    return [item.strip() for item in text.split(",") if item.strip()]


def declaration(declared: Field[Any]) -> Declaration:
    """What `setting` declared about one of the fields of `Settings`."""
    found: Declaration = declared.metadata[Declaration]
    return found


# Each setting's environment variable, by field name.
ENV_NAMES: dict[str, str] = {declared.name: declaration(declared).env
                             for declared in fields(Settings)}


def settings_table() -> str:
    """README.md's table of settings (its "Settings (environment variables)"), as declared."""
    return _table("meaning", [(declared, declaration(declared).meaning)
                              for declared in fields(Settings)])


def protocol_settings_table() -> str:
    """docs/protocol.md's table of the settings a client can notice (its "Settings"), as
    declared: each with its effect on the protocol, in the README's order."""
    return _table("protocol effect", [(declared, declaration(declared).protocol)
                                      for declared in fields(Settings)
                                      if declaration(declared).protocol])


def _table(column: str, rows: list[tuple[Field[Any], str]]) -> str:
    """A Markdown table of settings: variable, default as shown, and `column`."""
    lines = [f"| variable | default | {column} |", "|---|---|---|"]
    for declared, text in rows:
        said = declaration(declared)
        shown = said.shown_default or _shown(declared.default)
        lines.append(f"| `{said.env}` | {shown} | {text} |")
    return "\n".join(lines) + "\n"


def _shown(default: object) -> str:
    """A default as the README writes it: 1 for 1.0, (unset) for an empty string."""
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default) or "(unset)"
