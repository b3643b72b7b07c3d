"""The cluster of the tests that kill or stop a part of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.processes import Cluster
from tests.faults.support import private_cluster


@pytest.fixture
def own_cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """A redis-server and 2 relays + 2 gateways of this test's own, to kill or stop.

    Indirect parameters, if any, are extra environment for every process."""
    env: dict[str, str] = getattr(request, "param", {})
    with private_cluster(gateways=2, relays=2, **env) as cluster:
        yield cluster
