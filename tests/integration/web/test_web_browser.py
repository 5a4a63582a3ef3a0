"""The dashboard in chromium: the flows a person goes through, against a real server.

Each request outside 127.0.0.1 is aborted and fails the test, as does any console or page
error. Screenshots go to the test's temporary directory only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.integration.web.browser import CHROMIUM, fenced_browser
from tests.integration.web.conftest import PASSWORD, USERNAME
from tests.integration.web.live_server import live_dashboard
from tests.support.fake_binance import FakeBinanceSpot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's /usr/bin/chromium"),
]

API_KEY = "browserkey0123456789abcdWXYZ"
SECRET = "browsersecret0123456789abcdef"
JOB_TIMEOUT_MS = 180_000


@pytest.fixture
def binance() -> Iterator[FakeBinanceSpot]:
    with FakeBinanceSpot(api_key=API_KEY, secret=SECRET) as server:
        yield server


def sign_in(page: Page, base: str) -> None:
    page.goto(f"{base}/bot")
    expect(page).to_have_url(f"{base}/login")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("h1")).to_have_text("Bot")


def open_job_result(page: Page, area: str) -> None:
    """Wait for the job in ``area`` to finish (polled every 2 s) and open its result."""
    job = page.locator(f"{area} .job")
    expect(job).to_be_visible()
    link = page.locator(f"{area} a.job-result")
    expect(link).to_be_visible(timeout=JOB_TIMEOUT_MS)
    link.click()


def chart_drawn(page: Page, selector: str) -> None:
    expect(page.locator(selector)).to_have_attribute("data-drawn", "yes")
    expect(page.locator(f"{selector} canvas").first).to_be_visible()


def test_dashboard_flows_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, binance: FakeBinanceSpot
) -> None:
    monkeypatch.delenv("MARKETBOT_MASTER_KEY", raising=False)
    shots = tmp_path / "shots"
    shots.mkdir()
    with (
        live_dashboard(tmp_path / "data", exchange_api_urls={"binance": binance.api_urls}) as base,
        fenced_browser(tmp_path / "profile") as (page, fence),
    ):
        sign_in(page, base)

        # Bot: a command with a confirmation and a reason, shown pending.
        page.select_option("#command-form select[name=kind]", "pause")
        page.fill("#command-form input[name=reason]", "lunch break")
        page.check("#command-form input[name=confirm]")
        page.click("#command-form button[type=submit]")
        expect(page.locator("#command-result")).to_contain_text("queued")
        expect(page.locator("#commands")).to_contain_text("lunch break", timeout=10_000)
        page.screenshot(path=shots / "bot.png")

        # A backtest: progress, then its page with candles and trade markers.
        page.goto(f"{base}/backtests")
        page.select_option("select[name=strategy]", "sma_crossover")
        page.fill("input[name=start]", "2024-01-01")
        page.click("form button[type=submit]")
        open_job_result(page, "#job-area")
        expect(page).to_have_url(re.compile(r"/backtests/\d+$"))
        chart_drawn(page, "#price-chart")
        expect(page.locator("#price-chart")).to_have_attribute("data-candles", "candles")
        chart_drawn(page, "#equity-chart")
        page.screenshot(path=shots / "backtest.png", full_page=True)

        # Compare two strategies: the table with the best marked, and the charts.
        page.goto(f"{base}/strategy_comparison")
        page.check("input[name=items][value=sma_crossover]")
        page.check("input[name=items][value=momentum]")
        page.fill("input[name=start]", "2024-01-01")
        page.click("form button[type=submit]")
        open_job_result(page, "#compare-job")
        expect(page.locator("#comparison-table")).to_contain_text("★")
        chart_drawn(page, "#compare-overlay")
        expect(page.locator("#compare-multiples .multiple canvas").first).to_be_visible()
        page.screenshot(path=shots / "comparison.png", full_page=True)

        # The journal: add, edit, search.
        page.goto(f"{base}/trade_journal")
        page.fill("#journal-form input[name=symbol]", "bitcoin")
        page.fill("#journal-form textarea[name=entry_reason]", "breakout above the range")
        page.select_option("#journal-form select[name=rating]", "4")
        page.click("#journal-form button[type=submit]")
        expect(page.locator("#journal-table")).to_contain_text("breakout above the range")
        page.click("#journal-table button:has-text('edit')")
        expect(page.locator("#journal-form input[name=id]")).to_have_count(1)
        page.fill("#journal-form textarea[name=lessons]", "waited for the retest")
        page.click("#journal-form button[type=submit]")
        expect(page.locator("#journal-table")).to_contain_text("waited for the retest")
        page.fill("#journal-search input[name=q]", "retest")
        expect(page.locator("#journal-table tbody tr")).to_have_count(1)
        page.fill("#journal-search input[name=q]", "nothing like this")
        expect(page.locator("#journal-table")).to_contain_text("No journal entries")

        # The optimiser: a small grid, then its heatmap.
        page.goto(f"{base}/optimizations")
        page.fill("input[name=v1]", "5,10,20")
        page.fill("input[name=v2]", "50,100")
        page.fill("input[name=start]", "2023-01-01")
        page.click("form button[type=submit]")
        open_job_result(page, "#optimize-job")
        chart_drawn(page, "#heatmap")
        chart_drawn(page, "#sensitivity")

        # API keys: saved and shown masked, then a connection test against the local fake.
        page.goto(f"{base}/api_keys")
        card = page.locator("#key-binance-default")
        card.locator("input[name=api_key]").fill(API_KEY)
        card.locator("input[name=secret]").fill(SECRET)
        card.locator("button[type=submit]").click()
        expect(page.locator("#key-binance-default .masked-key")).to_have_text("****WXYZ")
        page.locator("#key-binance-default button:has-text('Test connection')").click()
        expect(page.locator("#key-binance-default .key-test")).to_contain_text("connected: ok")
        assert API_KEY not in page.content()
        assert SECRET not in page.content()

        # Alerts: create, toggle, test, delete.
        page.goto(f"{base}/alerts")
        form = page.locator("#alert-form")
        form.locator("input[name=name]").fill("btc above 100k")
        form.locator("input[name=subject]").fill("bitcoin")
        form.locator("select[name=metric]").select_option("close")
        form.locator("input[name=threshold]").fill("100000")
        form.locator("button[type=submit]").click()
        row = page.locator("#alerts-table tbody tr").first
        expect(row).to_contain_text("bitcoin close > 100000")
        expect(row.locator(".alert-state")).to_have_text("armed")
        row.locator("button:has-text('disable')").click()
        expect(page.locator("#alerts-table .alert-state").first).to_have_text("disabled")
        page.locator("#alerts-table tbody tr").first.locator("input[name=value]").fill("123456")
        page.locator("#alerts-table tbody tr").first.locator("button:has-text('test')").click()
        expect(page.locator("#alert-test-result")).to_contain_text("would fire on 123,456")
        page.locator("#alerts-table tbody tr").first.locator("button:has-text('delete')").click()
        expect(page.locator("#alerts-table")).not_to_contain_text("btc above 100k")

        # Sign out: the pages are closed again.
        page.click("header button:has-text('Sign out')")
        expect(page).to_have_url(f"{base}/login")

    assert fence.problems() == []
