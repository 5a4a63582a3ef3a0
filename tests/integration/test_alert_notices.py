"""Alerts end to end on a real SQLite file: firings, events, apprise notices to a local server.

apprise posts ``json://`` notices to tests/support/notify_server.py on 127.0.0.1; a dead
port stands for a notify service that is down.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from marketbot.bot.alert_snapshot import AlertSnapshot, PriceReading
from marketbot.bot.alert_sources import snapshot_from_database
from marketbot.bot.alert_watch import AlertWatcher
from marketbot.bot.alerts import AlertManager
from marketbot.bot.notify import AppriseNotifier, notify_categories, notify_url_secrets
from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError
from marketbot.store import Database
from marketbot.store.alerts import (
    AlertEvaluation,
    AlertFiringRecord,
    AlertInfo,
    AlertRepository,
    AlertSpec,
)
from marketbot.store.bot import BotRecordRepository, BotRunRepository, BotRunSpec, TradeRecord
from marketbot.store.events import EventRepository
from marketbot.store.prices import PriceRepository
from tests.support.notify_server import NotifyServer, dead_url, notify_server

T0 = datetime(2021, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def sqlite_database(tmp_path: Path, migrated_sqlite_template: Path) -> Iterator[Database]:
    path = tmp_path / "marketbot.db"
    shutil.copyfile(migrated_sqlite_template, path)
    with Database(f"sqlite:///{path}") as database:
        yield database


@pytest.fixture
def server() -> Iterator[NotifyServer]:
    with notify_server() as running:
        yield running


def add_alert(database: Database, name: str = "btc20k", cooldown_seconds: int = 0) -> int:
    spec = AlertSpec(name, "price", "bitcoin", "close", ">", 20000.0, "price", cooldown_seconds)
    return AlertRepository(database).add(spec).id


def closes(manager: AlertManager, values: list[float]) -> list[datetime]:
    fired = []
    for day, value in enumerate(values):
        time = T0 + day * DAY
        snapshot = AlertSnapshot(at=time, prices=(PriceReading("bitcoin", time, close=value),))
        fired.extend(firing.at for firing in manager.evaluate(snapshot))
    return fired


def test_alert_firings_when_notified_post_once_each_with_the_name_and_are_marked_delivered(
    sqlite_database: Database, server: NotifyServer
) -> None:
    events = EventRepository(sqlite_database)
    alert_id = add_alert(sqlite_database)
    with AppriseNotifier([server.url()], events=events) as notifier:
        manager = AlertManager(AlertRepository(sqlite_database), notifier)
        fired = closes(manager, [19000, 21000, 22000, 19500, 20500, 21000])

    assert fired == [T0 + DAY, T0 + 4 * DAY]
    posts = server.wait_for(2)
    assert len(posts) == 2
    assert all(post.body["title"] == "marketbot: alert btc20k" for post in posts)
    assert all(post.body["type"] == "info" for post in posts)
    assert "bitcoin close > 20000" in posts[0].body["message"]
    assert posts[0].headers["Authorization"].startswith("Basic ")
    stored = events.newest()
    assert [(e.kind, e.alert_id, e.delivered, e.at) for e in stored] == [
        ("alert_fired", alert_id, True, T0 + 4 * DAY),
        ("alert_fired", alert_id, True, T0 + DAY),
    ]
    assert AlertRepository(sqlite_database).get(alert_id).trigger_count == 2


def test_emergency_when_notified_posts_type_failure_with_an_emergency_title(
    sqlite_database: Database, server: NotifyServer
) -> None:
    events = EventRepository(sqlite_database)
    with AppriseNotifier([server.url()], events=events) as notifier:
        notifier.notify(
            "circuit_breaker_tripped", "daily loss 260 > 250", emergency=True, at=T0,
            details={"limit": "max_daily_loss"},
        )  # fmt: skip

    (post,) = server.wait_for(1)
    assert post.body["type"] == "failure"
    assert post.body["title"].startswith("marketbot EMERGENCY")
    assert "circuit_breaker_tripped" in post.body["title"]
    (event,) = events.newest()
    assert (event.kind, event.severity, event.delivered, event.at) == (
        "circuit_breaker_tripped", "emergency", True, T0,
    )  # fmt: skip
    assert event.details == {"title": "circuit_breaker_tripped", "limit": "max_daily_loss"}


def test_notice_when_server_dead_is_harmless_and_recorded_on_its_event(
    sqlite_database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    events = EventRepository(sqlite_database)
    alert_id = add_alert(sqlite_database)
    caplog.set_level(logging.DEBUG)
    with AppriseNotifier([dead_url("PWDEAD")], events=events) as notifier:
        manager = AlertManager(AlertRepository(sqlite_database), notifier)
        assert closes(manager, [21000]) == [T0]

    (event,) = events.newest()
    assert (event.alert_id, event.delivered) == (alert_id, False)
    assert event.delivery_error == "json://127.0.0.1: not delivered"
    assert "not delivered to json://127.0.0.1" in caplog.text
    assert "PWDEAD" not in caplog.text


def test_notify_urls_when_notices_sent_leave_no_password_in_logs_events_or_files(
    sqlite_database: Database,
    server: NotifyServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    events = EventRepository(sqlite_database)
    add_alert(sqlite_database)
    with AppriseNotifier([server.url(password="PWTEST"), dead_url("PWTEST")], events=events) as n:
        manager = AlertManager(AlertRepository(sqlite_database), n)
        closes(manager, [21000])
        n.notify("SLIPPAGE_HIGH", "filled 2 % worse", emergency=True)
        text = repr(n)

    assert len(server.wait_for(2)) == 2
    assert "PWTEST" not in caplog.text and "PWTEST" not in text
    assert all("PWTEST" not in str(e) for e in events.newest())
    sqlite_database.dispose()
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert b"PWTEST" not in file.read_bytes(), file


def test_notify_urls_when_one_is_unreadable_names_its_position_not_its_text() -> None:
    with pytest.raises(ConfigError) as caught:
        AppriseNotifier(["json://u:p@127.0.0.1:9/x", "nosuchscheme://u:PWBAD@host/x"])

    assert str(caught.value) == (
        "MARKETBOT_NOTIFY_URLS entry 2 is not a notification URL apprise can read"
    )


def test_categories_when_fill_not_chosen_logs_but_does_not_send(
    sqlite_database: Database, server: NotifyServer
) -> None:
    events = EventRepository(sqlite_database)
    with AppriseNotifier([server.url()], events=events) as notifier:
        notifier.notify("fill", "bought 0.1 BTC", kind="fill")
    with AppriseNotifier(
        [server.url()], events=events, categories=notify_categories("fill,lifecycle")
    ) as notifier:
        notifier.notify("fill", "sold 0.1 BTC", kind="fill")

    posts = server.wait_for(1)
    assert [post.body["message"] for post in posts] == ["sold 0.1 BTC"]
    assert [e.delivered for e in events.newest()] == [True, False]
    with pytest.raises(ConfigError, match="MARKETBOT_NOTIFY_EVENTS: fills is not a notice"):
        notify_categories("emergency,fills")


class CheckingNotifier:
    """Reads the store when a notice comes: the firing must be committed by then."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.seen: list[tuple[int, int | None]] = []

    def notify(
        self,
        title: str,
        message: str,
        *,
        emergency: bool = False,
        kind: str | None = None,
        event_id: int | None = None,
    ) -> None:
        (alert,) = AlertRepository(self.database).all()
        stored = None if event_id is None else EventRepository(self.database).get(event_id)
        self.seen.append((alert.trigger_count, None if stored is None else stored.alert_id))


