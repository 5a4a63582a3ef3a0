"""OHLCV CSV files: read real-world shapes and validate them, import one, export a series.

The canonical header is ``timestamp,open,high,low,close,volume``; timestamps are ISO 8601
dates or epoch seconds/milliseconds, in UTC. Exchange and data-vendor exports are read too
(names in any capitalisation and order, extra columns such as ``symbol`` ignored):

- the timestamp column may be called ``timestamp``, ``unix``, ``datetime``, ``date`` or
  ``time``; with several, the first of these wins (an epoch number is unambiguous, a written
  date may not be), and ``date`` plus ``time`` without the others are joined;
- volume may be ``Volume BTC``/``Volume USD``-style columns: the base asset's is used (the
  first one not in a quote currency such as USD, USDT or EUR);
- a line before the header (an export banner such as ``https://www.CryptoDataDownload.com``)
  is skipped when the next line is the header;
- rows may be newest-first (they are sorted), and exact duplicate rows are dropped;
- a ``price`` column is the close when there is no ``close`` column;
- without open, high and low, bars are close-only (open = high = low = close), as CoinGecko
  price points are stored; without volume, volume is 0, as for CoinGecko's ohlc candles;
- fields may be separated by ``,``, ``;`` or tabs.

A column mapping (``{"timestamp": "Date", "close": "Price"}``) names the column of any field;
the other fields are found as above. Everything done to make a file fit is reported as a note.
Every message that points into a file says ``line N``, the file's own line: the header is
line 1, or line 2 after a banner.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from marketbot.core.bars import (
    OHLCV_COLUMNS,
    bar_times,
    format_bar_time,
    normalize_ohlcv,
    parse_timestamps,
)
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe, timeframe_seconds
from marketbot.sources.csv_header import CSV_FIELDS, OPEN_HIGH_LOW, Header, find_header
from marketbot.store.prices import PriceRepository

__all__ = [
    "CSV_FIELDS",
    "CsvBars",
    "export_csv",
    "import_csv",
    "load_ohlcv_csv",
    "read_ohlcv_csv",
]

_HEADER_CANDIDATES: Final = 2  # the header, or a banner line and then the header


@dataclass(frozen=True)
class CsvBars:
    """An OHLCV file read and validated, and what was done to make it fit.

    Attributes:
        frame: The bars in canonical form (see :func:`~marketbot.core.bars.normalize_ohlcv`).
        notes: One sentence per adjustment: a banner line skipped, which column gave the
            timestamps or the volume, rows sorted from newest-first, duplicate rows dropped,
            close-only bars or zero volume filled in. Empty for a canonical file.
    """

    frame: pd.DataFrame
    notes: tuple[str, ...] = ()


def read_ohlcv_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read and validate an OHLCV CSV file: :func:`load_ohlcv_csv` without the notes."""
    return load_ohlcv_csv(path, columns).frame


def load_ohlcv_csv(path: str | Path, columns: Mapping[str, str] | None = None) -> CsvBars:
    """Read and validate an OHLCV CSV file of any shape the module docstring lists.

    Args:
        path: The file.
        columns: The header name of some fields, e.g. ``{"close": "Price"}`` (any
            capitalisation); fields not named are found by their usual names.

    Returns:
        The bars, oldest first, and notes on what was done to make the file fit.

    Raises:
        ConfigError: ``columns`` names a field other than timestamp, open, high, low, close
            or volume.
        DataError: the file is missing, empty or unreadable, its header has no timestamp or
            close column, a row is malformed, two rows of one time differ, the times are
            neither oldest-first nor newest-first, or any bar is invalid; the message names
            the file, the first problem and its ``line N``.
    """
    mapping = _checked_mapping(columns)
    file = Path(path)
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    where = file.name
    lines = iter(io.StringIO(_read_text(file, where), newline=""))
    first_lines = _first_lines(lines)
    candidates = [(number, text) for number, text in first_lines if text.strip()]
    if not candidates:
        raise DataError(f"{where}: the file is empty")
    header = find_header(candidates, mapping, where)
    after_header = (text for number, text in first_lines if number > header.line)
    row_lines, rows = _records(chain(after_header, lines), header, where)
    notes = list(header.notes)
    frame = _frame(rows, row_lines, header, where)
    frame, row_lines = _without_duplicates(frame, row_lines, where, notes)
    frame, row_lines = _in_time_order(frame, row_lines, where, notes)
    return CsvBars(normalize_ohlcv(frame, where=where, lines=row_lines), tuple(notes))


