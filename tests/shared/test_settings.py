"""Settings read from environment variables."""

from __future__ import annotations

import pytest

from shared.settings import Settings, SettingsError

# Each variable, a value to set, and the setting it must become.
VARIABLES = [
    ("HOST", "127.0.0.1", "host", "127.0.0.1"),
    ("PORT", "9000", "port", 9000),
    ("REDIS_URL", "redis://redis:6380/2", "redis_url", "redis://redis:6380/2"),
    ("LOG_LEVEL", "debug", "log_level", "debug"),
    ("SWITCHBOARD_SHARDS", "16", "shards", 16),
    ("SWITCHBOARD_ROOM_CAPACITY", "3", "room_capacity", 3),
    ("SWITCHBOARD_STAR_ROOM_CAPACITY", "250", "star_room_capacity", 250),
    ("SWITCHBOARD_SHUTDOWN_SECONDS", "0", "shutdown_seconds", 0),
    ("SWITCHBOARD_LEASE_TTL_MS", "2500", "lease_ttl_ms", 2500),
    ("SWITCHBOARD_BATCH_SIZE", "32", "batch_size", 32),
    ("SWITCHBOARD_STREAM_MAXLEN", "1000", "stream_maxlen", 1000),
    ("SWITCHBOARD_MAX_FRAME_BYTES", "4096", "max_frame_bytes", 4096),
    ("SWITCHBOARD_SEND_BUFFER_BYTES", "65536", "send_buffer_bytes", 65536),
    ("SWITCHBOARD_PING_INTERVAL", "2.5", "ping_interval_s", 2.5),
    ("SWITCHBOARD_IDLE_TIMEOUT", "90", "idle_timeout_s", 90.0),
    ("SWITCHBOARD_PALAVA_BUNDLE", "/srv/palava.bundle.js", "palava_bundle", "/srv/palava.bundle.js"),
    ("SWITCHBOARD_RESUME_GRACE_S", "30", "resume_grace_s", 30.0),
    ("SWITCHBOARD_RESUME_BUFFER_FRAMES", "200", "resume_buffer_frames", 200),
    ("SWITCHBOARD_TURN_SECRET", "s3cret", "turn_secret", "s3cret"),
    ("SWITCHBOARD_TURN_TTL", "600", "turn_ttl_s", 600),
    ("SWITCHBOARD_ICE_URLS", "stun:a.example:3478", "ice_urls", "stun:a.example:3478"),
    ("SWITCHBOARD_JOIN_SECRET", "k", "join_secret", "k"),
    ("SWITCHBOARD_JOIN_PUBLIC_KEY", "/etc/join.pub", "join_public_key", "/etc/join.pub"),
    ("SWITCHBOARD_ALLOWED_ORIGINS", "https://a.example", "allowed_origins", "https://a.example"),
]

NUMERIC = [(env, field) for env, _, field, value in VARIABLES if not isinstance(value, str)]
AT_LEAST_ONE = [
    "SWITCHBOARD_SHARDS", "SWITCHBOARD_ROOM_CAPACITY", "SWITCHBOARD_STAR_ROOM_CAPACITY",
    "SWITCHBOARD_LEASE_TTL_MS", "SWITCHBOARD_RESUME_BUFFER_FRAMES", "SWITCHBOARD_TURN_TTL",
    "SWITCHBOARD_BATCH_SIZE", "SWITCHBOARD_STREAM_MAXLEN", "SWITCHBOARD_MAX_FRAME_BYTES",
    "SWITCHBOARD_SEND_BUFFER_BYTES",
]


@pytest.mark.parametrize("env, raw, field, value", VARIABLES)
def test_each_variable_sets_its_setting(env: str, raw: str, field: str, value: object) -> None:
    settings = Settings.from_env({env: raw})
    assert getattr(settings, field) == value
    assert type(getattr(settings, field)) is type(value)


@pytest.mark.parametrize("env", [env for env, *_ in VARIABLES])
def test_an_empty_variable_keeps_the_default(env: str) -> None:
    assert Settings.from_env({env: ""}) == Settings()


def test_unrelated_variables_are_ignored() -> None:
    assert Settings.from_env({"PATH": "/bin", "SWITCHBOARD_NOPE": "x"}) == Settings()


@pytest.mark.parametrize("field, default", [
    ("shards", 64),  # architecture.md
    # protocol.md, "Limits"
    ("room_capacity", 100),
    ("star_room_capacity", 1000),  # protocol.md, "Star rooms"
    ("resume_grace_s", 15.0),  # protocol.md, "Resume"
    ("resume_buffer_frames", 1000),
    ("turn_ttl_s", 10800),  # protocol.md, "TURN and ICE servers"
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


@pytest.mark.parametrize("raw", ["0", "-1"])
@pytest.mark.parametrize("env", AT_LEAST_ONE)
def test_zero_or_less_is_refused_naming_the_variable(env: str, raw: str) -> None:
    with pytest.raises(SettingsError, match=env):
        Settings.from_env({env: raw})


def test_negative_shutdown_seconds_are_refused() -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_SHUTDOWN_SECONDS"):
        Settings.from_env({"SWITCHBOARD_SHUTDOWN_SECONDS": "-1"})


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWITCHBOARD_SHARDS", "5")
    assert Settings.from_env().shards == 5


@pytest.mark.parametrize("raw", ["0", "-5"])
def test_the_grace_period_must_be_positive(raw: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_RESUME_GRACE_S"):
        Settings.from_env({"SWITCHBOARD_RESUME_GRACE_S": raw})


@pytest.mark.parametrize("urls", ["http://stun.example", "stun:a,ftp://b"])
def test_ice_urls_must_be_stun_or_turn(urls: str) -> None:
    with pytest.raises(SettingsError, match="SWITCHBOARD_ICE_URLS"):
        Settings.from_env({"SWITCHBOARD_ICE_URLS": urls})


def test_secrets_stay_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({"SWITCHBOARD_TURN_SECRET": "turn-s3cret",
                                  "SWITCHBOARD_JOIN_SECRET": "join-s3cret"})
    assert "s3cret" not in repr(settings)