def test_firing_when_notified_is_already_committed_with_its_event(
    sqlite_database: Database,
) -> None:
    alert_id = add_alert(sqlite_database)
    notifier = CheckingNotifier(sqlite_database)

    closes(AlertManager(AlertRepository(sqlite_database), notifier), [21000])

    assert notifier.seen == [(1, alert_id)]


def test_watch_when_bars_arrive_fires_on_the_new_bar_and_reports_a_stale_heartbeat_once(
    sqlite_database: Database, server: NotifyServer
) -> None:
    prices = PriceRepository(sqlite_database)
    index = pd.DatetimeIndex([T0, T0 + DAY], name="timestamp")
    bars = pd.DataFrame(
        {"open": 1.9e4, "high": 1.95e4, "low": 1.85e4, "close": [19000.0, 19500.0], "volume": 1.0},
        index=index,
    )
    prices.upsert_bars("bitstamp", "bitcoin", "1d", bars)
    add_alert(sqlite_database)
    runs = BotRunRepository(sqlite_database)
    run = runs.start_run(BotRunSpec("sma_crossover", "bitcoin", "1h", "bitstamp", "paper"))
    runs.save_progress(run.id, T0, {"heartbeat": (T0 + 2 * DAY).isoformat()})
    clock = ManualClock(T0 + 2 * DAY + timedelta(minutes=5))

    def sleep(seconds: float) -> None:
        clock.advance(timedelta(seconds=seconds))
        if clock.now() >= T0 + 2 * DAY + timedelta(hours=2):
            new_bar = bars.iloc[[1]].set_axis(pd.DatetimeIndex([T0 + 2 * DAY], name="timestamp"))
            prices.upsert_bars(
                "bitstamp", "bitcoin", "1d", new_bar.assign(close=21000.0, high=21500.0)
            )

    events = EventRepository(sqlite_database)
    with AppriseNotifier([server.url()], events=events) as notifier:
        watcher = AlertWatcher(sqlite_database, notifier, clock, sleep)
        report = watcher.run(3600, iterations=4)

    assert report.iterations == 4
    assert [(f.at, f.value) for f in report.firings] == [(T0 + 2 * DAY, 21000.0)]
    assert report.stale_runs == [run.id]
    kinds = sorted(e.kind for e in events.newest())
    assert kinds == ["alert_fired", "heartbeat_stale"]
    titles = sorted(post.body["title"] for post in server.wait_for(2))
    assert titles == ["marketbot EMERGENCY: heartbeat stale", "marketbot: alert btc20k"]


