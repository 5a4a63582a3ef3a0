"""Exchange candles through ccxt: paginated download, incremental update and gap filling.

A series is stored as (source = the ccxt exchange id, symbol = the pair as the exchange
spells it, timeframe), e.g. ``("binance", "BTC/USDT", "1h")``. Candles are fetched a page
at a time with ``fetch_ohlcv(since=...)``, the next page starting one bar after the newest
candle received, until the end of the range. Every page is validated whole (open times
whole seconds and strictly increasing, prices numeric, finite, positive and consistent)
before any of it is stored, and each page is stored in one transaction by an idempotent
upsert, so an interrupted or repeated download never leaves half a page or duplicate rows.
The candle that is still open (its close time is after "now") is never stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

import pandas as pd

from marketbot.core.bars import OHLCV_COLUMNS, bar_times, normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.timestamps import TimeLike, parse_utc
from marketbot.sources.exchange_client import ExchangeClient
from marketbot.sources.missing_ranges import missing_runs
from marketbot.store.prices import PriceRepository

__all__ = [
    "CandleDownloadSummary",
    "ExchangeCandleDownloader",
    "ProgressCallback",
    "candles_to_frame",
]

ProgressCallback: TypeAlias = Callable[[int, int], None]
"""Called as ``progress(bars_done, bars_total)`` after each page."""

# Binance's maximum page; exchanges with smaller pages return fewer and pagination copes.
DEFAULT_PAGE_LIMIT: Final = 1000
DEFAULT_LOOKBACK: Final = pd.Timedelta(days=30)
_MS_PER_SECOND: Final = 1000


@dataclass(frozen=True, slots=True)
class CandleDownloadSummary:
    """What one download, update or gap fill stored.

    Attributes:
        exchange_id: The ccxt exchange id, stored as the series' source.
        pair: The market, e.g. ``BTC/USDT``.
        timeframe: The bar length, e.g. ``1h``.
        bars_stored: Bars written (new or overwritten).
        pages: Pages (requests for candles) fetched.
        first: Open time of the first bar stored, None when none was.
        last: Open time of the last bar stored, None when none was.
        ranges: How many time ranges were fetched (the holes, when filling gaps).
        bars_wanted: How many bars the ranges span; more than ``bars_stored`` when the
            exchange has no candles for part of them (before a listing, during an outage).
    """

    exchange_id: str
    pair: str
    timeframe: str
    bars_stored: int
    pages: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    ranges: int
    bars_wanted: int

    def __str__(self) -> str:
        series = f"{self.timeframe} bars of {self.pair} ({self.exchange_id})"
        if self.bars_wanted == 0:
            return f"stored no {series}: no closed bar is missing in the range asked for"
        missing = self.bars_wanted - self.bars_stored
        if self.first is None or self.last is None:
            return f"stored no {series}: the exchange had none of the {missing} bar(s) asked for"
        line = (
            f"stored {self.bars_stored} {series} from {self.first.isoformat()} to "
            f"{self.last.isoformat()} ({self.pages} page(s), {self.ranges} range(s))"
        )
        if missing > 0:
            # Before a listing or during an outage the exchange has no candles to give.
            line += f"; the exchange had no candles for {missing} bar(s) asked for"
        return line


@dataclass(slots=True)
class _Tally:
    """Running totals of one collection."""

    bars_total: int
    bars_done: int = 0
    bars_stored: int = 0
    pages: int = 0
    first_ms: int | None = None
    last_ms: int | None = None


def _to_epoch_ms(value: TimeLike, what: str) -> int:
    return int(parse_utc(value, what).value // 1_000_000)


def _timestamp(epoch_ms: int) -> pd.Timestamp:
    return pd.Timestamp(epoch_ms, unit="ms", tz="UTC")


def _label(epoch_ms: int) -> str:
    """A bar time for messages, e.g. ``2024-01-01T00:00:00Z``."""
    return _timestamp(epoch_ms).strftime("%Y-%m-%dT%H:%M:%SZ")


def candles_to_frame(candles: Sequence[Any], *, where: str) -> pd.DataFrame:
    """Validate one page of ccxt candles and return it as a canonical OHLCV frame.

    Args:
        candles: ccxt's ``[open time ms, open, high, low, close, volume]`` rows.
        where: What the page is (exchange, pair, timeframe, since), for error messages.

    Raises:
        DataError: a row that is not a candle, an open time that is not whole seconds, a
            missing or non-numeric value, or a bar that breaks the OHLCV rules (see
            :func:`~marketbot.core.bars.normalize_ohlcv`); the message names the candle.
    """
    times: list[int] = []
    rows: list[list[float]] = []
    for number, candle in enumerate(candles, start=1):
        if not isinstance(candle, list | tuple) or len(candle) < len(OHLCV_COLUMNS) + 1:
            raise DataError(
                f"{where}: candle {number} is not [time, open, high, low, close, volume]: "
                f"{str(candle)[:100]}"
            )
        stamp = candle[0]
        if isinstance(stamp, bool) or not isinstance(stamp, int):
            raise DataError(f"{where}: candle {number} has no valid open time: {stamp!r}")
        if stamp % _MS_PER_SECOND:
            raise DataError(f"{where}: candle {number} opens at {stamp} ms, not a whole second")
        row = []
        for name, value in zip(OHLCV_COLUMNS, candle[1 : len(OHLCV_COLUMNS) + 1], strict=True):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DataError(
                    f"{where}: candle {number} ({_timestamp(stamp).isoformat()}) has no "
                    f"numeric {name}: {value!r}"
                )
            row.append(float(value))
        times.append(stamp)
        rows.append(row)
    index = pd.DatetimeIndex(pd.to_datetime(times, unit="ms", utc=True), name="timestamp")
    return normalize_ohlcv(
        pd.DataFrame(rows, columns=list(OHLCV_COLUMNS), index=index), where=where
    )


class ExchangeCandleDownloader:
    """Downloads an exchange's candles into the price store, a page per transaction.

    Args:
        client: The exchange to fetch from (its limiter, retries and clock are used).
        prices: Where the bars are stored; source is the client's exchange id.
        page_limit: Most candles asked for in one request.
        default_lookback: How far back a first download goes when no start is given.
    """

    def __init__(
        self,
        client: ExchangeClient,
        prices: PriceRepository,
        *,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        default_lookback: pd.Timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        if isinstance(page_limit, bool) or not isinstance(page_limit, int) or page_limit < 1:
            raise ConfigError(f"`page_limit` must be a positive int, got {page_limit!r}")
        self.client = client
        self.prices = prices
        self.page_limit = page_limit
        self.default_lookback = default_lookback

    @property
    def source(self) -> str:
        """The source the bars are stored under: the ccxt exchange id."""
        return self.client.exchange_id

    def download(
        self,
        pair: str,
        timeframe: str,
        *,
        since: TimeLike | None = None,
        until: TimeLike | None = None,
        progress: ProgressCallback | None = None,
    ) -> CandleDownloadSummary:
        """Download closed candles from ``since`` to ``until`` (both bar open times, inclusive).

        Args:
            pair: The market as the exchange spells it, e.g. ``BTC/USDT``.
            timeframe: A bar length the exchange offers, e.g. ``1h``.
            since: First bar open time; by default one bar after the newest stored bar, or
                ``default_lookback`` ago when nothing is stored yet.
            until: Last bar open time; by default (and at most) the last closed bar.
            progress: Called as ``progress(bars_done, bars_total)`` after each page.

        Raises:
            ConfigError: an unknown pair or timeframe, or a malformed date.
            DataError: a malformed page (nothing of it is stored).
            TemporaryError: the exchange kept failing or rate limiting after the retries.
            ExchangeError: the exchange refused the request.
        """
        bar_ms = self._prepare(pair, timeframe)
        end_ms = self._last_closed_open_ms(bar_ms, until)
        if since is not None:
            start_ms = _to_epoch_ms(since, "since")
        else:
            newest = self.prices.last_timestamp(self.source, pair, timeframe)
            start_ms = (
                _to_epoch_ms(newest, "newest bar") + bar_ms
                if newest is not None
                else _to_epoch_ms(self.client.clock.now() - self.default_lookback, "since")
            )
        return self._collect(pair, timeframe, bar_ms, [(start_ms, end_ms)], progress)

    def update(
        self, pair: str, timeframe: str, *, progress: ProgressCallback | None = None
    ) -> CandleDownloadSummary:
        """Download the candles closed since the newest stored bar of the series.

        Raises:
            DataError: nothing is stored for the series yet (download it first).
            ConfigError, TemporaryError, ExchangeError: as for :meth:`download`.
        """
        bar_ms = self._prepare(pair, timeframe)
        newest = self.prices.last_timestamp(self.source, pair, timeframe)
        if newest is None:
            raise DataError(
                f"no {timeframe} bars of {pair} from {self.source} are stored yet; download "
                f"them first: marketbot data download --exchange {self.source} --pair {pair} "
                f"--timeframe {timeframe}"
            )
        start_ms = _to_epoch_ms(newest, "newest bar") + bar_ms
        end_ms = self._last_closed_open_ms(bar_ms, None)
        return self._collect(pair, timeframe, bar_ms, [(start_ms, end_ms)], progress)

    def fill_gaps(
        self,
        pair: str,
        timeframe: str,
        *,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        progress: ProgressCallback | None = None,
    ) -> CandleDownloadSummary:
        """Fetch only the bars missing from the series between ``start`` and ``end``.

        ``start`` defaults to the first stored bar and ``end`` to the last closed one, so by
        default the holes and the tail are fetched; an earlier ``start`` fetches a missing
        head too, as CoinGecko's gap filling does. Holes the exchange has no candles for (an
        outage) stay holes: the summary's ``bars_wanted`` minus ``bars_stored`` says how
        many bars are still missing.

        Raises:
            DataError: nothing is stored for the series and no ``start`` is given; or as
                for :meth:`download`.
            ConfigError, TemporaryError, ExchangeError: as for :meth:`download`.
        """
        bar_ms = self._prepare(pair, timeframe)
        stored = self.prices.bar_opens(self.source, pair, timeframe)
        if start is None and stored.empty:
            raise DataError(
                f"no {timeframe} bars of {pair} from {self.source} are stored; give a start, "
                f"or download them first"
            )
        low_ms = _to_epoch_ms(start, "start") if start is not None else _to_epoch_ms(stored[0], "")
        high_ms = self._last_closed_open_ms(bar_ms, end)
        runs = missing_runs(
            stored, _timestamp(low_ms), _timestamp(high_ms), bar_ms // _MS_PER_SECOND
        )
        ranges = [(_to_epoch_ms(run.first, "gap"), _to_epoch_ms(run.last, "gap")) for run in runs]
        return self._collect(pair, timeframe, bar_ms, ranges, progress)

    # -- the work --------------------------------------------------------------------------

    def _prepare(self, pair: str, timeframe: str) -> int:
        """Check pair and timeframe against the exchange; the bar length in milliseconds."""
        self.client.require_pair(pair)
        return self.client.require_timeframe(timeframe) * _MS_PER_SECOND

    def _last_closed_open_ms(self, bar_ms: int, until: TimeLike | None) -> int:
        """The latest bar open time wanted: ``until``, but never a bar still open now."""
        now_ms = _to_epoch_ms(self.client.clock.now(), "now")
        last_closed_ms = now_ms - bar_ms
        if until is None:
            return last_closed_ms
        return min(_to_epoch_ms(until, "until"), last_closed_ms)

    def _collect(
        self,
        pair: str,
        timeframe: str,
        bar_ms: int,
        ranges: list[tuple[int, int]],
        progress: ProgressCallback | None,
    ) -> CandleDownloadSummary:
        ranges = [(low, high) for low, high in ranges if low <= high]
        tally = _Tally(bars_total=sum((high - low) // bar_ms + 1 for low, high in ranges))
        for low, high in ranges:
            self._fetch_range(pair, timeframe, bar_ms, (low, high), tally, progress)
        if progress is not None:
            progress(tally.bars_total, tally.bars_total)
        return CandleDownloadSummary(
            exchange_id=self.source,
            pair=pair,
            timeframe=timeframe,
            bars_stored=tally.bars_stored,
            pages=tally.pages,
            first=None if tally.first_ms is None else _timestamp(tally.first_ms),
            last=None if tally.last_ms is None else _timestamp(tally.last_ms),
            ranges=len(ranges),
            bars_wanted=tally.bars_total,
        )

    def _fetch_range(
        self,
        pair: str,
        timeframe: str,
        bar_ms: int,
        bounds: tuple[int, int],
        tally: _Tally,
        progress: ProgressCallback | None,
    ) -> None:
        """Fetch pages from the range's start until its end or the exchange's last candle."""
        low, high = bounds
        done_before = tally.bars_done
        cursor = low
        while cursor <= high:
            # Ask for no more than the range still needs: a small hole costs a small page.
            limit = min(self.page_limit, (high - cursor) // bar_ms + 1)
            candles = self.client.fetch_ohlcv(pair, timeframe, cursor, limit)
            tally.pages += 1
            if not candles:
                break  # the exchange has nothing from here on
            where = f"{self.source} {pair} {timeframe} page since {_label(cursor)}"
            page = candles_to_frame(candles, where=where)
            times_ms = bar_times(page).asi8 // 1_000_000
            wanted = page[(times_ms >= cursor) & (times_ms <= high)]
            if not wanted.empty:
                self.prices.upsert_bars(self.source, pair, timeframe, wanted)
                wanted_ms = bar_times(wanted).asi8 // 1_000_000
                tally.bars_stored += len(wanted)
                first, last = int(wanted_ms[0]), int(wanted_ms[-1])
                tally.first_ms = first if tally.first_ms is None else min(tally.first_ms, first)
                tally.last_ms = last if tally.last_ms is None else max(tally.last_ms, last)
            newest_ms = int(times_ms[-1])
            if newest_ms < cursor:
                # An exchange that ignores `since` would otherwise be asked the same forever.
                raise DataError(
                    f"{where}: the exchange answered with candles older than asked for "
                    f"(newest {_label(newest_ms)}); it seems to ignore `since`"
                )
            cursor = newest_ms + bar_ms
            tally.bars_done = done_before + (min(cursor, high + bar_ms) - low) // bar_ms
            if progress is not None:
                progress(tally.bars_done, tally.bars_total)
        tally.bars_done = done_before + (high - low) // bar_ms + 1
