"""When a relay may declare a gateway dead (relay/gateway_watch.py): a missing heartbeat
key counts only after the key was read without a break for `settle_s`."""

from __future__ import annotations

import pytest

from relay.gateway_watch import GatewayWatch
from shared import keys

SETTLE_S, GAP_S = 5.0, 2.5


def watching(*reads: float, gateway: str = "gw") -> GatewayWatch:
    watch = GatewayWatch(SETTLE_S, GAP_S)
    for at in reads:
        watch.read([gateway], at)
    return watch


def test_a_gateway_read_all_along_is_declared_at_once() -> None:
    watch = watching(*range(0, 11))
    assert watch.may_declare("gw", 10.0)


def test_a_gateway_first_read_just_now_is_not() -> None:
    # A relay that only now has its peers (a takeover, a resume) knows nothing of its
    # key's past: the key may have been lost in a failover a moment ago.
    watch = watching(100.0)
    assert not watch.may_declare("gw", 100.0)
    assert not watch.may_declare("other", 100.0)
    for at in (101.0, 102.0, 103.0, 104.0):
        watch.read(["gw"], at)
        assert not watch.may_declare("gw", at)
    watch.read(["gw"], 105.0)
    assert watch.may_declare("gw", 105.0)


def test_a_redis_error_starts_the_wait_anew() -> None:
    # A master failing over: its reads fail; once it answers again, a live gateway needs
    # a beat (ttl/3) and maybe one failed call to set its key again.
    watch = watching(*range(0, 11))
    watch.failed()
    watch.read(["gw"], 16.0)
    assert not watch.may_declare("gw", 16.0)
    for at in (17.0, 18.0, 19.0, 20.0):
        watch.read(["gw"], at)
        assert not watch.may_declare("gw", at)
    watch.read(["gw"], 21.0)
    assert watch.may_declare("gw", 21.0)


def test_reads_far_apart_are_a_break() -> None:
    # The relay's own loop was held up: a failover may have come and gone unseen.
    watch = watching(*range(0, 11))
    watch.read(["gw"], 10.0 + GAP_S + 0.1)
    assert not watch.may_declare("gw", 10.0 + GAP_S + 0.1)


def test_gateways_without_peers_here_are_forgotten() -> None:
    watch = watching(*range(0, 11))
    watch.keep_only(set())
    watch.read(["gw"], 11.0)
    assert not watch.may_declare("gw", 11.0)


SETTLED = [float(at) for at in range(0, 11)]  # read without a break for 10 s


@pytest.mark.parametrize(("reads", "value", "verdict"), [
    (SETTLED, b"1700000000000", "alive"),        # it beat
    (SETTLED, None, "declare"),                  # missing, and the reads prove it
    ([10.0], None, "alive"),                     # missing, but first read just now
    (SETTLED, keys.GATEWAY_DEAD, "dead"),        # another relay judged
    ([10.0], keys.GATEWAY_DEAD, "dead"),         # ... whatever this one knows
])
def test_verdict(reads: list[float], value: bytes | None, verdict: str) -> None:
    assert watching(*reads).verdict("gw", value, 10.0) == verdict
