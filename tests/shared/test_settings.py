"""Settings read from environment variables, and the tables of them in README.md and
docs/protocol.md."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from shared.settings import (
    ENV_NAMES,
    Settings,
    SettingsError,
    declaration,
    protocol_settings_table,
    settings_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"
PROTOCOL = README.parent / "docs" / "protocol.md"
A_FILE = str(README)  # TLS settings name files that exist

# Each variable, a value to set, and the setting it must become: every setting, once.
VARIABLES = [
    ("HOST", "127.0.0.1", "host", "127.0.0.1"),
    ("SWITCHBOARD_TLS_CERT", A_FILE, "tls_cert", A_FILE),
    ("SWITCHBOARD_TLS_KEY", A_FILE, "tls_key", A_FILE),
    ("SWITCHBOARD_TRUSTED_PROXIES", "10.0.0.0/8,127.0.0.1", "trusted_proxies",
     "10.0.0.0/8,127.0.0.1"),
    ("PORT", "9000", "port", 9000),
    ("REDIS_URL", "redis://redis:6380/2", "redis_url", "redis://redis:6380/2"),
    ("LOG_LEVEL", "debug", "log_level", "debug"),
    ("SWITCHBOARD_LOG_FORMAT", "json", "log_format", "json"),
    ("SWITCHBOARD_METRICS_PORT", "9100", "metrics_port", 9100),
    ("SWITCHBOARD_SHARDS", "16", "shards", 16),
    ("SWITCHBOARD_ROOM_CAPACITY", "3", "room_capacity", 3),
    ("SWITCHBOARD_STAR_ROOM_CAPACITY", "250", "star_room_capacity", 250),
    ("SWITCHBOARD_SHUTDOWN_SECONDS", "0", "shutdown_seconds", 0),
    ("SWITCHBOARD_LEASE_TTL_MS", "2500", "lease_ttl_ms", 2500),
    ("SWITCHBOARD_BATCH_SIZE", "32", "batch_size", 32),
    ("SWITCHBOARD_RELAY_LINGER_MS", "2.5", "relay_linger_ms", 2.5),
    ("SWITCHBOARD_GATEWAY_LINGER_MS", "0", "gateway_linger_ms", 0.0),
    ("SWITCHBOARD_REDIS_WAIT_REPLICAS", "1", "redis_wait_replicas", 1),
    ("SWITCHBOARD_STREAM_MAXLEN", "1000", "stream_maxlen", 1000),
    ("SWITCHBOARD_MAX_FRAME_BYTES", "4096", "max_frame_bytes", 4096),
    ("SWITCHBOARD_FRAME_RATE", "10", "frame_rate", 10.0),
    ("SWITCHBOARD_FRAME_BURST", "20", "frame_burst", 20),
    ("SWITCHBOARD_WIRE_FRAME_RATE", "500", "wire_frame_rate", 500.0),
    ("SWITCHBOARD_WIRE_FRAME_BURST", "5000", "wire_frame_burst", 5000),
    ("SWITCHBOARD_WIRE_BYTE_RATE", "1e6", "wire_byte_rate", 1e6),
    ("SWITCHBOARD_WIRE_BYTE_BURST", "1000000", "wire_byte_burst", 1_000_000),
    ("SWITCHBOARD_MAX_FRAGMENTS", "16", "max_fragments", 16),
    ("SWITCHBOARD_SEND_BUFFER_BYTES", "65536", "send_buffer_bytes", 65536),
    ("SWITCHBOARD_PING_INTERVAL", "2.5", "ping_interval_s", 2.5),
    ("SWITCHBOARD_IDLE_TIMEOUT", "90", "idle_timeout_s", 90.0),
    ("SWITCHBOARD_GATEWAY_TTL_MS", "3000", "gateway_ttl_ms", 3000),
    ("SWITCHBOARD_RELAY_HEALTH_PORT", "0", "relay_health_port", 0),
    ("SWITCHBOARD_PALAVA_BUNDLE", "/srv/palava.bundle.js", "palava_bundle", "/srv/palava.bundle.js"),
    ("SWITCHBOARD_RESUME_GRACE_S", "30", "resume_grace_s", 30.0),
    ("SWITCHBOARD_RESUME_BUFFER_FRAMES", "200", "resume_buffer_frames", 200),
    ("SWITCHBOARD_TURN_SECRET", "s3cret", "turn_secret", "s3cret"),
    ("SWITCHBOARD_TURN_TTL", "600", "turn_ttl_s", 600),
    ("SWITCHBOARD_ICE_URLS", "stun:a.example:3478", "ice_urls", "stun:a.example:3478"),
    ("SWITCHBOARD_JOIN_SECRET", "k", "join_secret", "k"),
    ("SWITCHBOARD_JOIN_PUBLIC_KEY", "/etc/join.pub", "join_public_key", "/etc/join.pub"),
    ("SWITCHBOARD_ALLOWED_ORIGINS", "https://a.example", "allowed_origins", "https://a.example"),
    ("SWITCHBOARD_ADMIN_KEY", "k" * 32, "admin_key", "k" * 32),
    ("SWITCHBOARD_ADMIN_PORT", "9200", "admin_port", 9200),
    ("SWITCHBOARD_WEBHOOK_SECRET", "whsec_c2VjcmV0LWZvci10ZXN0cw==", "webhook_secret",
     "whsec_c2VjcmV0LWZvci10ZXN0cw=="),
    ("SWITCHBOARD_WEBHOOK_URL", "http://app.local/a,https://b.example/h", "webhook_url",
     "http://app.local/a,https://b.example/h"),
    ("SWITCHBOARD_WEBHOOK_TIMEOUT_MS", "2500", "webhook_timeout_ms", 2500),
    ("SWITCHBOARD_WEBHOOK_RETRY_S", "60", "webhook_retry_s", 60.0),
    ("SWITCHBOARD_WEBHOOK_BACKLOG", "500", "webhook_backlog", 500),
    ("SWITCHBOARD_JOIN_HOOK_URL", "http://app.local/hook", "join_hook_url",
     "http://app.local/hook"),
    ("SWITCHBOARD_JOIN_HOOK_HEADERS", "cookie,authorization", "join_hook_headers",
     "cookie,authorization"),
    ("SWITCHBOARD_JOIN_HOOK_TIMEOUT_MS", "1500", "join_hook_timeout_ms", 1500),
]

NUMERIC = [(env, field) for env, _, field, value in VARIABLES if not isinstance(value, str)]

# What else a variable needs set to be taken.
NEEDS = {"SWITCHBOARD_TLS_CERT": {"SWITCHBOARD_TLS_KEY": A_FILE},
         "SWITCHBOARD_TLS_KEY": {"SWITCHBOARD_TLS_CERT": A_FILE},
         "SWITCHBOARD_JOIN_HOOK_URL": {"SWITCHBOARD_WEBHOOK_SECRET": "c2VjcmV0LWZvci10ZXN0cw=="},
         "SWITCHBOARD_WEBHOOK_URL": {"SWITCHBOARD_WEBHOOK_SECRET": "c2VjcmV0LWZvci10ZXN0cw=="}}

# Each bounded variable: the value at its bound that it refuses, the next one that it
# admits, and what else must be set for that one to be admitted (the wire limits are at
# least the data limits).
BOUNDS = [
    # at least 1
    ("SWITCHBOARD_SHARDS", "0", "1", {}),
    ("SWITCHBOARD_ROOM_CAPACITY", "0", "1", {}),
    ("SWITCHBOARD_STAR_ROOM_CAPACITY", "0", "1", {}),
    ("SWITCHBOARD_LEASE_TTL_MS", "0", "1", {}),
    ("SWITCHBOARD_BATCH_SIZE", "0", "1", {}),
    ("SWITCHBOARD_STREAM_MAXLEN", "0", "1", {}),
    ("SWITCHBOARD_MAX_FRAME_BYTES", "0", "1", {}),
    ("SWITCHBOARD_FRAME_BURST", "0", "1", {}),
    ("SWITCHBOARD_WIRE_FRAME_BURST", "0", "1", {"SWITCHBOARD_FRAME_BURST": "1"}),
    ("SWITCHBOARD_WIRE_BYTE_BURST", "0", "1", {}),
    ("SWITCHBOARD_MAX_FRAGMENTS", "0", "1", {}),
    ("SWITCHBOARD_SEND_BUFFER_BYTES", "0", "1", {}),
    ("SWITCHBOARD_GATEWAY_TTL_MS", "0", "1", {}),
    ("SWITCHBOARD_RESUME_BUFFER_FRAMES", "0", "1", {}),
    ("SWITCHBOARD_TURN_TTL", "0", "1", {}),
    ("SWITCHBOARD_JOIN_HOOK_TIMEOUT_MS", "0", "1", {}),
    ("SWITCHBOARD_WEBHOOK_TIMEOUT_MS", "0", "1", {}),
    ("SWITCHBOARD_WEBHOOK_BACKLOG", "0", "1", {}),
    # positive
    ("SWITCHBOARD_WEBHOOK_RETRY_S", "0", "1e-9", {}),
    ("SWITCHBOARD_FRAME_RATE", "0", "1e-9", {}),
    ("SWITCHBOARD_WIRE_FRAME_RATE", "0", "1e-9", {"SWITCHBOARD_FRAME_RATE": "1e-9"}),
    ("SWITCHBOARD_WIRE_BYTE_RATE", "0", "1e-9", {}),
    ("SWITCHBOARD_RESUME_GRACE_S", "0", "1e-9", {}),
    ("SWITCHBOARD_PING_INTERVAL", "0", "1e-9", {}),
    ("SWITCHBOARD_IDLE_TIMEOUT", "0", "1e-9", {}),
    # not negative
    ("SWITCHBOARD_SHUTDOWN_SECONDS", "-1", "0", {}),
    ("SWITCHBOARD_RELAY_LINGER_MS", "-1e-9", "0", {}),
    ("SWITCHBOARD_GATEWAY_LINGER_MS", "-1e-9", "0", {}),
    ("SWITCHBOARD_REDIS_WAIT_REPLICAS", "-1", "0", {}),
]


@pytest.mark.parametrize("env, raw, field, value", VARIABLES)
def test_each_variable_sets_its_setting(env: str, raw: str, field: str, value: object) -> None:
    settings = Settings.from_env({**NEEDS.get(env, {}), env: raw})
    assert getattr(settings, field) == value
    assert type(getattr(settings, field)) is type(value)


@pytest.mark.parametrize("env", [env for env, *_ in VARIABLES])
def test_an_empty_variable_keeps_the_default(env: str) -> None:
    assert Settings.from_env({env: ""}) == Settings()


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "SWITCHBOARD_NOPE": "x"}) == Settings()


# By hand on purpose: prose and protocol.md's "Limits" state these; change them together.
@pytest.mark.parametrize("field, default", [
    ("shards", 64),  # docs/architecture.md
    # docs/protocol.md, "Limits"
    ("room_capacity", 100),
    ("star_room_capacity", 1000),  # docs/protocol.md, "Star rooms"
    ("resume_grace_s", 15.0),  # docs/protocol.md, "Resume"
    ("resume_buffer_frames", 1000),
    ("turn_ttl_s", 10800),  # docs/protocol.md, "TURN and ICE servers"
    ("max_frame_bytes", 64 * 1024),
    ("send_buffer_bytes", 1024 * 1024),
    ("idle_timeout_s", 60.0),
    ("ping_interval_s", 20.0),
])
def test_defaults_follow_the_documents(field: str, default: object) -> None:
    assert getattr(Settings.from_env({}), field) == default


@pytest.mark.parametrize("raw", ["abc", "1x", "ten"])
@pytest.mark.parametrize("env, field", NUMERIC)
def test_a_non_number_is_refused_naming_the_variable(env: str, field: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: raw})


@pytest.mark.parametrize("env", ["SWITCHBOARD_SHARDS", "SWITCHBOARD_ROOM_CAPACITY", "PORT"])
def test_an_int_setting_refuses_a_fraction(env: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: "1.5"})


def test_every_setting_is_in_the_table_of_variables_once() -> None:
    assert sorted(env for env, *_ in VARIABLES) == sorted(ENV_NAMES.values())


def test_every_variable_names_one_setting() -> None:
    assert list(ENV_NAMES) == [declared.name for declared in fields(Settings)]
    assert len(set(ENV_NAMES.values())) == len(ENV_NAMES)


@pytest.mark.parametrize("env, edge, _next, others", BOUNDS)
@pytest.mark.parametrize("beyond", [False, True])
def test_a_bound_refuses_its_edge_naming_the_variable(
        env: str, edge: str, _next: str, others: dict[str, str], beyond: bool) -> None:
    raw = f"{float(edge) - 1000:g}" if beyond else edge
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({**others, env: raw})


@pytest.mark.parametrize("env, _edge, admitted, others", BOUNDS)
def test_a_bound_admits_the_next_value(
        env: str, _edge: str, admitted: str, others: dict[str, str]) -> None:
    settings = Settings.from_env({**others, env: admitted})
    field = next(name for name, named in ENV_NAMES.items() if named == env)
    assert getattr(settings, field) == float(admitted)


def test_the_table_of_bounds_has_every_bounded_setting() -> None:
    bounded = [declaration(declared).env for declared in fields(Settings)
               if declaration(declared).bound is not None]
    assert sorted(bounded) == sorted(env for env, *_ in BOUNDS)


@pytest.mark.parametrize("raw", ["xml", "JSON", "text "])
def test_the_log_format_is_text_or_json(raw: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_LOG_FORMAT"):
        Settings.from_env({"SWITCHBOARD_LOG_FORMAT": raw})


@pytest.mark.parametrize("wire, data, raw", [
    ("SWITCHBOARD_WIRE_FRAME_RATE", "SWITCHBOARD_FRAME_RATE", "50"),
    ("SWITCHBOARD_WIRE_FRAME_BURST", "SWITCHBOARD_FRAME_BURST", "200"),
])
def test_a_wire_limit_is_at_least_its_data_limit(wire: str, data: str, raw: str) -> None:
    Settings.from_env({wire: raw})  # the data limit's default
    with pytest.raises(SettingsError, match=f"{wire} must be at least {data}"):
        Settings.from_env({wire: f"{float(raw) - 1:g}"})
    with pytest.raises(SettingsError, match=f"{wire} must be at least {data}"):
        Settings.from_env({data: f"{float(raw) * 10:g}"})


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_SHARDS", "5")
    assert Settings.from_env().shards == 5


@pytest.mark.parametrize("urls", ["http://stun.example", "stun:a,ftp://b"])
def test_ice_urls_must_be_stun_or_turn(urls: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_ICE_URLS"):
        Settings.from_env({"SWITCHBOARD_ICE_URLS": urls})


@pytest.mark.parametrize(("env", "says"), [
    ({"SWITCHBOARD_JOIN_HOOK_URL": "http://app/hook"}, "needs SWITCHBOARD_WEBHOOK_SECRET"),
    ({"SWITCHBOARD_JOIN_HOOK_URL": "ftp://app/hook", "SWITCHBOARD_WEBHOOK_SECRET": "c2VjcmV0"},
     "http:// or https://"),
    ({"SWITCHBOARD_WEBHOOK_SECRET": "whsec_!!"}, "not base64"),
    ({"SWITCHBOARD_WEBHOOK_URL": "http://app/a"}, "SWITCHBOARD_WEBHOOK_URL needs "
     "SWITCHBOARD_WEBHOOK_SECRET"),
    ({"SWITCHBOARD_WEBHOOK_URL": "http://app/a, app.example/b",
      "SWITCHBOARD_WEBHOOK_SECRET": "c2VjcmV0"}, "'app.example/b' is not an http://"),
])
def test_hooks_need_http_urls_and_a_signing_secret(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_an_admin_key_that_can_be_guessed_is_refused_without_being_shown() -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_ADMIN_KEY must be at least 16") as no:
        Settings.from_env({"SWITCHBOARD_ADMIN_KEY": "hunter2"})
    assert "hunter2" not in str(no.value)
    assert Settings.from_env({"SWITCHBOARD_ADMIN_KEY": "x" * 16}).admin_key == "x" * 16


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"SWITCHBOARD_TURN_SECRET": "turn-s3cret",
                                  "SWITCHBOARD_JOIN_SECRET": "join-s3cret",
                                  "SWITCHBOARD_ADMIN_KEY": "admin-s3cret-0123456789"})
    assert "s3cret" not in repr(settings)


def _table_under(document: Path, heading: str) -> str:
    """The first table in the section under `heading` (a whole line) of `document`."""
    lines = document.read_text().split(f"\n{heading}\n", 1)[1].splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    return "".join(line for line in lines[start:next(
        (i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))])


def test_the_readme_lists_the_settings_as_declared() -> None:
    assert _table_under(README, "### Settings (environment variables)") == settings_table(), (
        "README.md's table of settings differs from shared/settings.py's declarations; print "
        "the declared one with: python -c 'import shared.settings as s; "
        "print(s.settings_table(), end=\"\")'")


def test_the_protocol_lists_the_settings_a_client_notices_as_declared() -> None:
    assert _table_under(PROTOCOL, "## Settings") == protocol_settings_table(), (
        "docs/protocol.md's table of settings differs from shared/settings.py's declarations "
        "(their `protocol=`); print the declared one with: python -c 'import shared.settings "
        "as s; print(s.protocol_settings_table(), end=\"\")'")


def test_the_table_shows_each_variable_and_its_default_in_order() -> None:
    rows = [row.strip("|").split(" | ") for row in settings_table().splitlines()[2:]]
    assert [env.strip(" `") for env, _, _ in rows] == list(ENV_NAMES.values())
    for (_, shown, _), declared in zip(rows, fields(Settings), strict=True):
        said = declaration(declared)
        if said.shown_default:
            assert shown == said.shown_default
        elif declared.default == "":
            assert shown == "(unset)"
        else:
            assert said.kind(shown) == declared.default


@pytest.mark.parametrize(("env", "says"), [
    ({"SWITCHBOARD_TLS_CERT": A_FILE}, "SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY go together"),
    ({"SWITCHBOARD_TLS_KEY": A_FILE}, "go together"),
    ({"SWITCHBOARD_TLS_CERT": A_FILE, "SWITCHBOARD_TLS_KEY": "/no/such.key"},
     "SWITCHBOARD_TLS_KEY: no file at '/no/such.key'"),
])
def test_tls_needs_a_certificate_and_its_key_on_disk(env: dict[str, str], says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        Settings.from_env(env)


def test_trusted_proxies_must_be_addresses_or_networks() -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_TRUSTED_PROXIES: 'nginx' is not"):
        Settings.from_env({"SWITCHBOARD_TRUSTED_PROXIES": "127.0.0.1,nginx"})
