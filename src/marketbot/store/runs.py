"""Backtest runs: save a finished backtest, list past runs, load one back in full.

Listing reads only the small columns (names, period, parameters, metrics), so comparing
hundreds of runs stays cheap; the equity curve and the trades are compressed blobs that only
:meth:`BacktestRunRepository.get` decodes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from marketbot.core.errors import ConfigError, DataError
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe
from marketbot.core.timestamps import parse_utc
from marketbot.store._codec import (
    decode_json_blob,
    decode_series,
    encode_json_blob,
    encode_series,
    from_json_value,
    to_json_value,
)
from marketbot.store.database import Database
from marketbot.store.models import BacktestRun, utc_now


def _utc(value: datetime) -> pd.Timestamp:
    return parse_utc(value, "stored time")


def _empty_curve() -> pd.Series:
    return pd.Series(
        np.empty(0, dtype=np.float64),
        index=pd.DatetimeIndex([], tz="UTC", name="timestamp"),
        name="equity",
    )


@dataclass(frozen=True, slots=True, eq=False)
class BacktestRecord:
    """Everything saved about one backtest.

    Not comparable with ``==`` (the equity curve is a pandas Series); compare fields.

    Attributes:
        strategy: Strategy name.
        symbol: The asset traded.
        timeframe: Bar length label.
        source: Where the bars came from.
        start: Open time of the first bar tested (UTC).
        end: Open time of the last bar tested (UTC).
        params: Strategy parameters (JSON-compatible values).
        settings: Costs, sizing, exits and other run settings (JSON-compatible values).
        metrics: Metric name to number; infinities and NaN are kept.
        recommendation: EXCELLENT, GOOD, MARGINAL or FAILED.
        equity_curve: Equity per bar, indexed by UTC bar time.
        trades: One mapping per trade (JSON-compatible values; datetimes are stored, and come
            back, as ISO 8601 strings).
        data_file: A run on a CSV file: the file's name (no folder); None for stored bars.
        data_sha256: A run on a CSV file: the sha256 of its content, as 64 hex digits, so that
            runs on the same name but different content are told apart.
    """

    strategy: str
    symbol: str
    timeframe: str
    source: str
    start: datetime
    end: datetime
    params: Mapping[str, Any]
    settings: Mapping[str, Any]
    metrics: Mapping[str, float]
    recommendation: str
    equity_curve: pd.Series = field(default_factory=_empty_curve)
    trades: Sequence[Mapping[str, Any]] = ()
    data_file: str | None = None
    data_sha256: str | None = None


@dataclass(frozen=True, slots=True)
class BacktestRunSummary:
    """A saved run without its equity curve and trades, for lists and comparisons.

    Attributes:
        id: The run's id.
        created_at: When it was saved (UTC).
        strategy: Strategy name.
        symbol: The asset traded.
        timeframe: Bar length label.
        source: Where the bars came from.
        start: First bar tested (UTC).
        end: Last bar tested (UTC).
        params: Strategy parameters.
        metrics: Metric name to number.
        recommendation: The verdict.
        trade_count: Number of trades.
        data_file: The CSV file's name for a run on a file; None for stored bars.
        data_sha256: The sha256 of that file's content (64 hex digits); None for stored bars.
    """

    id: int
    created_at: pd.Timestamp
    strategy: str
    symbol: str
    timeframe: str
    source: str
    start: pd.Timestamp
    end: pd.Timestamp
    params: dict[str, Any]
    metrics: dict[str, float]
    recommendation: str
    trade_count: int
    data_file: str | None = None
    data_sha256: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class StoredBacktestRun:
    """A saved run in full: its id, when it was saved, and the record itself.

    Attributes:
        id: The run's id.
        created_at: When it was saved (UTC).
        record: What was saved; times as UTC Timestamps.
    """

    id: int
    created_at: pd.Timestamp
    record: BacktestRecord


def _metrics_to_json(metrics: Mapping[str, float]) -> dict[str, Any]:
    encoded: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise DataError(f"metrics.{name}: must be a number, got {type(value).__name__}")
        encoded[str(name)] = to_json_value(float(value), where=f"metrics.{name}")
    return encoded


def _metrics_from_json(metrics: Mapping[str, Any]) -> dict[str, float]:
    return {name: float(from_json_value(value)) for name, value in metrics.items()}


def _mapping_to_json(value: Mapping[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise DataError(f"{where}: must be a mapping, got {type(value).__name__}")
    return cast(dict[str, Any], to_json_value(value, where=where))


def _encode_curve(curve: pd.Series) -> bytes:
    if not isinstance(curve.index, pd.DatetimeIndex):
        raise DataError("equity curve: the index must be a DatetimeIndex of bar times")
    index = curve.index
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return encode_series(index.as_unit("ns").asi8, curve.to_numpy(dtype=np.float64))


def _decode_curve(blob: bytes) -> pd.Series:
    times, values = decode_series(blob)
    index = pd.DatetimeIndex(times.view("datetime64[ns]"), name="timestamp").tz_localize("UTC")
    return pd.Series(values, index=index, name="equity")


class BacktestOutcome(Protocol):
    """What :func:`record_from_result` reads from a backtest result.

    A structural type, so that the store need not import the backtest layer above it;
    ``marketbot.backtest.BacktestResult`` has this shape.
    """

    @property
    def strategy(self) -> str:
        """Strategy name."""

    @property
    def symbol(self) -> str:
        """The asset traded."""

    @property
    def params(self) -> Mapping[str, Any]:
        """Strategy parameters."""

    @property
    def settings(self) -> Mapping[str, Any]:
        """Run settings."""

    @property
    def metrics(self) -> Mapping[str, float]:
        """Metric name to number."""

    @property
    def recommendation(self) -> str:
        """The verdict (a str or a StrEnum)."""

    @property
    def trades(self) -> pd.DataFrame:
        """One row per trade."""

    @property
    def equity_curve(self) -> pd.Series:
        """Equity per bar, indexed by bar time."""

    @property
    def bars(self) -> pd.DataFrame:
        """The bars the run traded on."""


UNSPECIFIED_SOURCE = "unspecified"
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_DATA_FILE_MAX_LENGTH: Final = 255
_READ_CHUNK_BYTES: Final = 1 << 20


def file_sha256(path: str | Path) -> str:
    """The sha256 of a file's content as 64 lowercase hex digits (read in 1 MiB chunks).

    Raises:
        DataError: the file cannot be read; the message names it.
    """
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            while chunk := file.read(_READ_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    return digest.hexdigest()


def record_from_result(
    result: BacktestOutcome,
    *,
    timeframe: str | None = None,
    source: str | None = None,
    data_file: str | None = None,
    data_sha256: str | None = None,
) -> BacktestRecord:
    """The record to save for a backtest result.

    Args:
        result: The backtest's outcome.
        timeframe: The bars' timeframe; None infers it from their median spacing.
        source: Where the bars came from; None records ``"unspecified"`` (pass the source
            :meth:`PriceRepository.resolve_series` chose to keep runs comparable).
        data_file: For a run on a CSV file, the file's name (``path.name``).
        data_sha256: For a run on a CSV file, :func:`file_sha256` of it.

    Raises:
        DataError: the result has neither bars nor an equity curve to date it by.
    """
    times = pd.DatetimeIndex(result.bars.index if len(result.bars) else result.equity_curve.index)
    if len(times) == 0:
        raise DataError(f"{result.strategy} on {result.symbol}: no bars, nothing to save")
    if timeframe is None:
        timeframe = seconds_to_timeframe(infer_bar_seconds(times.as_unit("ns").asi8))
    return BacktestRecord(
        strategy=result.strategy,
        symbol=_fit_symbol_label(result.symbol),
        timeframe=timeframe,
        source=source or UNSPECIFIED_SOURCE,
        start=times[0],
        end=times[-1],
        params=dict(result.params),
        settings=dict(result.settings),
        metrics=dict(result.metrics),
        recommendation=str(result.recommendation),
        equity_curve=result.equity_curve,
        trades=tuple(
            {str(key): value for key, value in trade.items()}
            for trade in result.trades.to_dict("records")
        ),
        data_file=data_file,
        data_sha256=data_sha256,
    )


_SYMBOL_COLUMN_WIDTH: Final = 100


def _fit_symbol_label(label: str) -> str:
    """A portfolio's comma-joined symbols, shortened to fit the column (``a,b,… (+98)``)."""
    if len(label) <= _SYMBOL_COLUMN_WIDTH:
        return label
    names = label.split(",")
    kept: list[str] = []
    for name in names:
        suffix = f",… (+{len(names) - len(kept) - 1})"
        if len(",".join([*kept, name])) + len(suffix) > _SYMBOL_COLUMN_WIDTH:
            break
        kept.append(name)
    return ",".join(kept) + f",… (+{len(names) - len(kept)})"