def _checked_mapping(columns: Mapping[str, str] | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for key, name in (columns or {}).items():
        if key.strip().lower() not in CSV_FIELDS:
            raise ConfigError(
                f"columns: {key!r} is not a field; use one of {', '.join(CSV_FIELDS)}"
            )
        mapping[key.strip().lower()] = name
    return mapping


def _read_text(file: Path, where: str) -> str:
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        with file.open(encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{where}: not a readable CSV file (not UTF-8 text at byte {exc.start})"
        ) from exc
    except OSError as exc:
        raise DataError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc


def _first_lines(lines: Iterator[str]) -> list[tuple[int, str]]:
    """The lines up to the second non-blank one (header, or banner and header), numbered."""
    read: list[tuple[int, str]] = []
    non_blank = 0
    for number, text in enumerate(lines, start=1):
        read.append((number, text))
        non_blank += bool(text.strip())
        if non_blank == _HEADER_CANDIDATES:
            break
    return read


def _records(
    lines: Iterator[str], header: Header, where: str
) -> tuple[np.ndarray, list[list[str]]]:
    """The non-blank rows after the header, each at least as wide, and their line numbers."""
    reader = csv.reader(lines, delimiter=header.delimiter)
    width = len(header.names)
    numbers: list[int] = []
    rows: list[list[str]] = []
    try:
        for row in reader:
            if (len(row) != width or not row[0].strip()) and not _usable(row, width):
                if any(value.strip() for value in row):
                    raise DataError(
                        f"{where}: line {header.line + reader.line_num} has {len(row)} fields, "
                        f"the header (line {header.line}) has {width}"
                    )
                continue  # blank lines and all-empty rows such as ",,,,"
            numbers.append(header.line + reader.line_num)
            rows.append(row)
    except csv.Error as exc:
        raise DataError(
            f"{where}: not a readable CSV file (line {header.line + reader.line_num}: {exc})"
        ) from exc
    if not rows:
        raise DataError(f"{where}: no bars (the file has a header but no rows)")
    return np.array(numbers, dtype=np.int64), rows


def _usable(row: list[str], width: int) -> bool:
    """Whether a row that is not plainly fine is still a row of data.

    Extra fields would shift every column (an unquoted "1,234.5"): they are refused, unless
    they are empty ones that some exports leave at the end of each row.
    """
    return (
        len(row) >= width
        and any(value.strip() for value in row[:width])
        and not any(value.strip() for value in row[width:])
    )


def _frame(rows: list[list[str]], lines: np.ndarray, header: Header, where: str) -> pd.DataFrame:
    """The rows as OHLCV numbers on a UTC index, in file order."""
    times = [row[header.positions["timestamp"][0]].strip() for row in rows]
    if len(header.positions["timestamp"]) > 1:  # a date column and a time column
        clock = header.positions["timestamp"][1]
        times = [f"{day} {row[clock].strip()}" for day, row in zip(times, rows, strict=True)]
    index = _timestamps(times, where, lines)
    data = {
        name: _numbers([row[header.positions[name][0]] for row in rows], name, where, lines)
        for name in OHLCV_COLUMNS
        if name in header.positions
    }
    for name in OPEN_HIGH_LOW:
        data.setdefault(name, data["close"])
    data.setdefault("volume", np.zeros(len(rows)))
    return pd.DataFrame({name: data[name] for name in OHLCV_COLUMNS}, index=index)


def _timestamps(texts: list[str], where: str, lines: np.ndarray) -> pd.DatetimeIndex:
    try:
        return parse_timestamps(
            pd.Series(np.array(texts, dtype=np.float64)), where=where, lines=lines
        )
    except ValueError:
        pass  # not all epoch numbers: written dates, or a mistake to find below
    values = pd.Series(texts, dtype=object)
    values = values.where(values.str.strip() != "", None)
    is_number = pd.to_numeric(values, errors="coerce").notna().to_numpy()
    present = values.notna().to_numpy()
    if present.any() and is_number[np.argmax(present)]:  # epoch numbers: find the odd one
        position = int(np.flatnonzero(~is_number)[0])
        if not present[position]:
            raise DataError(f"{where}: empty timestamp at line {lines[position]}")
        raise DataError(
            f"{where}: timestamp {values.iloc[position]!r} (line {lines[position]}) is not an "
            f"epoch number like the first (line {lines[np.argmax(present)]})"
        )
    return parse_timestamps(values, where=where, lines=lines)


def _numbers(texts: list[str], name: str, where: str, lines: np.ndarray) -> np.ndarray:
    try:
        return np.array(texts, dtype=np.float64)
    except ValueError:
        pass  # find the first field that is not a number, to name it
    for position, text in enumerate(texts):
        try:
            float(text)
        except ValueError:
            if not text.strip():
                raise DataError(f"{where}: empty {name} at line {lines[position]}") from None
            raise DataError(
                f"{where}: {name} {text.strip()!r} at line {lines[position]} is not a number"
            ) from None
    raise DataError(f"{where}: column {name!r} is not numeric")  # numpy refused, float did not


def _in_time_order(
    frame: pd.DataFrame, lines: np.ndarray, where: str, notes: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Oldest first: newest-first files reversed, any other order refused."""
    times = bar_times(frame).asi8
    steps = np.diff(times)
    newest_first = len(times) > 1 and times[-1] < times[0]
    against = steps > 0 if newest_first else steps < 0
    if against.any():
        # Neither order: perhaps two files pasted together, or day and month swapped.
        position = int(np.flatnonzero(against)[0]) + 1
        index = bar_times(frame)
        raise DataError(
            f"{where}: timestamps neither oldest-first nor newest-first: "
            f"{format_bar_time(index[position])} (line {lines[position]}) follows "
            f"{format_bar_time(index[position - 1])} (line {lines[position - 1]})"
        )
    if not newest_first:
        return frame, lines
    notes.append(f"rows were newest-first (line {lines[0]} is the latest): sorted oldest-first")
    return frame.iloc[::-1], lines[::-1].copy()


def _without_duplicates(
    frame: pd.DataFrame, lines: np.ndarray, where: str, notes: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Exact copies of the row before them dropped; two different rows for one time refused.

    Only neighbours are compared: in a file in time order (either way) they are the only
    duplicates, and a file in neither order is refused next.
    """
    repeats = np.flatnonzero(np.diff(bar_times(frame).asi8) == 0) + 1
    if repeats.size == 0:
        return frame, lines
    values = frame.to_numpy()
    equal = (values[repeats] == values[repeats - 1]) | (
        np.isnan(values[repeats]) & np.isnan(values[repeats - 1])
    )
    conflicts = repeats[~equal.all(axis=1)]
    if conflicts.size:
        _refuse_conflict(frame, lines, int(conflicts[0]), where)
    notes.append(
        f"dropped {len(repeats)} exact duplicate row(s) (the first: line "
        f"{lines[repeats[0]]}, a copy of line {lines[repeats[0] - 1]})"
    )
    keep = np.ones(len(lines), dtype=bool)
    keep[repeats] = False
    return frame[keep], lines[keep]


def _refuse_conflict(frame: pd.DataFrame, lines: np.ndarray, position: int, where: str) -> None:
    earlier, later = position - 1, position
    first_difference = next(
        name for name in OHLCV_COLUMNS if frame[name].iloc[earlier] != frame[name].iloc[later]
    )
    raise DataError(
        f"{where}: lines {lines[earlier]} and {lines[later]} are both "
        f"{format_bar_time(bar_times(frame)[position])}, with different values "
        f"({first_difference} {frame[first_difference].iloc[earlier]:g} and "
        f"{frame[first_difference].iloc[later]:g})"
    )


def import_csv(
    prices: PriceRepository,
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | None = None,
    source: str = "csv",
    columns: Mapping[str, str] | None = None,
) -> str:
    """Validate a CSV and store it as one series in one transaction; return a summary.

    Nothing is written unless every bar is valid. Re-importing the same file is idempotent.
    The summary is one line, followed by one ``note: ...`` line per note of
    :func:`load_ohlcv_csv`.
    """
    loaded = load_ohlcv_csv(path, columns)
    frame = loaded.frame
    inferred = seconds_to_timeframe(infer_bar_seconds(bar_times(frame).asi8))
    chosen = timeframe or inferred
    timeframe_seconds(chosen)  # validates the label
    written = prices.upsert_bars(source, symbol, chosen, frame)
    index = bar_times(frame)
    first, last = format_bar_time(index[0]), format_bar_time(index[-1])
    summary = f"imported {written} {chosen} bars of {symbol} ({source}) from {first} to {last}"
    return "\n".join([summary, *(f"note: {note}" for note in loaded.notes)])


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
