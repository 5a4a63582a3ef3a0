"""CoinGecko's public API: the three price endpoints, their answers checked and made into bars.

CoinGecko's free (demo) plan gives prices, not candles:

- ``/coins/{id}/market_chart?vs_currency=usd&days=N`` answers
  ``{"prices": [[ms, price]], "market_caps": [...], "total_volumes": [[ms, volume]]}`` with
  5-minute points for 1 day, hourly points for 2-90 days and daily points (00:00 UTC) beyond;
- ``/coins/{id}/market_chart/range?from=S&to=S`` answers the same shape for a time range
  (5-minute points within the last day, hourly up to 90 days, daily beyond);
- ``/coins/{id}/ohlc?vs_currency=usd&days=N`` answers candles ``[[ms, o, h, l, c]]`` stamped
  with their close time: 30-minute candles for 1-2 days, 4-hour up to 30, 4-day beyond.

Points become **close-only bars** (open = high = low = close): a point at time ``t`` closes
the bar ``(open, open + bar]`` that contains it, the last point of a bar wins, and a bar that
has not closed yet at ``now`` is dropped. So a price is never labelled earlier than the moment
it was seen, and a backtest on these bars cannot look ahead. ``volume`` is CoinGecko's rolling
24-hour volume in the quote currency at that last point, not the bar's own volume.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from marketbot.config import Settings
from marketbot.core.clock import Clock
from marketbot.core.errors import ConfigError
from marketbot.core.timeframes import (
    NANOSECONDS_PER_SECOND,
    bar_grid_offset_seconds,
    timeframe_seconds,
)
from marketbot.net import PRIORITY_NORMAL, ApiError, HttpClient, PriorityRateLimiter, RetryPolicy

__all__ = [
    "OHLC_DAYS",
    "CoinGeckoClient",
    "api_key_header",
    "close_only_bars",
    "market_chart_timeframe",
    "ohlc_timeframe",
    "parse_market_chart",
    "parse_ohlc",
]

# The ``days`` values the ohlc endpoint accepts on the free plan.
OHLC_DAYS: Final = (1, 7, 14, 30, 90, 180, 365)
_MS_PER_SECOND: Final = 1000
_DAY_SECONDS: Final = 86_400
_DEMO_KEY_HEADER: Final = "x-cg-demo-api-key"
_PRO_KEY_HEADER: Final = "x-cg-pro-api-key"
_PRO_HOST: Final = "pro-api.coingecko.com"


def api_key_header(base_url: str) -> str:
    """The header CoinGecko reads the key from: the pro one on its paid host, else demo."""
    return _PRO_KEY_HEADER if urlsplit(base_url).hostname == _PRO_HOST else _DEMO_KEY_HEADER


def market_chart_timeframe(days: int) -> str:
    """The spacing of market_chart points for ``days`` of history (CoinGecko's automatic rule)."""
    if days <= 1:
        return "5m"
    if days <= 90:
        return "1h"
    return "1d"


def ohlc_timeframe(days: int) -> str:
    """The candle size of the ohlc endpoint for ``days`` of history."""
    if days <= 2:
        return "30m"
    if days <= 30:
        return "4h"
    return "4d"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rows(payload: Any, key: str, width: int, where: str) -> list[list[float]]:
    """``payload[key]`` (or the payload itself when key is empty) as rows of ``width`` numbers."""
    rows = payload.get(key) if key else payload
    if not isinstance(rows, list):
        name = f"'{key}'" if key else "the answer"
        raise ApiError(f"{where}: {name} should be a list, got {type(rows).__name__}")
    for position, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == width and all(_number(v) for v in row)):
            label = f"{key}[{position}]" if key else f"row {position}"
            raise ApiError(f"{where}: {label} should be {width} numbers, got {row!r:.80}")
    return rows


