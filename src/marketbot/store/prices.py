"""Price series: bulk upsert, fast loading, and an inventory of what is stored.

A series is identified by (source, symbol, timeframe), e.g. ``("bitstamp", "bitcoin", "1d")``.
Bars are stored with ``timestamp`` in whole seconds since the Unix epoch (UTC, bar open), see
:mod:`marketbot.store.models`. Timeframes are stored in their canonical spelling
(``60m`` becomes ``1h``) so that one bar length is one series.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marketbot.core.bars import OHLCV_COLUMNS, normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.timeframes import (
    NANOSECONDS_PER_SECOND,
    Gap,
    find_gaps,
    seconds_to_timeframe,
    timeframe_seconds,
)
from marketbot.core.timestamps import TimeLike, epoch_seconds_to_index, parse_utc
from marketbot.store.database import Database
from marketbot.store.models import CryptoPriceHistory
from marketbot.store.upserts import execute_in_one_transaction, upsert_insert

DEFAULT_TIMEFRAME: Final = "1d"
_TABLE: Final = cast(sa.Table, CryptoPriceHistory.__table__)
_KEY_COLUMNS: Final = ("source", "symbol", "timeframe", "timestamp")


@dataclass(frozen=True, slots=True)
class SeriesSummary:
    """What is stored for one series.

    Attributes:
        source: Where the bars came from (``bitstamp``, ``coingecko``, ``binance``...).
        symbol: The asset (``bitcoin``) or exchange pair (``BTC/USDT``).
        timeframe: Canonical bar length label (``1h``, ``1d``).
        first: Open time of the first bar (UTC).
        last: Open time of the last bar (UTC).
        rows: Number of bars stored.
        gaps: Number of holes (places where consecutive bars are more than a bar apart).
        missing_bars: Total bars missing in those holes.
    """

    source: str
    symbol: str
    timeframe: str
    first: pd.Timestamp
    last: pd.Timestamp
    rows: int
    gaps: int
    missing_bars: int


def canonical_timeframe(timeframe: str) -> str:
    """The canonical label of a timeframe (``60m`` -> ``1h``); ConfigError if malformed."""
    return seconds_to_timeframe(timeframe_seconds(timeframe))


def _require_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{what} must be a non-empty string, got {value!r}")
    return value


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a large result is fetched.

    Fetching builds tens of thousands of short-lived row tuples, and that allocation burst
    triggers full collections which walk every live object in the process (pandas,
    SQLAlchemy...), tripling the load time. The rows form no reference cycles, so nothing is
    lost by collecting after the fetch instead of during it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class PriceRepository:
    """Stores and loads OHLCV price series.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- writing ---------------------------------------------------------------------------

    def upsert_bars(self, source: str, symbol: str, timeframe: str, frame: pd.DataFrame) -> int:
        """Insert or overwrite the bars of one series, all in one transaction.

        A bar whose timestamp is already stored for the series replaces it (the later import
        wins); bars are never duplicated. If anything fails, nothing of the batch is stored.

        Args:
            source: Where the bars come from, e.g. ``bitstamp``.
            symbol: The asset, e.g. ``bitcoin``.
            timeframe: Bar length label, e.g. ``1h``; stored in canonical form.
            frame: Bars in any form :func:`~marketbot.core.bars.normalize_ohlcv` accepts.

        Returns:
            The number of bars written.

        Raises:
            ConfigError: empty source/symbol, a malformed timeframe, or a database without a
                bulk upsert (only SQLite and PostgreSQL have one).
            DataError: the bars are invalid (see normalize_ohlcv), have sub-second times, or
                the database rejected the batch.
        """
        _require_name(source, "source")
        _require_name(symbol, "symbol")
        timeframe = canonical_timeframe(timeframe)
        where = f"{source}/{symbol}/{timeframe}"
        bars = normalize_ohlcv(frame, where=where)
        rows = self._rows(source, symbol, timeframe, bars, where)
        statement = upsert_insert(self._database, "storing bars")(_TABLE)
        statement = statement.on_conflict_do_update(
            index_elements=list(_KEY_COLUMNS),
            set_={name: statement.excluded[name] for name in OHLCV_COLUMNS},
        )
        rejected = (
            f"{where}: the database rejected the batch of {len(rows)} bars, so none of them "
            f"was stored"
        )
        return execute_in_one_transaction(self._database, statement, rows, rejected=rejected)

    @staticmethod
    def _rows(
        source: str, symbol: str, timeframe: str, bars: pd.DataFrame, where: str
    ) -> list[dict[str, Any]]:
        index = cast(pd.DatetimeIndex, bars.index)
        nanoseconds = index.asi8
        seconds, remainder = np.divmod(nanoseconds, NANOSECONDS_PER_SECOND)
        if remainder.any():
            position = int(np.flatnonzero(remainder)[0])
            raise DataError(
                f"{where}: bar times must be whole seconds; {index[position].isoformat()} "
                f"(row {position + 1}) is not"
            )
        # tolist() gives Python ints and floats, which every driver binds without surprises.
        columns = {name: bars[name].to_numpy().tolist() for name in OHLCV_COLUMNS}
        return [
            {
                "source": source,
                "symbol": symbol,
                "timeframe": timeframe,
                "timestamp": stamp,
                "open": open_,
                "high": high,
                "low": low,
                "close": close,
                "volume": volume,
            }
            for stamp, open_, high, low, close, volume in zip(
                seconds.tolist(), *(columns[name] for name in OHLCV_COLUMNS), strict=True
            )
        ]

    def delete_series(self, source: str, symbol: str, timeframe: str) -> int:
        """Delete every bar of one series; returns how many were deleted."""
        timeframe = canonical_timeframe(timeframe)
        with self._database.engine.begin() as connection:
            result = connection.execute(
                sa.delete(_TABLE).where(
                    _TABLE.c.source == source,
                    _TABLE.c.symbol == symbol,
                    _TABLE.c.timeframe == timeframe,
                )
            )
        return int(result.rowcount)

    # -- reading ---------------------------------------------------------------------------

    def load_bars(
        self,
        symbol: str,
        *,
        timeframe: str | None = None,
        source: str | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pd.DataFrame:
        """Load one series as a canonical OHLCV frame (as normalize_ohlcv returns).

        Args:
            symbol: The asset, e.g. ``bitcoin``.
            timeframe: Bar length; None picks ``1d`` if stored, else the only one stored.
            source: Where the bars came from; None is fine when only one source has them.
            start: First bar open time to include (inclusive, UTC; naive means UTC).
            end: Last bar open time to include (inclusive).

        Returns:
            A frame with a UTC DatetimeIndex named ``timestamp`` and float64 OHLCV columns;
            empty (same shape) when no bar falls between ``start`` and ``end``.

        Raises:
            DataError: the symbol, timeframe or source is not stored, or the choice of
                timeframe or source is ambiguous; the message lists what is stored.
        """
        low, high = self._bounds(start, end)
        table = _TABLE
        with self._database.engine.connect() as connection:
            source, timeframe = self._resolve(connection, symbol, timeframe, source)
            query = (
                sa.select(table.c.timestamp, *(table.c[name] for name in OHLCV_COLUMNS))
                .where(
                    table.c.source == source,
                    table.c.symbol == symbol,
                    table.c.timeframe == timeframe,
                )
                .order_by(table.c.timestamp)
            )
            if low is not None:
                query = query.where(table.c.timestamp >= low)
            if high is not None:
                query = query.where(table.c.timestamp <= high)
            # A Core select and plain tuples, not ORM objects: this is the hot path of every
            # backtest.
            with _collector_paused():
                rows = connection.execute(query).all()
                return self._frame(rows)

    @staticmethod
    def _bounds(start: TimeLike | None, end: TimeLike | None) -> tuple[int | None, int | None]:
        # Stored times are whole seconds, so an inclusive bound rounds inwards.
        low = high = None
        if start is not None:
            low = -(-parse_utc(start, "start").value // NANOSECONDS_PER_SECOND)
        if end is not None:
            high = parse_utc(end, "end").value // NANOSECONDS_PER_SECOND
        return low, high

    @staticmethod
    def _frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
        # Transposing first means numpy converts six flat tuples, not 33k small ones.
        columns = list(zip(*rows, strict=True)) if rows else [()] * (1 + len(OHLCV_COLUMNS))
        index = epoch_seconds_to_index(np.array(columns[0], dtype=np.int64))
        return pd.DataFrame(
            {
                name: np.array(values, dtype=np.float64)
                for name, values in zip(OHLCV_COLUMNS, columns[1:], strict=True)
            },
            index=index,
        )

    def resolve_series(
        self, symbol: str, *, timeframe: str | None = None, source: str | None = None
    ) -> tuple[str, str]:
        """The (source, timeframe) that :meth:`load_bars` would load for these arguments.

        Raises:
            DataError: as for :meth:`load_bars`.
        """
        with self._database.engine.connect() as connection:
            return self._resolve(connection, symbol, timeframe, source)

    def _resolve(
        self, connection: Connection, symbol: str, timeframe: str | None, source: str | None
    ) -> tuple[str, str]:
        """Pick the (source, timeframe) to load for a symbol, or explain what is stored."""
        table = _TABLE
        stored = connection.execute(
            sa.select(table.c.source, table.c.timeframe).where(table.c.symbol == symbol).distinct()
        ).all()
        if not stored:
            symbols = connection.scalars(
                sa.select(table.c.symbol).distinct().order_by(table.c.symbol)
            ).all()
            listed = ", ".join(symbols) if symbols else "none (import data first)"
            raise DataError(f"no price data for symbol {symbol!r}; stored symbols: {listed}")
        pairs = {(str(row[0]), str(row[1])) for row in stored}
        if source is not None:
            sources = sorted({s for s, _ in pairs})
            pairs = {(s, t) for s, t in pairs if s == source}
            if not pairs:
                raise DataError(
                    f"no {symbol} data from source {source!r}; stored sources: "
                    + ", ".join(sources)
                )
        timeframe = self._choose_timeframe(symbol, timeframe, {t for _, t in pairs})
        sources = sorted(s for s, t in pairs if t == timeframe)
        if len(sources) > 1:
            raise DataError(
                f"{symbol} {timeframe} bars are stored from several sources "
                f"({', '.join(sources)}); choose one with source=..."
            )
        return sources[0], timeframe

    @staticmethod
    def _choose_timeframe(symbol: str, wanted: str | None, stored: set[str]) -> str:
        listed = ", ".join(sorted(stored, key=timeframe_seconds))
        if wanted is not None:
            wanted = canonical_timeframe(wanted)
            if wanted not in stored:
                raise DataError(f"no {wanted} bars for {symbol}; stored timeframes: {listed}")
            return wanted
        if DEFAULT_TIMEFRAME in stored:
            return DEFAULT_TIMEFRAME
        if len(stored) == 1:
            return next(iter(stored))
        raise DataError(
            f"{symbol} is stored in several timeframes ({listed}) and none is "
            f"{DEFAULT_TIMEFRAME}; choose one with timeframe=..."
        )

    def last_timestamp(self, source: str, symbol: str, timeframe: str) -> pd.Timestamp | None:
        """Open time of the newest stored bar of a series, or None if there is none.

        Collectors use it to fetch only what is new.
        """
        table = _TABLE
        with self._database.engine.connect() as connection:
            newest = connection.scalar(
                sa.select(sa.func.max(table.c.timestamp)).where(
                    table.c.source == source,
                    table.c.symbol == symbol,
                    table.c.timeframe == canonical_timeframe(timeframe),
                )
            )
        if newest is None:
            return None
        return pd.Timestamp(int(newest) * NANOSECONDS_PER_SECOND, tz="UTC")

    def bar_opens(self, source: str, symbol: str, timeframe: str) -> pd.DatetimeIndex:
        """Open times of every stored bar of one series, oldest first; empty if none.

        Reads the timestamps only: collectors use it to find what is missing.
        """
        table = _TABLE
        with self._database.engine.connect() as connection:
            stamps = connection.scalars(
                sa.select(table.c.timestamp)
                .where(
                    table.c.source == source,
                    table.c.symbol == symbol,
                    table.c.timeframe == canonical_timeframe(timeframe),
                )
                .order_by(table.c.timestamp)
            ).all()
        return epoch_seconds_to_index(np.asarray(stamps, dtype=np.int64))

    def find_gaps(self, symbol: str, timeframe: str, source: str | None = None) -> list[Gap]:
        """Every hole in a series, measured in bars of its timeframe.

        Raises:
            DataError: as for :meth:`load_bars`.
        """
        source, timeframe = self.resolve_series(symbol, timeframe=timeframe, source=source)
        return find_gaps(self.bar_opens(source, symbol, timeframe), timeframe_seconds(timeframe))

    def list_series(self) -> list[SeriesSummary]:
        """Every stored series with its range, size and holes, sorted by symbol.

        Two aggregate queries do the work in the database: one for the range and row count,
        one for a histogram of the spacing between consecutive bars, from which the holes
        follow (a spacing of ``k`` bar lengths means ``k - 1`` missing bars).
        """
        table = _TABLE
        series = (table.c.source, table.c.symbol, table.c.timeframe)
        ranges = sa.select(
            *series,
            sa.func.min(table.c.timestamp),
            sa.func.max(table.c.timestamp),
            sa.func.count(),
        ).group_by(*series)
        previous = sa.func.lag(table.c.timestamp).over(
            partition_by=series, order_by=table.c.timestamp
        )
        steps = sa.select(*series, (table.c.timestamp - previous).label("step")).subquery()
        step_counts = (
            sa.select(
                steps.c.source, steps.c.symbol, steps.c.timeframe, steps.c.step, sa.func.count()
            )
            .where(steps.c.step.is_not(None))
            .group_by(steps.c.source, steps.c.symbol, steps.c.timeframe, steps.c.step)
        )
        with self._database.engine.connect() as connection:
            range_rows = connection.execute(ranges).all()
            step_rows = connection.execute(step_counts).all()
        holes: dict[tuple[str, str, str], list[int]] = {}
        for source, symbol, timeframe, step, count in step_rows:
            bar = timeframe_seconds(timeframe)
            if int(step) > bar:
                tally = holes.setdefault((source, symbol, timeframe), [0, 0])
                tally[0] += int(count)
                tally[1] += int(count) * (-(-int(step) // bar) - 1)
        summaries = [
            SeriesSummary(
                source=source,
                symbol=symbol,
                timeframe=timeframe,
                first=pd.Timestamp(int(first) * NANOSECONDS_PER_SECOND, tz="UTC"),
                last=pd.Timestamp(int(last) * NANOSECONDS_PER_SECOND, tz="UTC"),
                rows=int(rows),
                gaps=holes.get((source, symbol, timeframe), [0, 0])[0],
                missing_bars=holes.get((source, symbol, timeframe), [0, 0])[1],
            )
            for source, symbol, timeframe, first, last, rows in range_rows
        ]
        return sorted(summaries, key=lambda s: (s.symbol, timeframe_seconds(s.timeframe), s.source))
