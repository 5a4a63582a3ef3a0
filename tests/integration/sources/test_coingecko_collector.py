"""HistoricalDataCollector against a local CoinGecko server, into SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest
import sqlalchemy as sa

from marketbot.config import Settings
from marketbot.core.errors import ConfigError, DataError, TemporaryError
from marketbot.net import ApiError, ServerUnavailableError
from marketbot.sources.coingecko_api import CoinGeckoClient, close_only_bars, parse_market_chart
from marketbot.sources.collector import HistoricalDataCollector
from marketbot.store import CryptoPriceHistory, Database, PriceRepository
from tests.support.coingecko_server import SAMPLE_NOW, FakeCoinGecko, Fault, load_sample
from tests.support.fake_time import FakeTime


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(SAMPLE_NOW.to_pydatetime())


@pytest.fixture
def collector(
    database: Database, coingecko: FakeCoinGecko, fake_time: FakeTime
) -> Iterator[HistoricalDataCollector]:
    settings = Settings(coingecko_url=coingecko.base_url, coingecko_api_key="demo-key")
    client = CoinGeckoClient.from_settings(settings, clock=fake_time.clock, sleep=fake_time.sleep)
    try:
        yield HistoricalDataCollector(PriceRepository(database), client, clock=fake_time.clock)
    finally:
        client.close()


def expected_hourly() -> pd.DataFrame:
    return close_only_bars(parse_market_chart(load_sample(), "sample"), "1h", SAMPLE_NOW)


def stored(database: Database, timeframe: str = "1h", source: str = "coingecko") -> pd.DataFrame:
    return PriceRepository(database).load_bars("bitcoin", timeframe=timeframe, source=source)


def row_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.scalar(sa.select(sa.func.count()).select_from(CryptoPriceHistory)) or 0
        )


def test_collect_when_30_days_stores_hourly_close_only_bars_with_api_key(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    summary = collector.collect_crypto_history("bitcoin", days=30)

    expected = expected_hourly()
    assert (summary.source, summary.symbol, summary.timeframe) == ("coingecko", "bitcoin", "1h")
    assert summary.bars_stored == len(expected) == 718
    pd.testing.assert_frame_equal(stored(database), expected, check_freq=False)
    [request] = coingecko.requests
    assert request.path == "/api/v3/coins/bitcoin/market_chart"
    assert request.args == {"vs_currency": "usd", "days": "30"}
    assert request.headers["X-Cg-Demo-Api-Key"] == "demo-key"


def test_collect_when_run_twice_stores_no_duplicates(
    collector: HistoricalDataCollector, database: Database
) -> None:
    collector.collect_crypto_history("bitcoin", days=30)
    collector.collect_crypto_history("bitcoin", days=30)

    assert row_count(database) == 718


def test_collect_when_timeframe_is_a_multiple_builds_coarser_bars(
    collector: HistoricalDataCollector, database: Database
) -> None:
    summary = collector.collect_crypto_history("bitcoin", days=30, timeframe="1d")

    assert summary.timeframe == "1d"
    daily = stored(database, "1d")
    assert len(daily) == 30  # 2021-03-09 .. 2021-04-07; 2021-04-08 has not closed yet
    assert daily.index[0] == pd.Timestamp("2021-03-09T00:00Z")
    assert daily.index[-1] == pd.Timestamp("2021-04-07T00:00Z")


def test_collect_when_timeframe_is_the_ohlc_candle_uses_ohlc_endpoint(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    summary = collector.collect_crypto_history("bitcoin", days=30, timeframe="4h")

    assert coingecko.requests[-1].path == "/api/v3/coins/bitcoin/ohlc"
    candles = coingecko.ohlc_4h()
    complete = [c for c in candles if c[0] <= SAMPLE_NOW.value // 1_000_000]
    assert summary.source == "coingecko-ohlc"  # real candles never share a series with flat ones
    assert summary.bars_stored == len(complete)
    bars = stored(database, "4h", source="coingecko-ohlc")
    first = complete[0]
    assert bars.index[0] == pd.Timestamp(int(first[0]) - 4 * 3600 * 1000, unit="ms", tz="UTC")
    assert bars.iloc[0][["open", "high", "low", "close"]].tolist() == first[1:]


def test_collect_when_timeframe_cannot_be_made_raises_config_error_saying_what_can(
    collector: HistoricalDataCollector,
) -> None:
    with pytest.raises(ConfigError, match=r"as 1h points, or 4h candles.*45m"):
        collector.collect_crypto_history("bitcoin", days=30, timeframe="45m")


@pytest.mark.parametrize("days", [0, -3, 2.5])
def test_collect_when_days_invalid_raises(collector: HistoricalDataCollector, days: int) -> None:
    with pytest.raises(ConfigError, match="days must be a whole number"):
        collector.collect_crypto_history("bitcoin", days=days)


def test_collect_when_coin_unknown_raises_naming_coin_and_endpoint(
    collector: HistoricalDataCollector, database: Database
) -> None:
    with pytest.raises(ApiError, match=r"CoinGecko GET /coins/notacoin/market_chart: HTTP 404"):
        collector.collect_crypto_history("notacoin", days=30)
    assert row_count(database) == 0


@pytest.mark.parametrize(
    "body", ['{"prices": [[1615291675936, 54197.2], [16152', '{"prices": [[1, "x"]]}']
)
def test_collect_when_answer_is_malformed_raises_and_stores_nothing(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database, body: str
) -> None:
    coingecko.fail_next("market_chart", Fault(200, body))

    with pytest.raises(DataError, match=r"/coins/bitcoin/market_chart"):
        collector.collect_crypto_history("bitcoin", days=30)
    assert row_count(database) == 0


def test_collect_when_429_with_retry_after_waits_then_stores(
    collector: HistoricalDataCollector,
    coingecko: FakeCoinGecko,
    fake_time: FakeTime,
    database: Database,
) -> None:
    coingecko.fail_next("market_chart", Fault(429, "", {"Retry-After": "30"}))

    summary = collector.collect_crypto_history("bitcoin", days=30)

    assert 30.0 in fake_time.sleeps
    assert summary.bars_stored == row_count(database) == 718
    assert len(coingecko.requests) == 2


def test_collect_when_5xx_then_success_retries_and_stores(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    coingecko.fail_next("market_chart", Fault(503, "busy"), Fault(502, "bad gateway"))

    collector.collect_crypto_history("bitcoin", days=30)

    assert len(coingecko.requests) == 3
    assert row_count(database) == 718


def test_collect_when_5xx_persists_raises_after_attempts_and_stores_nothing(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    coingecko.fail_next("market_chart", *[Fault(500, "down")] * 10)

    with pytest.raises(ServerUnavailableError, match=r"market_chart: HTTP 500.*4 attempts"):
        collector.collect_crypto_history("bitcoin", days=30)
    assert row_count(database) == 0


def test_collect_when_429_storm_raises_temporary_error(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    coingecko.fail_next("market_chart", *[Fault(429, "", {"Retry-After": "5"})] * 20)

    with pytest.raises(TemporaryError, match=r"market_chart.*429"):
        collector.collect_crypto_history("bitcoin", days=30)
    assert row_count(database) == 0


def holes_request_windows(coingecko: FakeCoinGecko) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    return [
        (
            pd.Timestamp(int(r.args["from"]), unit="s", tz="UTC"),
            pd.Timestamp(int(r.args["to"]), unit="s", tz="UTC"),
        )
        for r in coingecko.requests
        if r.path.endswith("market_chart/range")
    ]


def test_fill_gaps_when_series_has_holes_requests_only_the_holes_and_fills_them(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    full = expected_hourly()
    holes = [full.index[100:103], full.index[400:401], full.index[650:660]]
    dropped = holes[0].union(holes[1]).union(holes[2])
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", full.drop(dropped))

    summary = collector.fill_gaps("bitcoin")

    hour = pd.Timedelta(hours=1)
    # The source itself lacks one hour, so that one is a fourth run and stays missing.
    assert summary.bars_missing == len(dropped) + 1
    assert summary.bars_filled == len(dropped)
    assert summary.bars_still_missing == 1
    windows = holes_request_windows(coingecko)
    assert len(windows) == 4
    for start, end in windows:
        assert not any(start < t <= end - hour for t in full.drop(dropped).index)
    for hole in holes:
        assert (hole[0], hole[-1] + hour) in windows
    pd.testing.assert_frame_equal(stored(database), full, check_freq=False)


def test_fill_gaps_when_nothing_missing_makes_no_request(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko
) -> None:
    collector.collect_crypto_history("bitcoin", days=30)
    coingecko.requests.clear()

    summary = collector.fill_gaps("bitcoin", "2021-03-20", "2021-03-25")

    assert summary.runs == []
    assert coingecko.requests == []
    assert "no missing bars" in str(summary)


def test_fill_gaps_when_start_before_first_bar_fetches_the_head(
    collector: HistoricalDataCollector, database: Database
) -> None:
    full = expected_hourly()
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", full.iloc[200:])

    summary = collector.fill_gaps("bitcoin", full.index[0], full.index[199])

    assert summary.bars_filled == 200
    pd.testing.assert_frame_equal(stored(database), full, check_freq=False)


def test_fill_gaps_when_a_window_answer_is_malformed_keeps_earlier_windows_and_stored_bars(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    full = expected_hourly()
    kept = full.drop(full.index[100:103]).drop(full.index[400:402])
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", kept)
    coingecko.fail_next("market_chart/range", Fault(200, "{}"))

    with pytest.raises(ApiError, match=r"market_chart/range \(bitcoin, .*no 'prices'"):
        collector.fill_gaps("bitcoin")
    assert row_count(database) == len(kept)  # nothing lost, nothing half-written


def test_fill_gaps_when_symbol_never_stored_and_no_start_raises(
    collector: HistoricalDataCollector,
) -> None:
    with pytest.raises(DataError, match="bitcoin"):
        collector.fill_gaps("bitcoin", timeframe="1h")


def test_update_all_when_series_is_behind_fetches_only_the_tail(
    collector: HistoricalDataCollector,
    coingecko: FakeCoinGecko,
    database: Database,
) -> None:
    full = expected_hourly()
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", full.iloc[:-48])

    [update] = collector.update_all()

    assert update.series == "coingecko/bitcoin/1h"
    assert update.bars_added == 48
    assert update.error is None
    [(start, end)] = holes_request_windows(coingecko)
    assert start == full.index[-48]
    assert end == full.index[-1] + pd.Timedelta(hours=1)
    pd.testing.assert_frame_equal(stored(database), full, check_freq=False)


def test_update_all_when_one_series_fails_reports_it_and_updates_the_others(
    collector: HistoricalDataCollector, database: Database
) -> None:
    full = expected_hourly()
    prices = PriceRepository(database)
    prices.upsert_bars("coingecko", "bitcoin", "1h", full.iloc[:-10])
    prices.upsert_bars("coingecko", "delisted-coin", "1h", full.iloc[:-10])

    updates = {update.series: update for update in collector.update_all()}

    assert updates["coingecko/bitcoin/1h"].bars_added == 10
    failed = updates["coingecko/delisted-coin/1h"]
    assert failed.bars_added == 0
    assert failed.error is not None
    assert "HTTP 404" in failed.error
    assert "FAILED" in str(failed)


def test_update_all_when_5m_series_is_days_behind_fetches_the_last_day_and_reports_the_rest(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    five = close_only_bars(parse_market_chart(load_sample(), "sample"), "5m", SAMPLE_NOW)
    last_kept = SAMPLE_NOW - pd.Timedelta(days=2)
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "5m", five[:last_kept])

    [update] = collector.update_all()

    day_ago = SAMPLE_NOW - pd.Timedelta(days=1)
    [(start, _)] = holes_request_windows(coingecko)
    assert day_ago <= start < day_ago + pd.Timedelta(minutes=5)  # the reachable part only
    assert update.bars_added > 0
    assert "out of reach: CoinGecko keeps points finer than hourly for the last day" in str(update)


def test_fill_gaps_when_history_limit_cuts_the_run_fetches_only_the_reachable_part(
    database: Database, coingecko: FakeCoinGecko, fake_time: FakeTime
) -> None:
    full = expected_hourly()
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", full.iloc[:200])
    fake_time.clock.set((SAMPLE_NOW + pd.Timedelta(days=355)).to_pydatetime())
    settings = Settings(coingecko_url=coingecko.base_url, coingecko_history_days=365)
    with HistoricalDataCollector.from_settings(
        settings, database, clock=fake_time.clock, sleep=fake_time.sleep
    ) as collector:
        summary = collector.fill_gaps("bitcoin", end_date=SAMPLE_NOW)

    reachable_from = SAMPLE_NOW - pd.Timedelta(days=10)
    windows = holes_request_windows(coingecko)
    assert windows[0][0] >= reachable_from
    assert windows[0][0] - reachable_from < pd.Timedelta(hours=1)
    assert "out of reach: CoinGecko's plan reaches back 365 days" in str(summary)
    stored_bars = stored(database)
    assert stored_bars.index.min() == full.index[0]
    assert not stored_bars[full.index[200] : reachable_from - pd.Timedelta(hours=1)].size


def test_collect_when_ohlc_then_close_only_of_same_size_they_stay_separate_series(
    collector: HistoricalDataCollector, database: Database
) -> None:
    collector.collect_crypto_history("bitcoin", days=30, timeframe="4h")
    candles = stored(database, "4h", source="coingecko-ohlc")

    collector.collect_crypto_history("bitcoin", days=60, timeframe="4h")

    pd.testing.assert_frame_equal(stored(database, "4h", source="coingecko-ohlc"), candles)
    flat = stored(database, "4h")
    assert (flat["high"] == flat["low"]).all()
    assert (candles["high"] > candles["low"]).any()


def test_update_all_when_ohlc_series_stored_refreshes_it_from_the_ohlc_endpoint(
    collector: HistoricalDataCollector, coingecko: FakeCoinGecko, database: Database
) -> None:
    collector.collect_crypto_history("bitcoin", days=30, timeframe="4h")
    candles = stored(database, "4h", source="coingecko-ohlc")
    prices = PriceRepository(database)
    prices.delete_series("coingecko-ohlc", "bitcoin", "4h")
    prices.upsert_bars("coingecko-ohlc", "bitcoin", "4h", candles.iloc[:-6])
    coingecko.requests.clear()

    [update] = collector.update_all()

    assert update.series == "coingecko-ohlc/bitcoin/4h"
    assert update.bars_added == 6
    assert [(r.path, r.args["days"]) for r in coingecko.requests] == [
        ("/api/v3/coins/bitcoin/ohlc", "30")
    ]
    pd.testing.assert_frame_equal(stored(database, "4h", source="coingecko-ohlc"), candles)


def test_collector_when_currency_in_capitals_uses_one_lower_case_source(
    collector: HistoricalDataCollector,
) -> None:
    eur = HistoricalDataCollector(collector.prices, collector.coingecko, vs_currency="EUR")

    assert (eur.source, eur.ohlc_source) == ("coingecko-eur", "coingecko-ohlc-eur")


def test_fill_gaps_when_hole_is_longer_than_90_days_splits_it_so_answers_stay_hourly(
    database: Database, coingecko: FakeCoinGecko, fake_time: FakeTime
) -> None:
    full = expected_hourly()
    PriceRepository(database).upsert_bars("coingecko", "bitcoin", "1h", full.iloc[:100])
    fake_time.clock.set((SAMPLE_NOW + pd.Timedelta(days=80)).to_pydatetime())
    settings = Settings(coingecko_url=coingecko.base_url)
    with HistoricalDataCollector.from_settings(
        settings, database, clock=fake_time.clock, sleep=fake_time.sleep
    ) as collector:
        summary = collector.fill_gaps("bitcoin")

    windows = holes_request_windows(coingecko)
    assert len(windows) == 2
    assert all(end - start <= pd.Timedelta(days=90) for start, end in windows)
    # By the later now the sample's last hour has closed too.
    everything = close_only_bars(parse_market_chart(load_sample(), "s"), "1h", SAMPLE_NOW.ceil("h"))
    assert summary.bars_filled == len(everything) - 100 == len(full) + 1 - 100
    pd.testing.assert_frame_equal(stored(database), everything, check_freq=False)