def parse_market_chart(payload: Any, where: str) -> pd.DataFrame:
    """Points of a market_chart answer: UTC-indexed ``price`` and ``volume`` columns.

    Raises:
        ApiError: not an object with ``prices`` (and, if present, ``total_volumes``) as
            lists of ``[ms, number]``, or a price that is not positive.
    """
    if not isinstance(payload, dict):
        raise ApiError(f"{where}: expected an object with 'prices', got {type(payload).__name__}")
    if "prices" not in payload:
        raise ApiError(f"{where}: the answer has no 'prices' (keys: {sorted(payload)[:5]})")
    prices = _rows(payload, "prices", 2, where)
    volumes = _rows(payload, "total_volumes", 2, where) if "total_volumes" in payload else []
    for position, (_, price) in enumerate(prices):
        if price <= 0:
            raise ApiError(f"{where}: prices[{position}] is {price}, not a positive price")
    price_series = _series(prices, "price")
    volume_series = _series(volumes, "volume")
    points = pd.concat([price_series, volume_series.reindex(price_series.index)], axis=1)
    points["volume"] = points["volume"].fillna(0.0)
    return points


def _series(rows: Sequence[Sequence[float]], name: str) -> pd.Series:
    array = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    index = pd.to_datetime(array[:, 0].astype(np.int64), unit="ms", utc=True).as_unit("ns")
    series = pd.Series(array[:, 1], index=index, name=name)
    # Duplicate stamps happen at CoinGecko's bucket edges; the later row is the fresher one.
    return series[~series.index.duplicated(keep="last")].sort_index()


