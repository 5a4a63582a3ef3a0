"""CoinGecko answers: parsing, checks, and close-only bars that never look ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.net import ApiError
from marketbot.sources.coingecko_api import (
    api_key_header,
    close_only_bars,
    market_chart_timeframe,
    ohlc_timeframe,
    parse_market_chart,
    parse_ohlc,
)
from tests.support.coingecko_server import SAMPLE_NOW, load_sample

WHERE = "CoinGecko /coins/bitcoin/market_chart"


def reference_close_only_bars(
    prices: list[list[float]], volumes: list[list[float]], bar_seconds: int, now_ms: int
) -> dict[int, tuple[float, float]]:
    """Slow reference: bar open (ms) -> (close, volume), by the documented rule."""
    bar_ms = bar_seconds * 1000
    volume_at = {int(t): v for t, v in volumes}
    bars: dict[int, tuple[float, float]] = {}
    for stamp_ms, price in sorted(prices):
        stamp = int(stamp_ms)
        bar_open = math.ceil(stamp / bar_ms) * bar_ms - bar_ms
        bars[bar_open] = (price, volume_at.get(stamp, 0.0))
    return {k: v for k, v in bars.items() if k + bar_ms <= now_ms}


@pytest.mark.parametrize("timeframe", ["1h", "4h", "1d"])
def test_close_only_bars_when_real_sample_matches_slow_reference(timeframe: str) -> None:
    sample = load_sample()
    points = parse_market_chart(sample, WHERE)

    bars = close_only_bars(points, timeframe, SAMPLE_NOW)

    bar_seconds = {"1h": 3600, "4h": 14400, "1d": 86400}[timeframe]
    expected = reference_close_only_bars(
        sample["prices"], sample["total_volumes"], bar_seconds, SAMPLE_NOW.value // 1_000_000
    )
    assert [int(t.value // 1_000_000) for t in bars.index] == sorted(expected)
    assert bars["close"].tolist() == [expected[k][0] for k in sorted(expected)]
    assert bars["volume"].tolist() == [expected[k][1] for k in sorted(expected)]
    assert (bars["open"] == bars["close"]).all()
    assert (bars["high"] == bars["close"]).all()
    assert (bars["low"] == bars["close"]).all()


def test_close_only_bars_when_real_sample_hourly_gives_one_bar_per_hour_but_one() -> None:
    bars = close_only_bars(parse_market_chart(load_sample(), WHERE), "1h", SAMPLE_NOW)

    # 722 points in 719 distinct hours (some hours hold two); one hour has none; the last is open.
    assert len(bars) == 718
    assert bars.index[0] == pd.Timestamp("2021-03-09T12:00Z")
    assert bars.index[-1] == pd.Timestamp("2021-04-08T10:00Z")
    assert bars.loc["2021-03-09T12:00Z", "close"] == pytest.approx(54197.2112595257)


def test_close_only_bars_when_point_is_on_a_boundary_it_closes_the_bar_before() -> None:
    points = pd.DataFrame(
        {"price": [10.0, 11.0, 12.0], "volume": [1.0, 2.0, 3.0]},
        index=pd.to_datetime(["2024-01-02T00:00Z", "2024-01-02T13:00Z", "2024-01-03T00:00Z"]),
    )

    bars = close_only_bars(points, "1d", pd.Timestamp("2024-01-03T05:00Z"))

    assert bars.index.tolist() == [
        pd.Timestamp("2024-01-01T00:00Z"),
        pd.Timestamp("2024-01-02T00:00Z"),
    ]
    assert bars["close"].tolist() == [10.0, 12.0]


@given(
    offsets=st.lists(st.integers(0, 10 * 86_400_000), min_size=1, max_size=60, unique=True),
    now_offset=st.integers(0, 11 * 86_400_000),
    bar_seconds=st.sampled_from([300, 3600, 14_400, 86_400]),
)
def test_close_only_bars_when_any_points_no_bar_uses_a_price_seen_after_it_closed(
    offsets: list[int], now_offset: int, bar_seconds: int
) -> None:
    base = pd.Timestamp("2024-01-01T00:00Z")
    stamps = sorted(base + pd.Timedelta(milliseconds=o) for o in offsets)
    price_at = {stamp: 100.0 + i for i, stamp in enumerate(stamps)}
    points = pd.DataFrame(
        {"price": [price_at[s] for s in stamps], "volume": 0.0}, index=pd.DatetimeIndex(stamps)
    )
    now = base + pd.Timedelta(milliseconds=now_offset)
    timeframe = {300: "5m", 3600: "1h", 14_400: "4h", 86_400: "1d"}[bar_seconds]

    bars = close_only_bars(points, timeframe, now)

    bar = pd.Timedelta(seconds=bar_seconds)
    for bar_open, close in zip(bars.index, bars["close"], strict=True):
        assert bar_open + bar <= now  # only closed bars
        seen = [s for s in stamps if bar_open < s <= bar_open + bar]
        assert seen, "a bar exists only where a point was seen"
        assert close == price_at[seen[-1]]  # the last price seen in the bar, never a later one


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "expected an object with 'prices', got list"),
        ({"error": "x"}, "has no 'prices'"),
        ({"prices": "none"}, "'prices' should be a list, got str"),
        ({"prices": [[1, 2], [3]]}, r"prices\[1\] should be 2 numbers"),
        ({"prices": [[1, None]]}, r"prices\[0\] should be 2 numbers"),
        ({"prices": [[1, True]]}, r"prices\[0\] should be 2 numbers"),
        ({"prices": [[1, -5.0]]}, r"prices\[0\] is -5.0, not a positive price"),
        ({"prices": [[1, 5.0]], "total_volumes": [["a", 1]]}, r"total_volumes\[0\]"),
    ],
)
def test_parse_market_chart_when_answer_is_wrong_raises_naming_endpoint_and_field(
    payload: object, message: str
) -> None:
    with pytest.raises(ApiError, match=message) as info:
        parse_market_chart(payload, WHERE)
    assert str(info.value).startswith(WHERE)


def test_parse_market_chart_when_volumes_missing_for_some_points_uses_zero() -> None:
    payload = {"prices": [[0, 5.0], [3_600_000, 6.0]], "total_volumes": [[0, 9.0]]}

    points = parse_market_chart(payload, WHERE)

    assert points["volume"].tolist() == [9.0, 0.0]


def test_parse_ohlc_when_candles_stamped_at_close_stores_open_times_and_drops_open_one() -> None:
    close_1 = pd.Timestamp("2024-01-01T04:00Z").value // 1_000_000
    payload = [[close_1, 1.0, 3.0, 0.5, 2.0], [close_1 + 14_400_000, 2.0, 2.5, 1.5, 2.2]]

    bars = parse_ohlc(payload, "4h", pd.Timestamp("2024-01-01T06:00Z"), "CoinGecko /ohlc")

    assert bars.index.tolist() == [pd.Timestamp("2024-01-01T00:00Z")]
    assert bars.iloc[0].tolist() == [1.0, 3.0, 0.5, 2.0, 0.0]


def test_parse_ohlc_when_row_is_short_raises() -> None:
    with pytest.raises(ApiError, match=r"row 0 should be 5 numbers"):
        parse_ohlc([[1, 2, 3]], "4h", SAMPLE_NOW, "CoinGecko /ohlc")


@pytest.mark.parametrize(
    ("days", "chart", "candles"),
    [(1, "5m", "30m"), (2, "1h", "30m"), (30, "1h", "4h"), (90, "1h", "4d"), (365, "1d", "4d")],
)
def test_granularity_when_days_given_follows_coingecko_rules(
    days: int, chart: str, candles: str
) -> None:
    assert market_chart_timeframe(days) == chart
    assert ohlc_timeframe(days) == candles


def test_close_only_bars_when_no_points_returns_empty_frame() -> None:
    points = parse_market_chart({"prices": []}, WHERE)

    bars = close_only_bars(points, "1h", SAMPLE_NOW)

    assert bars.empty
    assert list(bars.columns) == ["open", "high", "low", "close", "volume"]
    assert np.dtype(bars["close"].dtype) == np.float64


def test_close_only_bars_when_weekly_bars_open_on_mondays() -> None:
    stamps = pd.date_range("2024-01-01T06:00Z", periods=20, freq="1D")  # 2024-01-01: Monday
    points = pd.DataFrame({"price": range(1, 21), "volume": 0.0}, index=stamps, dtype=float)

    bars = close_only_bars(points, "1w", pd.Timestamp("2024-01-21T00:00Z"))  # week 3 is open

    assert [t.day_name() for t in bars.index] == ["Monday", "Monday"]
    assert bars.index[0] == pd.Timestamp("2024-01-01T00:00Z")
    assert bars["close"].tolist() == [7.0, 14.0]  # Sunday 06:00's price closes each week


@pytest.mark.parametrize(
    ("url", "header"),
    [
        ("https://api.coingecko.com/api/v3", "x-cg-demo-api-key"),
        ("https://pro-api.coingecko.com/api/v3", "x-cg-pro-api-key"),
        ("http://127.0.0.1:8080/proxy", "x-cg-demo-api-key"),
    ],
)
def test_api_key_header_when_host_is_the_paid_one_uses_the_pro_header(
    url: str, header: str
) -> None:
    assert api_key_header(url) == header
