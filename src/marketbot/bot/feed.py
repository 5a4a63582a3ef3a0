"""Forward trading's market data: an exchange's closed bars and its ticker, on public data.

A bar is closed once its open time plus its spacing is not after "now" (the injected clock):
the candle still forming is never handed to the strategy, so forward signals see what a
replay of the same stored bars would see. A ticker is stamped with the time the bot saw it
(the clock's), not the exchange's, so fills and deadlines run on one time line.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Protocol

import pandas as pd

from marketbot.core.bars import OHLCV_COLUMNS
from marketbot.core.clock import Clock
from marketbot.core.errors import DataError
from marketbot.execution.models import Ticker
from marketbot.net.rate_limiter import PRIORITY_NORMAL
from marketbot.sources.exchange_candles import candles_to_frame
from marketbot.sources.exchange_client import ExchangeClient

# Binance answers at most 1,000 candles a request; other exchanges fewer, and paging copes.
_PAGE: Final = 1000
_MS: Final = 1000


class MarketFeed(Protocol):
    """Where a forward run reads its bars and prices."""

    @property
    def source(self) -> str:
        """The exchange id, stored as the run's source."""
        ...

    def closed_bars(self, since: datetime, now: datetime) -> pd.DataFrame:
        """The bars opened at or after ``since`` that are closed at ``now`` (OHLCV, UTC)."""
        ...

    def ticker(self, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        """The pair's latest prices, stamped with the clock's time."""
        ...


class ExchangeFeed:
    """One pair and timeframe on a ccxt exchange's public endpoints, through ``net``."""

    def __init__(self, client: ExchangeClient, pair: str, timeframe: str, clock: Clock) -> None:
        self.client = client
        self.pair = pair
        self.timeframe = timeframe
        self.clock = clock
        client.load_markets()
        client.require_pair(pair)
        self.bar_seconds = client.require_timeframe(timeframe)

    @property
    def source(self) -> str:
        """The exchange id."""
        return self.client.exchange_id

    def closed_bars(self, since: datetime, now: datetime) -> pd.DataFrame:
        """Every closed bar from ``since`` to ``now``, paging through the exchange."""
        since_ms = _epoch_ms(since)
        last_open_ms = _epoch_ms(now) - self.bar_seconds * _MS
        pages: list[pd.DataFrame] = []
        while since_ms <= last_open_ms:
            where = f"{self.source} {self.pair} {self.timeframe} candles"
            candles = self.client.fetch_ohlcv(self.pair, self.timeframe, since_ms, _PAGE)
            if not candles:  # not published yet (ccxt also drops candles before `since`)
                break
            page = candles_to_frame(candles, where=where)
            opens_ms = pd.DatetimeIndex(page.index).asi8 // 1_000_000
            kept = (opens_ms >= since_ms) & (opens_ms <= last_open_ms)
            if not kept.any():
                break
            pages.append(page[kept])
            since_ms = int(opens_ms[kept][-1]) + self.bar_seconds * _MS
        if not pages:
            empty = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="timestamp")
            return pd.DataFrame({name: pd.Series(dtype="float64") for name in OHLCV_COLUMNS},
                                index=empty)  # fmt: skip
        return pd.concat(pages)

    def ticker(self, *, priority: int = PRIORITY_NORMAL) -> Ticker:
        """The latest prices; the bid and ask when the exchange gives them.

        ``priority``: 5 for an entry's price, 1 for the exit polls between bars.
        """
        raw = self.client.fetch_ticker(self.pair, priority=priority)
        last = _price(raw, "last") or _price(raw, "close")
        if last is None:
            raise DataError(f"{self.source} {self.pair} ticker: no last price in the answer")
        return Ticker(
            symbol=self.pair,
            at=self.clock.now(),
            last=last,
            bid=_price(raw, "bid"),
            ask=_price(raw, "ask"),
        )


def _price(raw: dict[str, Any], key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    try:
        price = float(value)
    except (TypeError, ValueError):
        raise DataError(f"ticker {key} {value!r} is not a number") from None
    return price if price > 0.0 else None


def _epoch_ms(moment: datetime) -> int:
    return int(pd.Timestamp(moment).value // 1_000_000)