def test_emergency_when_normal_notices_are_queued_is_sent_before_them(
    server: NotifyServer,
) -> None:
    server.delay_seconds = 0.3
    chosen = notify_categories("lifecycle,emergency")
    with AppriseNotifier([server.url()], categories=chosen) as notifier:
        notifier.notify("first", "in flight")
        server.wait_for(1)
        for number in (2, 3, 4):
            notifier.notify(f"normal {number}", "queued")
        notifier.notify("circuit_breaker_tripped", "queued last", emergency=True)

    titles = [post.body["title"] for post in server.wait_for(5)]
    assert titles == [
        "marketbot: first", "marketbot EMERGENCY: circuit_breaker_tripped",
        "marketbot: normal 2", "marketbot: normal 3", "marketbot: normal 4",
    ]  # fmt: skip


def test_notify_url_secrets_when_urls_have_passwords_lists_them_and_the_urls() -> None:
    urls = ["json://u:PWTEST@127.0.0.1:8799/h", "ntfy://topic"]

    assert notify_url_secrets(urls) == [*urls[:1], "PWTEST", urls[1]]


def test_snapshot_from_database_when_a_bot_run_is_current_reads_its_trades_and_risk_book(
    sqlite_database: Database,
) -> None:
    runs = BotRunRepository(sqlite_database)
    run = runs.start_run(BotRunSpec("sma_crossover", "bitcoin", "1d", "bitstamp", "paper"))
    records = BotRecordRepository(sqlite_database)
    for pnl in (-50.0, 30.0, -10.0):
        records.record_trade(
            TradeRecord(
                bot_run_id=run.id, strategy="sma_crossover", symbol="bitcoin", direction="long",
                size=0.1, entry_time=T0, entry_price=20000.0, exit_time=T0 + DAY,
                exit_price=20000.0 + pnl * 10, pnl=pnl, pnl_pct=pnl / 20, fees=0.0,
                exit_reason="signal",
            )
        )  # fmt: skip
    progress = {
        "risk": {"last_equity": 8800.0, "day_start_equity": 9000.0, "peak_equity": 10000.0},
        "cash": 8000.0,
        "open_trade": {"entry_time": T0.isoformat(), "size": 0.04},
    }
    runs.save_progress(run.id, T0 + DAY, progress)

    snapshot = snapshot_from_database(sqlite_database, [], T0 + 2 * DAY)

    (strategy,) = snapshot.strategies
    assert (strategy.name, strategy.pnl_usd, strategy.open_positions) == ("sma_crossover", -30, 1)
    assert strategy.win_rate == pytest.approx(100 / 3)
    assert (strategy.entry_signal, strategy.size_fraction) == (None, None)
    portfolio = snapshot.portfolio
    assert portfolio is not None
    assert (portfolio.total_value, portfolio.daily_pnl, portfolio.exposure_usd) == (
        8800, -200, 800,
    )  # fmt: skip
    assert portfolio.drawdown_pct == pytest.approx(12.0)


class StaleBook:
    """The alerts as another process read them before the first one fired (a race)."""

    def __init__(self, repository: AlertRepository) -> None:
        self.repository = repository
        self.seen = repository.enabled()

    def enabled(self) -> list[AlertInfo]:
        return self.seen

    def save_evaluations(
        self, evaluations: Sequence[AlertEvaluation], firings: Sequence[AlertFiringRecord]
    ) -> Mapping[int, int | None]:
        return self.repository.save_evaluations(evaluations, firings)


def test_two_processes_when_both_see_the_alert_armed_fire_it_once(
    sqlite_database: Database,
) -> None:
    alert_id = add_alert(sqlite_database)
    repository = AlertRepository(sqlite_database)
    bot_side, watch_side = StaleBook(repository), StaleBook(repository)

    assert closes(AlertManager(bot_side), [21000]) == [T0]
    assert closes(AlertManager(watch_side), [21000]) == []
    # A stale false evaluation does not re-arm what the other process fired meanwhile.
    assert closes(AlertManager(StaleBook(repository)), [21000]) == []
    stale = StaleBook(repository)
    closes(AlertManager(repository), [19000])
    assert repository.get(alert_id).armed is True
    assert closes(AlertManager(stale), [21000]) == []

    assert repository.get(alert_id).trigger_count == 1
    assert [e.kind for e in EventRepository(sqlite_database).newest()] == ["alert_fired"]
