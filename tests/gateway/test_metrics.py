"""The gateway's counts of how sockets ended (gateway/metrics.py): every ending has a
label, and counting never raises (it runs as a socket's cleanup ends)."""

from __future__ import annotations

import math

import pytest

from gateway.metrics import CLOSE_LABELS, GatewayMetrics
from shared.close_codes import CloseCode


def metrics() -> GatewayMetrics:
    return GatewayMetrics(lambda: 0, lambda: 0)


@pytest.mark.parametrize("code", list(CloseCode))
def test_every_close_code_the_gateway_sends_has_its_label(code: CloseCode) -> None:
    counts = metrics()
    counts.closed(str(int(code)), 1.0)
    assert counts.closes[str(int(code))] == 1


@pytest.mark.parametrize("label", ["999", "1006", "4999", "", "not a code"])
def test_a_code_not_listed_counts_as_other(label: str) -> None:
    # An unlisted code (1002, then) once raised KeyError here, before the socket's peer
    # had left: it stayed a member of its room for as long as the gateway lived.
    counts = metrics()
    counts.closed(label, 1.0)
    assert counts.closes["other"] == 1
    assert set(counts.closes) == set(CLOSE_LABELS)  # labels stay bounded


@pytest.mark.parametrize("seconds", [-5.0, 0.0, math.inf])
def test_any_duration_is_observed_without_raising(seconds: float) -> None:
    counts = metrics()
    counts.closed("client", seconds)
    assert counts.closes["client"] == 1