def close_only_bars(points: pd.DataFrame, timeframe: str, now: pd.Timestamp) -> pd.DataFrame:
    """Close-only OHLCV bars of ``timeframe`` from price points (see the module docstring).

    Args:
        points: ``price`` and ``volume`` columns on a UTC index, as parse_market_chart gives.
        timeframe: Bar length, e.g. ``1h``.
        now: Bars closing after this moment are still open and are dropped.
    """
    bar_seconds = timeframe_seconds(timeframe)
    bar_ns = bar_seconds * NANOSECONDS_PER_SECOND
    offset_ns = bar_grid_offset_seconds(bar_seconds) * NANOSECONDS_PER_SECOND
    if points.empty:
        return _empty_bars()
    stamps = pd.DatetimeIndex(points.index).as_unit("ns").asi8 - offset_ns
    # The bar (open, open + bar] holds the point: a point on a boundary closes the bar before.
    opens = -(-stamps // bar_ns) * bar_ns - bar_ns + offset_ns
    last_of_bar = np.flatnonzero(np.append(opens[1:] != opens[:-1], True))
    opens = opens[last_of_bar]
    closes = points["price"].to_numpy()[last_of_bar]
    complete = opens + bar_ns <= now.value
    index = pd.DatetimeIndex(pd.to_datetime(opens[complete], unit="ns", utc=True), name="timestamp")
    close = closes[complete]
    return pd.DataFrame(
        {
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": points["volume"].to_numpy()[last_of_bar][complete],
        },
        index=index,
    )


def parse_ohlc(payload: Any, timeframe: str, now: pd.Timestamp, where: str) -> pd.DataFrame:
    """OHLCV bars from an ohlc answer (volume 0: the endpoint has none); open candles dropped.

    Raises:
        ApiError: not a list of ``[ms, open, high, low, close]`` rows.
    """
    rows = _rows(payload, "", 5, where)
    if not rows:
        return _empty_bars()
    array = np.asarray(rows, dtype=np.float64)
    close_ns = array[:, 0].astype(np.int64) * (NANOSECONDS_PER_SECOND // _MS_PER_SECOND)
    complete = close_ns <= now.value
    open_ns = close_ns - timeframe_seconds(timeframe) * NANOSECONDS_PER_SECOND
    bars = pd.DataFrame(
        array[complete, 1:5],
        columns=["open", "high", "low", "close"],
        index=pd.DatetimeIndex(
            pd.to_datetime(open_ns[complete], unit="ns", utc=True), name="timestamp"
        ),
    )
    bars["volume"] = 0.0
    return bars[~bars.index.duplicated(keep="last")].sort_index()


def _empty_bars() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="timestamp")
    columns = ["open", "high", "low", "close", "volume"]
    return pd.DataFrame({name: pd.Series([], dtype=np.float64) for name in columns}, index=index)


@dataclass(frozen=True, slots=True)
class CoinGeckoClient:
    """The CoinGecko endpoints marketbot uses, answers checked, over one :class:`HttpClient`.

    Attributes:
        http: The client (base URL, API key header, rate limiter, retries).
    """

    http: HttpClient

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> CoinGeckoClient:
        """A client for ``MARKETBOT_COINGECKO_URL`` with the optional demo API key."""
        headers = {}
        if settings.coingecko_api_key is not None:
            header = api_key_header(settings.coingecko_url)
            headers[header] = settings.coingecko_api_key.get_secret_value()
        # One sleep for the limiter's waits and the retries' backoff, so tests can fake both.
        limiter = PriorityRateLimiter(settings.coingecko_calls_per_minute, clock=clock, sleep=sleep)
        http = HttpClient(
            settings.coingecko_url,
            service="CoinGecko",
            limiter=limiter,
            headers=headers,
            policy=RetryPolicy.from_settings(settings, sleep=sleep),
            clock=clock,
        )
        return cls(http)

    def close(self) -> None:
        """Close the HTTP connections."""
        self.http.close()

    def market_chart(
        self, coin_id: str, *, vs_currency: str, days: int, priority: int = PRIORITY_NORMAL
    ) -> pd.DataFrame:
        """Price points for the last ``days`` days (see :func:`parse_market_chart`)."""
        path = f"coins/{_coin(coin_id)}/market_chart"
        payload = self.http.get_json(
            path, {"vs_currency": vs_currency, "days": days}, priority=priority
        )
        return parse_market_chart(payload, f"CoinGecko /{path} ({coin_id}, {days} days)")

    def market_chart_range(
        self,
        coin_id: str,
        *,
        vs_currency: str,
        start: pd.Timestamp,
        end: pd.Timestamp,
        priority: int = PRIORITY_NORMAL,
    ) -> pd.DataFrame:
        """Price points from ``start`` to ``end`` (whole seconds, inclusive)."""
        path = f"coins/{_coin(coin_id)}/market_chart/range"
        params: dict[str, str | int] = {
            "vs_currency": vs_currency,
            "from": start.value // NANOSECONDS_PER_SECOND,
            "to": end.value // NANOSECONDS_PER_SECOND,
        }
        payload = self.http.get_json(path, params, priority=priority)
        where = f"CoinGecko /{path} ({coin_id}, {start.isoformat()} to {end.isoformat()})"
        return parse_market_chart(payload, where)

    def ohlc(
        self,
        coin_id: str,
        *,
        vs_currency: str,
        days: int,
        now: pd.Timestamp,
        priority: int = PRIORITY_NORMAL,
    ) -> pd.DataFrame:
        """Candles for the last ``days`` days (one of :data:`OHLC_DAYS`), as OHLCV bars."""
        if days not in OHLC_DAYS:
            raise ConfigError(f"CoinGecko's ohlc endpoint takes days in {OHLC_DAYS}, not {days}")
        path = f"coins/{_coin(coin_id)}/ohlc"
        payload = self.http.get_json(
            path, {"vs_currency": vs_currency, "days": days}, priority=priority
        )
        where = f"CoinGecko /{path} ({coin_id}, {days} days)"
        return parse_ohlc(payload, ohlc_timeframe(days), now, where)


def _coin(coin_id: str) -> str:
    """The coin id, checked: CoinGecko ids are lower-case words joined by dashes."""
    if not coin_id or not all(c.isalnum() or c in "-_." for c in coin_id):
        raise ConfigError(
            f"{coin_id!r} is not a CoinGecko coin id (e.g. 'bitcoin', 'ethereum', 'usd-coin')"
        )
    return coin_id
