"""Fixtures of the dashboard tests: an app on a data directory of the test's own."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from marketbot.config import Settings
from marketbot.web import WebSettings, create_app
from marketbot.web.settings import SetupToken

USERNAME = "admin"
PASSWORD = "correct horse battery"
SETUP_TOKEN = "setup-token-for-tests"


def cheap_hasher() -> PasswordHasher:
    """argon2 with the smallest parameters: the tests sign in many times."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class FakeClock:
    """A clock the tests move by hand."""

    moment: datetime = field(default_factory=lambda: datetime(2026, 12, 5, 12, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, delta: timedelta) -> None:
        self.moment += delta


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def web_settings(data_dir: Path, clock: FakeClock) -> WebSettings:
    return WebSettings(
        settings=Settings(data_dir=data_dir),
        password_hasher=cheap_hasher(),
        setup_token=SetupToken(SETUP_TOKEN, clock() + timedelta(minutes=15)),
        run_worker=False,
        clock=clock,
    )


@pytest.fixture
def client(web_settings: WebSettings) -> Iterator[TestClient]:
    """A signed-out browser on an app whose admin exists."""
    with TestClient(create_app(web_settings), follow_redirects=False) as test_client:
        context = test_client.app.state.web_context  # type: ignore[attr-defined]
        context.auth.set_admin(USERNAME, web_settings.password_hasher.hash(PASSWORD))
        yield test_client


def sign_in(client: TestClient, username: str = USERNAME, password: str = PASSWORD) -> str:
    """Sign the client in; returns its CSRF token."""
    response = client.post("/login", data={"username": username, "password": password})
    assert response.status_code == 303, response.text
    page = client.get("/jobs")
    assert page.status_code == 200
    marker = '<meta name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


@pytest.fixture
def csrf(client: TestClient) -> str:
    """Sign ``client`` in and return its CSRF token."""
    token = sign_in(client)
    client.headers["X-CSRF-Token"] = token
    return token


def run_jobs(client: TestClient) -> list[object]:
    """Run every queued job inline, as the worker process would; returns them as they ended."""
    from marketbot.web.worker import run_next_job

    context = client.app.state.web_context  # type: ignore[attr-defined]
    ended = []
    while (job := run_next_job(context.database, context.settings, context.jobs)) is not None:
        ended.append(job)
    return ended


def store_sample_bars(client: TestClient) -> None:
    """The bundled daily BTC sample as stored bars (bitstamp, bitcoin, 1d)."""
    from marketbot.store.prices import PriceRepository
    from tests.support.frames import sample_daily_btc

    context = client.app.state.web_context  # type: ignore[attr-defined]
    PriceRepository(context.database).upsert_bars("bitstamp", "bitcoin", "1d", sample_daily_btc())


# The dashboard's three kinds of test, timed apart so CI shows each (the browser suite
# includes chromium's start, the fuzzing suite Schemathesis' generation).
_DASHBOARD_SUITES = {
    "test_web_browser.py": "dashboard: Playwright (chromium)",
    "test_web_schemathesis.py": "dashboard: Schemathesis",
}
_DASHBOARD_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Add each phase's time to its dashboard suite."""
    if "integration/web/" not in report.nodeid:
        return
    file = report.nodeid.split("::", 1)[0].rsplit("/", 1)[-1]
    suite = _DASHBOARD_SUITES.get(file, "dashboard: TestClient")
    _DASHBOARD_SECONDS[suite] = _DASHBOARD_SECONDS.get(suite, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the dashboard suites' times."""
    if not _DASHBOARD_SECONDS:
        return
    terminalreporter.section("dashboard suites")
    for suite, seconds in sorted(_DASHBOARD_SECONDS.items()):
        terminalreporter.write_line(f"{seconds:8.1f}  {suite}")