_TABLE: Final = cast(sa.Table, BacktestRun.__table__)
# Everything but the blobs: what listing and comparing runs read.
_SUMMARY_COLUMNS: Final = (
    "id",
    "created_at",
    "strategy",
    "symbol",
    "timeframe",
    "source",
    "start",
    "end",
    "params",
    "metrics",
    "recommendation",
    "trade_count",
    "data_file",
    "data_sha256",
)


def _summary_query() -> sa.Select[Any]:
    return sa.select(*(_TABLE.c[name] for name in _SUMMARY_COLUMNS))


def _summary(row: sa.Row[Any]) -> BacktestRunSummary:
    return BacktestRunSummary(
        id=int(row.id),
        created_at=_utc(row.created_at),
        strategy=row.strategy,
        symbol=row.symbol,
        timeframe=row.timeframe,
        source=row.source,
        start=_utc(row.start),
        end=_utc(row.end),
        params=from_json_value(row.params),
        metrics=_metrics_from_json(row.metrics),
        recommendation=row.recommendation,
        trade_count=int(row.trade_count),
        data_file=row.data_file,
        data_sha256=row.data_sha256,
    )


class BacktestRunRepository:
    """Saves and reads backtest runs.

    Args:
        database: The database to use (migrated to the current schema).
        clock: Returns the current time; tests pass a fixed clock.
    """

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self._clock = clock

    def save(self, record: BacktestRecord) -> int:
        """Store a run and return its id.

        Raises:
            DataError: a value that cannot be stored (a non-numeric metric, an object JSON
                cannot hold, an equity curve without a DatetimeIndex).
        """
        for name in ("strategy", "symbol", "timeframe", "source", "recommendation"):
            if not str(getattr(record, name)).strip():
                raise ConfigError(f"backtest run: {name} must not be empty")
        _check_data_file(record.data_file, record.data_sha256)
        trades = [dict(trade) for trade in record.trades]
        row = BacktestRun(
            created_at=self._clock(),
            strategy=record.strategy,
            symbol=record.symbol,
            timeframe=record.timeframe,
            source=record.source,
            start=_utc(record.start).to_pydatetime(),
            end=_utc(record.end).to_pydatetime(),
            params=_mapping_to_json(record.params, "params"),
            settings=_mapping_to_json(record.settings, "settings"),
            metrics=_metrics_to_json(record.metrics),
            recommendation=record.recommendation,
            trade_count=len(trades),
            equity_curve=_encode_curve(record.equity_curve),
            trades=encode_json_blob(trades, where="trades"),
            data_file=record.data_file,
            data_sha256=record.data_sha256,
        )
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return int(row.id)

    def list_runs(
        self, limit: int = 50, *, strategy: str | None = None, symbol: str | None = None
    ) -> list[BacktestRunSummary]:
        """The most recent runs first, optionally only one strategy's or one symbol's.

        Args:
            limit: At most this many runs.
            strategy: Only runs of this strategy.
            symbol: Only runs on this symbol, or on a data file of this name.
        """
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, got {limit}")
        table = _TABLE
        query = _summary_query().order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
        if strategy is not None:
            query = query.where(table.c.strategy == strategy)
        if symbol is not None:
            query = query.where(sa.or_(table.c.symbol == symbol, table.c.data_file == symbol))
        with self._database.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_summary(row) for row in rows]

    def get_summary(self, run_id: int) -> BacktestRunSummary:
        """One run without its equity curve and trades (cheap, as in :meth:`list_runs`).

        Raises:
            DataError: there is no run with this id.
        """
        query = _summary_query().where(_TABLE.c.id == run_id)
        with self._database.engine.connect() as connection:
            row = connection.execute(query).one_or_none()
        if row is None:
            raise DataError(f"no backtest run with id {run_id}")
        return _summary(row)

    def get(self, run_id: int) -> StoredBacktestRun:
        """One run in full, equity curve and trades included.

        Raises:
            DataError: there is no run with this id.
        """
        with self._database.session() as session:
            row = session.get(BacktestRun, run_id)
            if row is None:
                raise DataError(f"no backtest run with id {run_id}")
            record = BacktestRecord(
                strategy=row.strategy,
                symbol=row.symbol,
                timeframe=row.timeframe,
                source=row.source,
                start=_utc(row.start),
                end=_utc(row.end),
                params=from_json_value(row.params),
                settings=from_json_value(row.settings),
                metrics=_metrics_from_json(row.metrics),
                recommendation=row.recommendation,
                equity_curve=_decode_curve(row.equity_curve),
                trades=tuple(decode_json_blob(row.trades)),
                data_file=row.data_file,
                data_sha256=row.data_sha256,
            )
            return StoredBacktestRun(id=row.id, created_at=_utc(row.created_at), record=record)

    def delete(self, run_id: int) -> bool:
        """Delete a run; returns whether it existed."""
        table = _TABLE
        with self._database.engine.begin() as connection:
            result = connection.execute(sa.delete(table).where(table.c.id == run_id))
        return int(result.rowcount) > 0


def _check_data_file(name: str | None, sha256: str | None) -> None:
    """A data file is named by its bare name and its content's sha256, or not at all."""
    if name is None and sha256 is None:
        return
    if not name or not name.strip() or Path(name).name != name:
        raise ConfigError(f"backtest run: data_file {name!r} must be a file name without folders")
    if len(name) > _DATA_FILE_MAX_LENGTH:
        raise ConfigError(
            f"backtest run: data_file is {len(name)} characters long, at most "
            f"{_DATA_FILE_MAX_LENGTH} fit"
        )
    if sha256 is None or not _SHA256_HEX.fullmatch(sha256):
        raise ConfigError(
            f"backtest run: data_sha256 {sha256!r} must be 64 lowercase hex digits "
            "(file_sha256 of the data file)"
        )
