"""HistoricalDataCollector: CoinGecko price history into the store, with gap filling and updates.

Series are stored as (source ``coingecko``, the coin id as given, the bar length), so
``--symbol bitcoin`` finds them beside the bundled data. Every fetched batch is written in one
transaction, and writes are upserts, so a failed request stores nothing of its batch and a
re-run stores no duplicates. See :mod:`marketbot.sources.coingecko_api` for how CoinGecko's
points become close-only bars.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

from marketbot.config import Settings
from marketbot.core.clock import Clock, SystemClock
from marketbot.core.errors import ConfigError, DataError, MarketbotError
from marketbot.core.timeframes import timeframe_seconds
from marketbot.core.timestamps import TimeLike, parse_utc
from marketbot.sources.coingecko_api import (
    OHLC_DAYS,
    CoinGeckoClient,
    close_only_bars,
    market_chart_timeframe,
    ohlc_timeframe,
)
from marketbot.sources.missing_ranges import MissingRun, missing_runs, split_run
from marketbot.store.database import Database
from marketbot.store.prices import PriceRepository, SeriesSummary, canonical_timeframe

__all__ = [
    "COINGECKO_SOURCE",
    "CollectionSummary",
    "GapFillSummary",
    "HistoricalDataCollector",
    "SeriesUpdate",
    "coingecko_currency",
    "coingecko_sources",
]

COINGECKO_SOURCE: Final = "coingecko"
# How far back CoinGecko's free demo plan answers; paid plans reach further.
DEMO_HISTORY_DAYS: Final = 365
_LOG = logging.getLogger(__name__)
Progress = Callable[[int, int], None]
_DAY_SECONDS: Final = 86_400
# market_chart/range gives hourly points for windows up to 90 days: longer windows of an
# hourly (or finer) series are cut, or CoinGecko would answer with daily points.
_HOURLY_WINDOW_SECONDS: Final = 90 * _DAY_SECONDS
# Daily windows are cut too, to keep each answer (and each transaction) a few kB.
_DAILY_WINDOW_SECONDS: Final = 365 * _DAY_SECONDS


@dataclass(frozen=True, slots=True)
class CollectionSummary:
    """What one collection stored.

    Attributes:
        source: The series' source, ``coingecko``.
        symbol: The coin id.
        timeframe: Bar length stored.
        bars_stored: Bars written (new or refreshed).
        first: Open time of the first bar written, or None.
        last: Open time of the last bar written, or None.
        endpoint: The CoinGecko endpoint used.
    """

    source: str
    symbol: str
    timeframe: str
    bars_stored: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    endpoint: str

    def __str__(self) -> str:
        if self.first is None or self.last is None:
            span = "no complete bars"
        else:
            span = f"{self.first:%Y-%m-%d %H:%M} .. {self.last:%Y-%m-%d %H:%M} UTC"
        return (
            f"{self.source}/{self.symbol}/{self.timeframe}: {self.bars_stored} bars stored "
            f"({span}) from {self.endpoint}"
        )


@dataclass(frozen=True, slots=True)
class SeriesUpdate:
    """The outcome of bringing one stored series up to date.

    Attributes:
        series: Which series, ``source/symbol/timeframe``.
        bars_added: Bars fetched and stored.
        error: Why the update failed, or None when it worked.
        detail: A one-line account of what was done.
    """

    series: str
    bars_added: int
    error: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        if self.error is not None:
            return f"{self.series}: FAILED: {self.error}"
        return self.detail or f"{self.series}: {self.bars_added} bars added"


@dataclass(frozen=True, slots=True)
class GapFillSummary:
    """What a gap fill found and fetched.

    Attributes:
        source: The series' source.
        symbol: The coin id.
        timeframe: Bar length.
        runs: The missing stretches found (before fetching).
        bars_missing: Bars missing in total.
        bars_filled: Bars fetched and stored.
        requests: API requests made.
        notes: Why some bars could not be fetched, if any.
    """

    source: str
    symbol: str
    timeframe: str
    runs: list[MissingRun]
    bars_missing: int
    bars_filled: int
    requests: int
    notes: list[str] = field(default_factory=list)

    @property
    def bars_still_missing(self) -> int:
        """Bars that were missing and still are (the source had no point for them)."""
        return self.bars_missing - self.bars_filled

    def __str__(self) -> str:
        head = f"{self.source}/{self.symbol}/{self.timeframe}: "
        if not self.runs:
            return head + "no missing bars"
        text = (
            f"{self.bars_missing} missing bars in {len(self.runs)} gaps; {self.bars_filled} "
            f"filled with {self.requests} requests, {self.bars_still_missing} still missing"
        )
        return head + text + "".join(f"; {note}" for note in self.notes)


class HistoricalDataCollector:
    """Collects CoinGecko price history into the store, fills its gaps, keeps it up to date.

    Args:
        prices: Where bars are stored.
        coingecko: The CoinGecko client.
        clock: What "now" is (bars still open at now are never stored).
        vs_currency: Quote currency; other than ``usd``, the source becomes
            ``coingecko-<currency>`` so that prices in two currencies never share a series.
    """

    def __init__(
        self,
        prices: PriceRepository,
        coingecko: CoinGeckoClient,
        *,
        clock: Clock | None = None,
        vs_currency: str = "usd",
        history_days: int | None = DEMO_HISTORY_DAYS,
    ) -> None:
        if not vs_currency.isalpha():
            raise ConfigError(f"vs_currency must be a currency code like 'usd': {vs_currency!r}")
        if history_days is not None and history_days < 1:
            raise ConfigError(f"history_days must be at least 1 (or None), got {history_days}")
        self.prices = prices
        self.coingecko = coingecko
        self.vs_currency = vs_currency.lower()
        self.source, self.ohlc_source = coingecko_sources(self.vs_currency)
        self.history_days = history_days
        self._clock: Clock = clock if clock is not None else SystemClock()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        database: Database,
        *,
        vs_currency: str = "usd",
        clock: Clock | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> HistoricalDataCollector:
        """A collector on the configured CoinGecko URL and key, storing into ``database``."""
        coingecko = CoinGeckoClient.from_settings(settings, clock=clock, sleep=sleep)
        return cls(
            PriceRepository(database),
            coingecko,
            clock=clock,
            vs_currency=vs_currency,
            history_days=settings.coingecko_history_days or None,
        )

    def close(self) -> None:
        """Close the HTTP connections."""
        self.coingecko.close()

    def __enter__(self) -> HistoricalDataCollector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp(self._clock.now())

    def collect_crypto_history(
        self, symbol: str = "bitcoin", days: int = 365, *, timeframe: str | None = None
    ) -> CollectionSummary:
        """Fetch the last ``days`` days of ``symbol`` and store them (one transaction).

        Without ``timeframe`` the bars have CoinGecko's own spacing for that many days (5m for
        1 day, 1h up to 90, 1d beyond). A coarser timeframe that is a whole multiple of it is
        built from the same points; the ohlc endpoint's candle size for ``days`` (30m, 4h or
        4d) fetches real candles instead.

        Raises:
            ConfigError: ``days`` is not a positive whole number, or ``timeframe`` cannot be
                made from what CoinGecko gives for ``days`` (the message says what can).
            DataError: CoinGecko answered with no points, or with malformed data.
        """
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConfigError(f"days must be a whole number of days >= 1, got {days!r}")
        now = self._now()
        native = market_chart_timeframe(days)
        wanted = canonical_timeframe(timeframe) if timeframe else native
        candle = ohlc_timeframe(days) if days in OHLC_DAYS else None
        if wanted == candle and wanted != native:
            return self._collect_ohlc(symbol, days, now)
        if timeframe_seconds(wanted) % timeframe_seconds(native) == 0:
            points = self.coingecko.market_chart(symbol, vs_currency=self.vs_currency, days=days)
            if points.empty:
                raise DataError(f"CoinGecko /coins/{symbol}/market_chart: no prices ({days} days)")
            bars = close_only_bars(points, wanted, now)
            return self._store(self.source, symbol, wanted, bars, f"/coins/{symbol}/market_chart")
        ohlc = f", or {candle} candles (ohlc)" if candle else ""
        raise ConfigError(
            f"CoinGecko gives {days} days of {symbol} as {native} points{ohlc}; timeframe "
            f"{wanted} is not a whole multiple of {native}. Choose another timeframe or days."
        )

    def _collect_ohlc(self, symbol: str, days: int, now: pd.Timestamp) -> CollectionSummary:
        # Real candles live in their own series: close-only bars must never overwrite them.
        bars = self.coingecko.ohlc(symbol, vs_currency=self.vs_currency, days=days, now=now)
        endpoint = f"/coins/{symbol}/ohlc"
        return self._store(self.ohlc_source, symbol, ohlc_timeframe(days), bars, endpoint)

    def refresh_ohlc(self, symbol: str, timeframe: str) -> CollectionSummary:
        """Fetch the longest ohlc window with ``timeframe`` candles and store what it holds.

        The ohlc endpoint takes no date range, only ``days``; so an ohlc series is brought up
        to date (and its recent holes filled) by asking for the most days that still give
        candles of its size: 1 day for 30m, 30 for 4h, 365 for 4d.

        Raises:
            ConfigError: CoinGecko has no ohlc candles of that size.
        """
        timeframe = canonical_timeframe(timeframe)
        reach = [days for days in OHLC_DAYS if ohlc_timeframe(days) == timeframe]
        if not reach:
            sizes = sorted({ohlc_timeframe(days) for days in OHLC_DAYS}, key=timeframe_seconds)
            raise ConfigError(
                f"CoinGecko's ohlc candles are {', '.join(sizes)}; there are no {timeframe} ones"
            )
        return self._collect_ohlc(symbol, max(reach), self._now())

    def _store(
        self, source: str, symbol: str, timeframe: str, bars: pd.DataFrame, endpoint: str
    ) -> CollectionSummary:
        if not bars.empty:
            self.prices.upsert_bars(source, symbol, timeframe, bars)
        index = pd.DatetimeIndex(bars.index)
        return CollectionSummary(
            source=source,
            symbol=symbol,
            timeframe=timeframe,
            bars_stored=len(bars),
            first=index[0] if len(index) else None,
            last=index[-1] if len(index) else None,
            endpoint=endpoint,
        )

    def find_missing(
        self,
        symbol: str,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        timeframe: str | None = None,
    ) -> tuple[str, list[MissingRun]]:
        """The timeframe and the missing runs of the stored series in a range.

        ``start_date`` defaults to the first stored bar, ``end_date`` to the last bar that
        has closed by now.

        Raises:
            DataError: nothing of ``symbol`` from this source is stored and no timeframe and
                start date were given, or it is stored in several timeframes and none is
                chosen.
        """
        now = self._now()
        if timeframe is None:
            _, timeframe = self.prices.resolve_series(symbol, source=self.source)
        timeframe = canonical_timeframe(timeframe)
        bar_seconds = timeframe_seconds(timeframe)
        stored = self.prices.bar_opens(self.source, symbol, timeframe)
        if start_date is None and stored.empty:
            raise DataError(
                f"nothing of {symbol} ({timeframe}) from {self.source} is stored; give a start "
                f"date, or collect it first"
            )
        start = parse_utc(start_date, "start_date") if start_date is not None else stored[0]
        last_closed = now - pd.Timedelta(seconds=bar_seconds)
        end = (
            min(parse_utc(end_date, "end_date"), last_closed)
            if end_date is not None
            else last_closed
        )
        return timeframe, missing_runs(stored, start, end, bar_seconds)

    def fill_gaps(
        self,
        symbol: str,
        start_date: TimeLike | None = None,
        end_date: TimeLike | None = None,
        *,
        timeframe: str | None = None,
        progress: Progress | None = None,
    ) -> GapFillSummary:
        """Fetch only the missing bars of a stored series (``/market_chart/range``).

        Each missing stretch is fetched in windows short enough for CoinGecko to answer at
        the series' spacing; each window's bars are stored in one transaction. Bars the
        source has no point for stay missing and are reported.

        Raises:
            DataError: as for :meth:`find_missing`, or a malformed answer.
        """
        timeframe, runs = self.find_missing(symbol, start_date, end_date, timeframe=timeframe)
        bar_seconds = timeframe_seconds(timeframe)
        windows, notes = self._windows(runs, bar_seconds)
        filled = 0
        for done, window in enumerate(windows, start=1):
            filled += self._fetch_window(symbol, timeframe, window)
            if progress is not None:
                progress(done, len(windows))
        return GapFillSummary(
            source=self.source,
            symbol=symbol,
            timeframe=timeframe,
            runs=runs,
            bars_missing=sum(run.bars for run in runs),
            bars_filled=filled,
            requests=len(windows),
            notes=notes,
        )

    def _windows(
        self, runs: list[MissingRun], bar_seconds: int
    ) -> tuple[list[MissingRun], list[str]]:
        """Request windows over the reachable part of the runs, and notes on the rest."""
        now = self._now()
        reachable_from, why = None, ""
        if self.history_days is not None:
            reachable_from = now - pd.Timedelta(days=self.history_days)
            why = f"CoinGecko's plan reaches back {self.history_days} days"
        if bar_seconds < 3600:
            reachable_from = now - pd.Timedelta(days=1)
            why = "CoinGecko keeps points finer than hourly for the last day only"
        reachable = [_clip(run, reachable_from, bar_seconds) for run in runs]
        kept = [run for run in reachable if run is not None]
        unreachable = sum(run.bars for run in runs) - sum(run.bars for run in kept)
        notes = [f"{unreachable} bars are out of reach: {why}"] if unreachable else []
        if bar_seconds < 3600:
            window_seconds = _DAY_SECONDS
        elif bar_seconds < _DAY_SECONDS:
            window_seconds = _HOURLY_WINDOW_SECONDS
        else:
            window_seconds = max(_DAILY_WINDOW_SECONDS, bar_seconds)
        max_bars = max(1, window_seconds // bar_seconds)
        return [piece for run in kept for piece in split_run(run, bar_seconds, max_bars)], notes

    def _fetch_window(self, symbol: str, timeframe: str, window: MissingRun) -> int:
        bar = pd.Timedelta(seconds=timeframe_seconds(timeframe))
        # Bar (open, open + bar] closes with the last point in it: ask up to the last close.
        points = self.coingecko.market_chart_range(
            symbol, vs_currency=self.vs_currency, start=window.first, end=window.last + bar
        )
        bars = close_only_bars(points, timeframe, self._now())
        wanted = (bars.index >= window.first) & (bars.index <= window.last)
        bars = bars[wanted]
        if not bars.empty:
            self.prices.upsert_bars(self.source, symbol, timeframe, bars)
        return len(bars)

    def update_all(
        self,
        progress: Progress | None = None,
        *,
        stored: Sequence[SeriesSummary] | None = None,
    ) -> list[SeriesUpdate]:
        """Bring every stored series of this currency up to date, from its last bar to now.

        Close-only series are filled from their last bar with ``/market_chart/range``; ohlc
        series are refreshed with ``/ohlc`` (:meth:`refresh_ohlc`). A series that fails (an
        unknown coin, an API outage) is reported and the others still update.

        Args:
            progress: Called with (series done, series to do).
            stored: What :meth:`PriceRepository.list_series` returned, if the caller has it
                already (it scans the whole table); read here otherwise.
        """
        if stored is None:
            stored = self.prices.list_series()
        tracked = [series for series in stored if series.source in (self.source, self.ohlc_source)]
        updates = []
        for done, series in enumerate(tracked, start=1):
            updates.append(self._update_one(series))
            if progress is not None:
                progress(done, len(tracked))
        return updates

    def _update_one(self, series: SeriesSummary) -> SeriesUpdate:
        label = f"{series.source}/{series.symbol}/{series.timeframe}"
        try:
            if series.source == self.ohlc_source:
                summary = self.refresh_ohlc(series.symbol, series.timeframe)
                added = 0 if summary.last is None else _bars_after(summary, series.last)
                return SeriesUpdate(label, added, detail=f"{summary}; {added} new")
            filled = self.fill_gaps(series.symbol, series.last, timeframe=series.timeframe)
        except MarketbotError as exc:
            _LOG.warning("update of %s failed: %s", label, exc)
            return SeriesUpdate(label, 0, error=str(exc))
        return SeriesUpdate(label, filled.bars_filled, detail=str(filled))


def coingecko_sources(vs_currency: str) -> tuple[str, str]:
    """The sources of close-only and of ohlc series in a quote currency.

    ``usd`` gives ``("coingecko", "coingecko-ohlc")``, ``eur`` gives
    ``("coingecko-eur", "coingecko-ohlc-eur")``: two currencies or two kinds of bar never
    share a series.
    """
    currency = vs_currency.lower()
    suffix = "" if currency == "usd" else f"-{currency}"
    return f"{COINGECKO_SOURCE}{suffix}", f"{COINGECKO_SOURCE}-ohlc{suffix}"


def coingecko_currency(source: str) -> str | None:
    """The quote currency of a CoinGecko source name, or None if it is not one."""
    if source in (COINGECKO_SOURCE, f"{COINGECKO_SOURCE}-ohlc"):
        return "usd"
    for prefix in (f"{COINGECKO_SOURCE}-ohlc-", f"{COINGECKO_SOURCE}-"):
        if source.startswith(prefix) and source[len(prefix) :].isalpha():
            return source[len(prefix) :]
    return None


def _bars_after(summary: CollectionSummary, last: pd.Timestamp) -> int:
    if summary.last is None or summary.last <= last:
        return 0
    bar = pd.Timedelta(seconds=timeframe_seconds(summary.timeframe))
    return int((summary.last - last) // bar)


def _clip(
    run: MissingRun, reachable_from: pd.Timestamp | None, bar_seconds: int
) -> MissingRun | None:
    """The part of ``run`` from ``reachable_from`` on, or None if it lies wholly before."""
    if reachable_from is None or run.first >= reachable_from:
        return run
    if run.last < reachable_from:
        return None
    bar = pd.Timedelta(seconds=bar_seconds)
    skipped = -(-(reachable_from - run.first) // bar)
    return MissingRun(run.first + skipped * bar, run.last, run.bars - skipped)
