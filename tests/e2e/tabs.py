"""Headless Chromium for the browser tests: its flags, and a tab that tests wait on.

The browser is Debian's chromium (installed by scripts/setup.sh), driven by the Python
playwright package through `executable_path`: no browser is downloaded. It runs in a
network namespace that has only loopback (tests/netns.py; the fixtures are in
tests/e2e/conftest.py), so its calls go over 127.0.0.1 and nowhere else. Pages keep their
state on a window object (`window.demo`, `window.broadcast`...), which the waits read,
polling within a bound; nothing sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from playwright.async_api import Browser, BrowserContext, Page
from playwright.async_api import TimeoutError as PlaywrightTimeout

from harness.processes import ROOT

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    # Chromium leaves loopback out of ICE unless told; in the namespace it is all there is.
    "--allow-loopback-in-peer-connection",
]
# Chromium calls itself offline where no interface but loopback exists, and palava-client
# will not connect while `navigator.onLine` is false. The pages are served over loopback.
ONLINE = "Object.defineProperty(Navigator.prototype, 'onLine', {get: () => true});"
ARTIFACTS = ROOT / "tests" / "artifacts"

T = TypeVar("T", bound="Tab")


class Tab:
    """A page in a browser context of its own, with what it logged for failure messages.

    `STATE` is the JS expression of the page's state, shown when a wait times out."""

    STATE: ClassVar[str] = "null"

    def __init__(self, context: BrowserContext, page: Page, name: str) -> None:
        self.context = context
        self.page = page
        self.name = name
        self.log: list[str] = []
        page.on("console", lambda message: self.log.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: self.log.append(f"page error: {error}"))

    @classmethod
    async def load(cls: type[T], browser: Browser, url: str, name: str,
                   **context_options: Any) -> T:
        """`url` in a context of its own (`context_options`: playwright's, e.g.
        `ignore_https_errors` for a certificate the test made)."""
        context = await browser.new_context(viewport={"width": 1100, "height": 480},
                                            **context_options)
        await context.add_init_script(ONLINE)
        tab = cls(context, await context.new_page(), name)
        await tab.page.goto(url)
        return tab

    async def state(self) -> Any:
        return await self.page.evaluate(f"JSON.parse(JSON.stringify({self.STATE} ?? null))")

    async def wait(self, condition: str, arg: Any = None, timeout_s: float = 15,
                   what: str = "") -> None:
        """Until the JS function `condition(arg)` is true on the page (or fail saying why)."""
        try:
            await self.page.wait_for_function(condition, arg=arg, polling=100,
                                             timeout=timeout_s * 1000)
        except PlaywrightTimeout:
            state = json.dumps(await self.state(), indent=1)
            log = "\n".join(self.log[-30:])
            pytest.fail(f"{self.name}: timed out after {timeout_s} s waiting for "
                        f"{what or condition}\n{self.STATE} = {state}\nconsole:\n{log}")

    async def close(self) -> None:
        await self.context.close()
