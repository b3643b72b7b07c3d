"""The browser tests' fixtures: a loopback-only network namespace with the shared
cluster's gateways bridged into it, and one headless Chromium there for the session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from harness.processes import Cluster
from tests.netns import LoopbackNamespace

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture(scope="session")
async def netns(cluster: Cluster) -> AsyncIterator[LoopbackNamespace]:
    namespace = LoopbackNamespace.create()
    for _, port in cluster.gateways[:2]:
        await namespace.bridge(port)
    yield namespace
    await namespace.close()


@pytest.fixture(scope="session")
async def browser(netns: LoopbackNamespace, tmp_path_factory: pytest.TempPathFactory
                  ) -> AsyncIterator[Browser]:
    # Imported here: the protocol tests in this folder also run where playwright is not
    # installed (tests/test_lower_bounds.py).
    from playwright.async_api import async_playwright

    from tests.e2e.tabs import CHROMIUM, FLAGS

    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: scripts/test installs Debian's chromium"
    wrapper = netns.wrapper(tmp_path_factory.mktemp("chromium"), str(CHROMIUM))
    async with async_playwright() as playwright:
        # A fresh profile (user data dir) per launch; every page gets a context of its own.
        launched = await playwright.chromium.launch(executable_path=wrapper, headless=True,
                                                    args=FLAGS)
        yield launched
        await launched.close()
