"""OHLCV CSV files: read and validate one, or import it into the store as one batch.

The header must name ``timestamp,open,high,low,close,volume`` (any capitalisation, any
order); timestamps are ISO 8601 dates or epoch seconds/milliseconds, in UTC.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from marketbot.core.bars import bar_times, normalize_ohlcv
from marketbot.core.errors import DataError
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe, timeframe_seconds
from marketbot.store.prices import PriceRepository


def read_ohlcv_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate an OHLCV CSV file.

    Raises:
        DataError: the file is missing, empty or unreadable, or any bar is invalid; the
            message names the file and the first problem.
    """
    file = Path(path)
    where = file.name
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    try:
        raw = pd.read_csv(file, dtype={"timestamp": str}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{where}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: not a readable CSV file ({exc})") from exc
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if "timestamp" not in raw.columns:
        raise DataError(
            f"{where}: missing column 'timestamp' "
            "(header must be timestamp,open,high,low,close,volume)"
        )
    timestamps = raw["timestamp"]
    numeric = pd.to_numeric(timestamps, errors="coerce")
    if numeric.notna().all():
        raw["timestamp"] = numeric
    return normalize_ohlcv(raw, where=where)


def import_csv(
    prices: PriceRepository,
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | None = None,
    source: str = "csv",
) -> str:
    """Validate a CSV and store it as one series in one transaction; return a summary line.

    Nothing is written unless every bar is valid. Re-importing the same file is idempotent.
    """
    frame = read_ohlcv_csv(path)
    inferred = seconds_to_timeframe(infer_bar_seconds(bar_times(frame).asi8))
    chosen = timeframe or inferred
    timeframe_seconds(chosen)  # validates the label
    written = prices.upsert_bars(source, symbol, chosen, frame)
    first, last = frame.index[0].isoformat(), frame.index[-1].isoformat()
    return f"imported {written} {chosen} bars of {symbol} ({source}) from {first} to {last}"


def export_csv(
    prices: PriceRepository,
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | None = None,
    source: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> str:
    """Write one stored series to a CSV that :func:`import_csv` reads back; return a summary.

    Columns are ``timestamp,open,high,low,close,volume``; timestamps are bar open times in
    ISO 8601 UTC (``2024-01-31T00:00:00Z``), numbers in their shortest exact form. The file
    is written beside the target and renamed into place, so a failed export never leaves half
    a file.

    Raises:
        DataError: the series is not stored (or is ambiguous), or the file cannot be written.
    """
    chosen_source, chosen_timeframe = prices.resolve_series(
        symbol, timeframe=timeframe, source=source
    )
    bars = prices.load_bars(
        symbol, timeframe=chosen_timeframe, source=chosen_source, start=start, end=end
    )
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    frame = bars.copy()
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.index.name = "timestamp"
    try:
        frame.to_csv(partial, lineterminator="\n")  # floats as repr: shortest exact text
        partial.replace(target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot write {target}: {exc.strerror or exc}") from exc
    span = "no bars" if bars.empty else f"{frame.index[0]} to {frame.index[-1]}"
    return (
        f"exported {len(bars)} {chosen_timeframe} bars of {symbol} ({chosen_source}), "
        f"{span}, to {target}"
    )
