"""DailyUpdater: CoinGecko coins, exchange pairs and Polymarket markets, updated in one run."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from pytest_httpserver import HTTPServer

from marketbot.config import Settings
from marketbot.sources.coingecko_api import close_only_bars, parse_market_chart
from marketbot.sources.daily_update import DailyUpdater
from marketbot.sources.polymarket import PolymarketCollector
from marketbot.store import Database, PriceRepository
from tests.support.coingecko_server import SAMPLE_NOW, FakeCoinGecko, load_sample
from tests.support.fake_binance import BARS, FakeBinance
from tests.support.fake_polymarket import NOW, OPEN_MARKET_SLUG, FakePolymarket
from tests.support.fake_time import FakeTime


@pytest.fixture
def database_backend() -> str:
    return "sqlite"  # the store's behaviour on PostgreSQL is covered by each collector's tests


@pytest.fixture
def settings(httpserver: HTTPServer) -> Settings:
    for root in ("/fapi/v1", "/dapi/v1"):  # Binance's futures markets: none here
        httpserver.expect_request(f"{root}/exchangeInfo").respond_with_json({"symbols": []})
    return Settings(
        coingecko_url=httpserver.url_for("/api/v3"),
        coingecko_history_days=0,  # the 2021 sample is older than the demo plan's 365 days
        polymarket_gamma_url=httpserver.url_for("/gamma"),
        polymarket_clob_url=httpserver.url_for("/clob"),
        exchange_api_urls={
            "binance": {
                "public": httpserver.url_for("/api/v3"),
                "fapiPublic": httpserver.url_for("/fapi/v1"),
                "dapiPublic": httpserver.url_for("/dapi/v1"),
            }
        },
    )


def test_run_when_every_kind_of_series_is_behind_updates_each_and_leaves_csv_alone(
    httpserver: HTTPServer, settings: Settings, database: Database
) -> None:
    coingecko = FakeCoinGecko(httpserver)
    binance = FakeBinance(httpserver, BARS)
    polymarket = FakePolymarket(httpserver)
    fake_time = FakeTime(NOW)
    prices = PriceRepository(database)
    hourly = close_only_bars(parse_market_chart(load_sample(), "sample"), "1h", SAMPLE_NOW)
    prices.upsert_bars("coingecko", "bitcoin", "1h", hourly.iloc[:-20])
    prices.upsert_bars("binance", "BTC/USDT", "1h", BARS.iloc[:-30])
    prices.upsert_bars("bitstamp", "bitcoin", "1d", hourly.iloc[:5])  # not an exchange pair
    with PolymarketCollector.from_settings(
        settings, database, clock=fake_time.clock, sleep=fake_time.sleep
    ) as collector:
        collector.collect_market(OPEN_MARKET_SLUG, start=datetime(2026, 2, 6, 16, tzinfo=UTC))
    fake_time.clock.set(datetime(2026, 2, 8, 0, tzinfo=UTC))
    polymarket.history_requests.clear()

    updates = DailyUpdater(settings, database, clock=fake_time.clock, sleep=fake_time.sleep).run()

    by_series = {update.series: update for update in updates}
    assert set(by_series) == {
        "coingecko/bitcoin/1h",
        "binance/BTC/USDT/1h",
        f"polymarket/{OPEN_MARKET_SLUG}",
    }
    assert all(update.error is None for update in updates), [str(u) for u in updates]
    assert by_series["coingecko/bitcoin/1h"].bars_added == 21  # 20 dropped + the sample's last
    assert by_series["binance/BTC/USDT/1h"].bars_added == 30
    assert polymarket.history_requests  # asked from the last stored point on
    stored = prices.load_bars("BTC/USDT", timeframe="1h", source="binance")
    pd.testing.assert_frame_equal(stored, BARS, check_freq=False)
    assert len(prices.load_bars("bitcoin", timeframe="1d", source="bitstamp")) == 5
    assert binance.kline_requests()
    assert coingecko.requests


def test_run_when_an_exchange_series_fails_reports_it(
    httpserver: HTTPServer, settings: Settings, database: Database
) -> None:
    FakeBinance(httpserver, BARS)
    prices = PriceRepository(database)
    prices.upsert_bars("binance", "DOGE/USDT", "1h", BARS.iloc[:10])  # not listed any more
    fake_time = FakeTime(NOW)

    [update] = DailyUpdater(settings, database, clock=fake_time.clock, sleep=fake_time.sleep).run()

    assert update.series == "binance/DOGE/USDT/1h"
    assert update.error is not None
    assert "DOGE/USDT" in update.error


def test_run_when_series_in_other_currencies_updates_each_in_its_currency(
    httpserver: HTTPServer, settings: Settings, database: Database
) -> None:
    coingecko = FakeCoinGecko(httpserver)
    hourly = close_only_bars(parse_market_chart(load_sample(), "sample"), "1h", SAMPLE_NOW)
    prices = PriceRepository(database)
    prices.upsert_bars("coingecko-eur", "bitcoin", "1h", hourly.iloc[:-5])
    prices.upsert_bars("coingecko", "bitcoin", "1h", hourly.iloc[:-5])
    fake_time = FakeTime(SAMPLE_NOW.to_pydatetime())

    updates = DailyUpdater(settings, database, clock=fake_time.clock, sleep=fake_time.sleep).run()

    assert {u.series: u.bars_added for u in updates} == {
        "coingecko-eur/bitcoin/1h": 5,
        "coingecko/bitcoin/1h": 5,
    }
    assert sorted(r.args["vs_currency"] for r in coingecko.requests) == ["eur", "usd"]


def test_run_when_an_exchange_is_misconfigured_reports_its_pairs_and_updates_the_rest(
    httpserver: HTTPServer, settings: Settings, database: Database
) -> None:
    FakeCoinGecko(httpserver)
    hourly = close_only_bars(parse_market_chart(load_sample(), "sample"), "1h", SAMPLE_NOW)
    prices = PriceRepository(database)
    prices.upsert_bars("coingecko", "bitcoin", "1h", hourly.iloc[:-5])
    prices.upsert_bars("binance", "BTC/USDT", "1h", BARS.iloc[:10])
    broken = settings.model_copy(update={"exchange_api_urls": {"binance": {"publik": "http://x"}}})
    fake_time = FakeTime(SAMPLE_NOW.to_pydatetime())

    updates = DailyUpdater(broken, database, clock=fake_time.clock, sleep=fake_time.sleep).run()

    by_series = {update.series: update for update in updates}
    assert by_series["coingecko/bitcoin/1h"].bars_added == 5
    failed = by_series["binance/BTC/USDT/1h"]
    assert failed.error is not None
    assert "publik" in failed.error
