"""Exchange candles through ccxt's real ``binance`` class, against a local Binance look-alike.

The local server answers Binance's documented spot REST format (``/api/v3/exchangeInfo`` and
``/api/v3/klines``) with real hourly BTC prices from the bundled Bitstamp sample; ccxt's API
URLs are pointed at it. Time is a ManualClock advanced by a fake sleep, so backoffs and
Retry-After waits cost nothing.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC

import pandas as pd
import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from marketbot.core.errors import ConfigError, DataError, TemporaryError
from marketbot.net import PriorityRateLimiter, RetryPolicy
from marketbot.sources.exchange_candles import ExchangeCandleDownloader, candles_to_frame
from marketbot.sources.exchange_client import ExchangeClient
from marketbot.store import CryptoPriceHistory, Database, PriceRepository
from tests.support.fake_binance import (
    BARS,
    EXCHANGE_INFO,
    HOUR,
    PAIR,
    SPOT_ONLY,
    FakeBinance,
)
from tests.support.fake_time import FakeTime

# "Now" is half-way through the last sample bar: that candle is still open.
NOW = (BARS.index[-1] + HOUR / 2).to_pydatetime()
CLOSED = BARS.iloc[:-1]


@pytest.fixture
def database_backend(request: pytest.FixtureRequest) -> str:
    """SQLite, unless a test asks for both backends with ``BOTH_BACKENDS``.

    The store's own tests cover PostgreSQL; here it runs only where a download's writes
    matter (pagination, idempotence, a rejected page), which keeps this module fast.
    """
    return str(getattr(request, "param", "sqlite"))


BOTH_BACKENDS = pytest.mark.parametrize(
    "database_backend",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(NOW)


@pytest.fixture
def binance(httpserver: HTTPServer) -> FakeBinance:
    return FakeBinance(httpserver, BARS)


def make_client(
    httpserver: HTTPServer,
    fake_time: FakeTime,
    *,
    limiter: PriorityRateLimiter | None = None,
    timeout_seconds: float = 5.0,
    max_attempts: int = 3,
) -> ExchangeClient:
    policy = RetryPolicy(
        timeout_seconds=timeout_seconds, max_attempts=max_attempts, sleep=fake_time.sleep
    )
    return ExchangeClient(
        "binance",
        api_urls={"public": httpserver.url_for("/api/v3")},
        options=SPOT_ONLY,
        limiter=limiter,
        policy=policy,
        clock=fake_time.clock,
    )


@pytest.fixture
def downloader(
    httpserver: HTTPServer, fake_time: FakeTime, database: Database
) -> Iterator[ExchangeCandleDownloader]:
    with make_client(httpserver, fake_time) as client:
        yield ExchangeCandleDownloader(client, PriceRepository(database))


def stored(database: Database) -> pd.DataFrame:
    return PriceRepository(database).load_bars(PAIR, timeframe="1h", source="binance")


def row_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(
            connection.scalar(sa.select(sa.func.count()).select_from(CryptoPriceHistory)) or 0
        )


def delete_bars(database: Database, moments: pd.DatetimeIndex) -> None:
    table = CryptoPriceHistory.__table__
    seconds = [int(moment.value // 1_000_000_000) for moment in moments]
    with database.engine.begin() as connection:
        connection.execute(sa.delete(table).where(table.c.timestamp.in_(seconds)))


# -- pagination, ranges, idempotence ------------------------------------------------------


@BOTH_BACKENDS
def test_download_when_range_spans_pages_stores_every_closed_bar_page_by_page(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    progress: list[tuple[int, int]] = []

    summary = downloader.download(
        PAIR, "1h", since=BARS.index[0], progress=lambda done, total: progress.append((done, total))
    )

    first = BARS.index[0]
    assert binance.start_times() == [first, first + 1000 * HOUR, first + 2000 * HOUR]
    assert [query["limit"] for query in binance.kline_requests()] == ["1000", "1000", "499"]
    pd.testing.assert_frame_equal(stored(database), CLOSED)
    assert (summary.bars_stored, summary.pages) == (len(CLOSED), 3)
    assert (summary.first, summary.last) == (CLOSED.index[0], CLOSED.index[-1])
    assert str(summary).startswith(f"stored {len(CLOSED)} 1h bars of BTC/USDT (binance) from")
    assert progress == [(1000, 2499), (2000, 2499), (2499, 2499), (2499, 2499)]


def test_download_when_exchange_returns_the_open_candle_does_not_store_it(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    # A since between two bar opens makes the exchange's last page end with the open candle.
    downloader.download(PAIR, "1h", since=BARS.index[0] + HOUR / 2)

    pd.testing.assert_frame_equal(stored(database), CLOSED.iloc[1:])
    assert stored(database).index[-1] + HOUR <= pd.Timestamp(NOW)


@BOTH_BACKENDS
def test_download_when_run_twice_is_idempotent(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h", since=BARS.index[0])
    rows = row_count(database)

    summary = downloader.download(PAIR, "1h", since=BARS.index[0])

    assert summary.bars_stored == len(CLOSED)
    assert row_count(database) == rows == len(CLOSED)
    pd.testing.assert_frame_equal(stored(database), CLOSED)


def test_download_when_since_and_until_given_stores_only_that_range(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    since, until = BARS.index[100], BARS.index[349]

    summary = downloader.download(PAIR, "1h", since=since, until=until.isoformat())

    pd.testing.assert_frame_equal(stored(database), BARS.loc[since:until])
    assert binance.start_times() == [since]
    assert binance.kline_requests()[0]["limit"] == "250"
    assert (summary.first, summary.last, summary.bars_wanted) == (since, until, 250)


def test_download_without_since_resumes_after_the_newest_stored_bar(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[999])

    downloader.download(PAIR, "1h")

    assert binance.start_times()[-2:] == [BARS.index[0] + 1000 * HOUR, BARS.index[0] + 2000 * HOUR]
    pd.testing.assert_frame_equal(stored(database), CLOSED)


def test_download_without_since_when_nothing_stored_goes_back_the_default_lookback(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h")

    # 30 days back from NOW (half-way into a bar): the first whole bar after it.
    assert stored(database).index[0] == BARS.index[-1] - 30 * 24 * HOUR + HOUR
    assert len(stored(database)) == 30 * 24 - 1


def test_update_when_bars_stored_fetches_only_the_new_closed_ones(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[2399])

    summary = downloader.update(PAIR, "1h")

    assert binance.start_times()[-1] == BARS.index[2400]
    assert (summary.bars_stored, summary.first) == (99, BARS.index[2400])
    pd.testing.assert_frame_equal(stored(database), CLOSED)

    again = downloader.update(PAIR, "1h")  # up to date: nothing to ask for

    assert (again.bars_stored, again.pages) == (0, 0)
    assert str(again) == (
        "stored no 1h bars of BTC/USDT (binance): no closed bar is missing in the range asked for"
    )


def test_update_when_nothing_stored_raises_data_error_saying_download_first(
    downloader: ExchangeCandleDownloader, binance: FakeBinance
) -> None:
    with pytest.raises(DataError, match=r"no 1h bars of BTC/USDT from binance.*data download"):
        downloader.update(PAIR, "1h")


# -- gap filling ---------------------------------------------------------------------------


@BOTH_BACKENDS
def test_fill_gaps_when_bars_deleted_requests_only_the_holes(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h", since=BARS.index[0])
    delete_bars(database, BARS.index[500:510].append(BARS.index[1500:1800]))
    binance.server.clear_log()

    summary = downloader.fill_gaps(PAIR, "1h")

    assert binance.start_times() == [BARS.index[500], BARS.index[1500]]
    assert [query["limit"] for query in binance.kline_requests()] == ["10", "300"]
    assert (summary.bars_stored, summary.ranges, summary.bars_wanted) == (310, 2, 310)
    pd.testing.assert_frame_equal(stored(database), CLOSED)
    assert PriceRepository(database).find_gaps(PAIR, "1h", source="binance") == []


def test_fill_gaps_when_end_given_fills_only_holes_before_it(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    downloader.download(PAIR, "1h", since=BARS.index[0])
    delete_bars(database, BARS.index[500:510].append(BARS.index[1500:1800]))
    binance.server.clear_log()

    downloader.fill_gaps(PAIR, "1h", start=BARS.index[505], end=BARS.index[1000])

    assert binance.start_times() == [BARS.index[505]]
    assert len(PriceRepository(database).find_gaps(PAIR, "1h", source="binance")) == 2


# -- rate limits, retries, malformed answers ----------------------------------------------


def test_download_when_429_with_retry_after_waits_then_data_arrives(
    downloader: ExchangeCandleDownloader,
    binance: FakeBinance,
    httpserver: HTTPServer,
    fake_time: FakeTime,
    database: Database,
) -> None:
    httpserver.expect_oneshot_request("/api/v3/klines").respond_with_data(
        '{"code":-1003,"msg":"Too many requests."}', status=429, headers={"Retry-After": "7"}
    )

    downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[99])

    assert 7.0 in fake_time.sleeps
    assert len(binance.start_times()) == 2  # the refused request, then the same one again
    pd.testing.assert_frame_equal(stored(database), BARS.iloc[:100])


def test_download_when_429_storm_never_ends_raises_temporary_error_naming_endpoint(
    downloader: ExchangeCandleDownloader, httpserver: HTTPServer, database: Database
) -> None:
    httpserver.expect_request("/api/v3/exchangeInfo").respond_with_json(EXCHANGE_INFO)
    httpserver.expect_request("/api/v3/klines").respond_with_data(
        "", status=429, headers={"Retry-After": "1"}
    )

    with pytest.raises(TemporaryError, match=r"BTC/USDT 1h .*/api/v3/klines: .*429"):
        downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[99])
    assert row_count(database) == 0


def test_download_when_5xx_then_success_retries_with_backoff(
    downloader: ExchangeCandleDownloader,
    binance: FakeBinance,
    httpserver: HTTPServer,
    fake_time: FakeTime,
    database: Database,
) -> None:
    httpserver.expect_oneshot_request("/api/v3/klines").respond_with_data("down", status=503)

    downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[99])

    assert fake_time.sleeps == [1.0]  # tenacity's first backoff; the pace needed no wait
    pd.testing.assert_frame_equal(stored(database), BARS.iloc[:100])


def test_download_when_5xx_on_every_attempt_raises_temporary_error_naming_pair_and_endpoint(
    downloader: ExchangeCandleDownloader, httpserver: HTTPServer, database: Database
) -> None:
    httpserver.expect_request("/api/v3/exchangeInfo").respond_with_json(EXCHANGE_INFO)
    httpserver.expect_request("/api/v3/klines").respond_with_data("bad gateway", status=502)

    with pytest.raises(
        TemporaryError,
        match=r"binance BTC/USDT 1h candles since 2018-05-15T06:00:00Z: "
        r"http://127\.0\.0\.1:\d+/api/v3/klines: ExchangeNotAvailable.*gave up after 3 attempts",
    ):
        downloader.download(PAIR, "1h", since=BARS.index[0], until=BARS.index[99])
    assert row_count(database) == 0


def serve_second_page_as(binance: FakeBinance, body: str) -> None:
    """The first klines page is served right, the second with ``body`` (HTTP 200)."""
    pages: list[int] = []

    def handler(request: Request) -> Response:
        pages.append(1)
        if len(pages) == 2:
            return Response(body, content_type="application/json")
        return binance.klines(request)

    binance.server.clear_all_handlers()
    binance.server.expect_request("/api/v3/exchangeInfo").respond_with_json(EXCHANGE_INFO)
    binance.server.expect_request("/api/v3/klines").respond_with_handler(handler)


@pytest.mark.parametrize(
    "body",
    [
        '[[1529964000000,"6200.00000000","6250.00000000","6180.0000',  # cut off mid-answer
        "<html><body>502 Bad Gateway</body></html>",
        "",
    ],
    ids=["truncated", "html", "empty"],
)
def test_download_when_page_is_not_json_raises_naming_pair_and_endpoint_and_stores_none_of_it(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database, body: str
) -> None:
    serve_second_page_as(binance, body)

    with pytest.raises(
        DataError,
        match=r"binance BTC/USDT 1h candles since 2018-06-25T22:00:00Z: "
        r"http://127\.0\.0\.1:\d+/api/v3/klines: the answer is not valid JSON",
    ):
        downloader.download(PAIR, "1h", since=BARS.index[0])
    assert row_count(database) == 1000  # the first page only


def test_download_when_a_candle_has_a_wrong_field_raises_and_stores_none_of_that_page(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    page = FakeBinance.rows(BARS.iloc[1000:2000])
    page[10][2] = "n/a"  # the high of the 11th candle
    serve_second_page_as(binance, json.dumps(page))

    with pytest.raises(
        DataError,
        match=r"binance BTC/USDT 1h page since 2018-06-25T22:00:00Z: candle 11 "
        r"\(2018-06-26T08:00:00\+00:00\) has no numeric high: None",
    ):
        downloader.download(PAIR, "1h", since=BARS.index[0])
    assert row_count(database) == 1000


@BOTH_BACKENDS
def test_download_when_a_candle_breaks_ohlc_rules_raises_and_stores_none_of_that_page(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    page = FakeBinance.rows(BARS.iloc[1000:2000])
    page[3][3] = "999999.00000000"  # a low above the high
    serve_second_page_as(binance, json.dumps(page))

    with pytest.raises(DataError, match=r"BTC/USDT 1h page since 2018-06-25.*: high < low"):
        downloader.download(PAIR, "1h", since=BARS.index[0])
    assert row_count(database) == 1000


@pytest.mark.parametrize(
    ("entry", "shown"),
    [("abc", "'abc'"), (None, "None")],
    ids=["text", "null"],
)
def test_download_when_a_candle_has_no_open_time_raises_instead_of_leaving_a_hole(
    downloader: ExchangeCandleDownloader,
    binance: FakeBinance,
    database: Database,
    entry: object,
    shown: str,
) -> None:
    # ccxt drops a candle whose open time it cannot read; the page would have a silent hole.
    page = FakeBinance.rows(BARS.iloc[1000:2000])
    page[41][0] = entry
    serve_second_page_as(binance, json.dumps(page))

    with pytest.raises(
        DataError,
        match=rf"BTC/USDT 1h candles since 2018-06-25T22:00:00Z: http://127\.0\.0\.1:\d+/api/v3/"
        rf"klines: entry 42 of the answer is not a candle with an open time: \[{shown}, '6053",
    ):
        downloader.download(PAIR, "1h", since=BARS.index[0])
    assert row_count(database) == 1000


def test_download_when_answer_is_a_list_of_non_candles_raises_data_error(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    serve_second_page_as(binance, json.dumps([{"candles": "soon"}]))

    with pytest.raises(DataError, match=r"entry 1 of the answer is not a candle.*'candles'"):
        downloader.download(PAIR, "1h", since=BARS.index[0])
    assert row_count(database) == 1000


def test_download_when_server_is_slower_than_timeout_retries_then_succeeds(
    httpserver: HTTPServer, binance: FakeBinance, fake_time: FakeTime, database: Database
) -> None:
    calls: list[int] = []

    def slow_first(request: Request) -> Response:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.3)
        return binance.klines(request)

    httpserver.clear_all_handlers()
    httpserver.expect_request("/api/v3/exchangeInfo").respond_with_json(EXCHANGE_INFO)
    httpserver.expect_request("/api/v3/klines").respond_with_handler(slow_first)
    with make_client(httpserver, fake_time, timeout_seconds=0.2, max_attempts=4) as client:
        ExchangeCandleDownloader(client, PriceRepository(database)).download(
            PAIR, "1h", since=BARS.index[0], until=BARS.index[9]
        )

    assert len(calls) >= 2
    pd.testing.assert_frame_equal(stored(database), BARS.iloc[:10])


def test_download_when_nothing_listens_raises_temporary_error_naming_endpoint(
    fake_time: FakeTime, database: Database
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = ExchangeClient(
        "binance",
        api_urls={"public": f"http://127.0.0.1:{port}/api/v3"},
        options=SPOT_ONLY,
        policy=RetryPolicy(max_attempts=2, sleep=fake_time.sleep),
        clock=fake_time.clock,
    )

    with (
        client,
        pytest.raises(
            TemporaryError,
            match=rf"binance: loading markets: http://127\.0\.0\.1:{port}/api/v3/exchangeInfo: "
            r"NetworkError.*gave up after 2 attempts",
        ),
    ):
        ExchangeCandleDownloader(client, PriceRepository(database)).download(PAIR, "1h")


def test_download_paces_every_call_through_the_limiter(
    httpserver: HTTPServer, binance: FakeBinance, fake_time: FakeTime, database: Database
) -> None:
    limiter = PriorityRateLimiter(
        1, clock=fake_time.clock, sleep=fake_time.sleep, window_seconds=60
    )
    with make_client(httpserver, fake_time, limiter=limiter) as client:
        ExchangeCandleDownloader(client, PriceRepository(database)).download(
            PAIR, "1h", since=BARS.index[0]
        )

    # Markets and three pages at one call a minute: three waits of a minute.
    assert fake_time.sleeps == [60.0, 60.0, 60.0]
    assert len(binance.start_times()) == 3


# -- configuration errors ------------------------------------------------------------------


def test_download_when_pair_unknown_raises_config_error_with_close_matches(
    downloader: ExchangeCandleDownloader, binance: FakeBinance
) -> None:
    with pytest.raises(
        ConfigError, match=r"binance has no market 'BTC/USDC'; close matches: BTC/USDT"
    ):
        downloader.download("BTC/USDC", "1h")
    assert binance.kline_requests() == []


def test_download_when_pair_in_lower_case_suggests_the_exchange_spelling(
    downloader: ExchangeCandleDownloader, binance: FakeBinance
) -> None:
    with pytest.raises(ConfigError, match=r"no market 'btc/usdt'; close matches: BTC/USDT"):
        downloader.download("btc/usdt", "1h")


@pytest.mark.parametrize(
    ("timeframe", "message"),
    [
        ("7h", r"binance does not offer '7h' candles; it offers: 1s, 1m, 3m, .*1h, .*1w, 1M"),
        ("1M", r"'1M' bars have no fixed length"),
    ],
)
def test_download_when_timeframe_not_usable_raises_config_error(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, timeframe: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        downloader.download(PAIR, timeframe)
    assert binance.kline_requests() == []


def test_client_when_exchange_unknown_raises_config_error_with_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"unknown exchange 'binanse'; close matches: binance"):
        ExchangeClient("binanse")


def test_client_when_api_url_key_unknown_raises_config_error_listing_keys() -> None:
    with pytest.raises(ConfigError, match=r"binance has no API URL named 'spot'; .*public"):
        ExchangeClient("binance", api_urls={"spot": "http://127.0.0.1:1/api/v3"})


def test_download_when_since_is_not_a_date_raises_config_error(
    downloader: ExchangeCandleDownloader, binance: FakeBinance
) -> None:
    with pytest.raises(ConfigError, match=r"since: not a date or time: 'yesterday-ish'"):
        downloader.download(PAIR, "1h", since="yesterday-ish")


# -- page validation -----------------------------------------------------------------------


def test_candles_to_frame_when_times_repeat_raises_naming_the_page() -> None:
    candles = [[1_600_000_000_000, 1.0, 2.0, 0.5, 1.5, 3.0]] * 2

    with pytest.raises(DataError, match=r"^kraken ETH/EUR 1h page since X: duplicate timestamp"):
        candles_to_frame(candles, where="kraken ETH/EUR 1h page since X")


def test_candles_to_frame_when_open_time_has_milliseconds_raises() -> None:
    with pytest.raises(DataError, match=r"candle 1 opens at 1600000000123 ms, not a whole second"):
        candles_to_frame([[1_600_000_000_123, 1.0, 2.0, 0.5, 1.5, 3.0]], where="page")


def test_candles_to_frame_returns_a_canonical_frame() -> None:
    frame = candles_to_frame([[1_600_000_000_000, 1, 2.0, 0.5, 1.5, 0]], where="page")

    assert frame.index[0] == pd.Timestamp("2020-09-13T12:26:40", tz=UTC)
    assert frame.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 0.0]


def test_fill_gaps_when_start_is_before_the_first_bar_fetches_the_head_too(
    downloader: ExchangeCandleDownloader, binance: FakeBinance, database: Database
) -> None:
    PriceRepository(database).upsert_bars("binance", PAIR, "1h", CLOSED.iloc[100:])

    summary = downloader.fill_gaps(PAIR, "1h", start=CLOSED.index[40])

    assert summary.bars_stored == 60
    assert binance.start_times() == [CLOSED.index[40]]
    pd.testing.assert_frame_equal(stored(database), CLOSED.iloc[40:], check_freq=False)
