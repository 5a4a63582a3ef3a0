"""Debian's chromium under Playwright, fenced in: only 127.0.0.1 may be reached.

Every request elsewhere is aborted and recorded, as is every console error and page error;
the tests fail on any of them. Never ``playwright install``: the browser is /usr/bin/chromium.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Route, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@dataclass
class Fence:
    """What the browser tried that it must not have: requests elsewhere, errors."""

    aborted: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return (
            [f"aborted request {url}" for url in self.aborted]
            + [f"console error {text}" for text in self.console_errors]
            + [f"page error {text}" for text in self.page_errors]
        )


@contextmanager
def fenced_browser(profile_dir: Path) -> Iterator[tuple[Page, Fence]]:
    """A page in a fresh chromium profile that may only talk to 127.0.0.1."""
    fence = Fence()

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            fence.aborted.append(route.request.url)
            route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            fence.console_errors.append(
                f"{message.text} [{where.get('url', '')}:{where.get('lineNumber', '')}]"
            )

    with sync_playwright() as playwright:
        context: BrowserContext = playwright.chromium.launch_persistent_context(
            str(profile_dir),
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            context.route("**/*", only_local)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("console", on_console)
            page.on("pageerror", lambda error: fence.page_errors.append(str(error)))
            page.on("dialog", lambda dialog: dialog.accept())
            page.set_default_timeout(30_000)
            yield page, fence
        finally:
            context.close()
