"""Reading one derived Polymarket CSV file (plain or gzipped) into checked columns.

A :class:`Table` is the file's header and rows as stripped texts with each row's own line
number (the header is line 1), and it makes the one-line errors that name file, line, field
and value. The column parsers find the first bad value and say what is allowed there.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from marketbot.core.errors import DataError
from marketbot.store.polymarket_book_frames import times_to_milliseconds

__all__ = ["Table", "milliseconds", "numbers", "read_table"]

_GZIP_MAGIC: Final = b"\x1f\x8b"
_TIME_EXAMPLE: Final = "an ISO 8601 time, UTC unless it has an offset, e.g. 2026-09-28T09:15:00Z"
_MICROSECONDS_PER_MILLISECOND: Final = 1000


@dataclass(frozen=True)
class Table:
    """A CSV file's header and rows, every value a stripped text.

    Attributes:
        where: The file's name, the start of every message.
        header: The header's names as written.
        names: The same, stripped and lower-cased (how columns are looked up).
        header_line: The header's line number (1 unless blank lines precede it).
        lines: Each row's line number in the file (where its record starts).
        rows: The rows, as wide as the header; filled while the file is read.
    """

    where: str
    header: tuple[str, ...]
    names: tuple[str, ...]
    header_line: int
    lines: list[int] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)

    def add_row(self, line: int, values: list[str]) -> None:
        """Append a row read from this line (while the file is read)."""
        self.lines.append(line)
        self.rows.append(values)

    def column(self, name: str) -> list[str]:
        """Every row's value of a column (by lower-case name)."""
        position = self.names.index(name)
        return [row[position] for row in self.rows]

    def text(self, name: str, row: int) -> str:
        """One value as written, for a message."""
        return self.rows[row][self.names.index(name)]

    def fail(self, row: int, problem: str) -> DataError:
        """``{file}: line {n}: {problem}`` for the row at this position."""
        return DataError(f"{self.where}: line {self.lines[row]}: {problem}")

    def fail_header(self, problem: str) -> DataError:
        """``{file}: line 1: {problem}`` about the header."""
        return DataError(f"{self.where}: line {self.header_line}: {problem}")


def _decoded(file: Path, where: str) -> str:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DataError(f"{where}: cannot read the file ({exc.strerror or exc})") from exc
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{where}: not a readable gzip file ({exc})") from exc
    try:
        # utf-8-sig: spreadsheet exports often start with a byte-order mark.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{where}: not a CSV file (not UTF-8 text at byte {exc.start})") from exc


def read_table(path: str | Path, check_header: Callable[[Table], object]) -> Table:
    """Read a CSV file, plain or gzipped (found by its first bytes, not its name).

    Args:
        path: The file.
        check_header: Called with the header (a table without rows) before any row is read,
            so that a wrong header is reported as such, not as rows of the wrong width.

    Raises:
        DataError: the file is missing, unreadable or empty, the header repeats a name or
            fails ``check_header``, or a row is not as wide as the header.
    """
    file = Path(path)
    where = file.name
    if not file.is_file():
        raise DataError(f"{file}: no such file")
    reader = csv.reader(io.StringIO(_decoded(file, where), newline=""))
    table: Table | None = None
    try:
        previous = 0  # the line a record starts on is the one after the previous record
        for record in reader:
            start, previous = previous + 1, reader.line_num
            values = [value.strip() for value in record]
            if not any(values):
                continue  # blank lines and all-empty rows
            if table is None:
                table = _header(where, values, start)
                check_header(table)
                continue
            if len(values) != len(table.names):
                raise DataError(
                    f"{where}: line {start}: {len(values)} fields, the header (line "
                    f"{table.header_line}) has {len(table.names)}"
                )
            table.add_row(start, values)
    except csv.Error as exc:
        raise DataError(f"{where}: line {reader.line_num}: not readable CSV ({exc})") from exc
    if table is None:
        raise DataError(f"{where}: the file is empty")
    return table


def _header(where: str, header: list[str], line: int) -> Table:
    names = tuple(name.lower() for name in header)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise DataError(f"{where}: line {line}: column {repeated[0]} appears twice")
    return Table(where, tuple(header), names, line)


def numbers(table: Table, name: str, *, price: bool) -> np.ndarray:
    """A column of optional numbers (empty: NaN): prices in [0, 1], or sizes >= 0.

    Raises:
        DataError: a value is not a number, or outside what is allowed.
    """
    texts = table.column(name)
    values = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64
    )
    given = np.array([bool(text) for text in texts], dtype=bool)
    allowed = "in [0, 1]" if price else ">= 0"
    # inf is outside [0, 1] for a price; for a size it is no number at all.
    unusable = np.isnan(values) if price else ~np.isfinite(values)
    bad = np.flatnonzero(given & unusable)
    if bad.size:
        at = int(bad[0])
        raise table.fail(at, f"{name} {texts[at]!r} is not a number {allowed} (or empty)")
    if price:
        outside = np.flatnonzero(given & ~((values >= 0.0) & (values <= 1.0)))
        if outside.size:
            raise table.fail(int(outside[0]), f"{name} {texts[outside[0]]} is outside [0, 1]")
    else:
        negative = np.flatnonzero(given & (values < 0.0))
        if negative.size:
            raise table.fail(
                int(negative[0]), f"{name} {texts[negative[0]]} is negative (sizes are >= 0)"
            )
    return values


def milliseconds(table: Table, name: str) -> np.ndarray:
    """A column of required times as integer milliseconds since the epoch, UTC.

    Raises:
        DataError: a time is empty, not a time, or finer than a millisecond.
    """
    texts = table.column(name)
    for position, text in enumerate(texts):
        if not text:
            raise table.fail(position, f"{name} is empty (allowed: {_TIME_EXAMPLE})")
    times = pd.to_datetime(
        pd.Series(texts, dtype=object), utc=True, format="ISO8601", errors="coerce"
    )
    bad = np.flatnonzero(times.isna().to_numpy())
    if bad.size:
        at = int(bad[0])
        raise table.fail(at, f"{name} {texts[at]!r} is not a time (allowed: {_TIME_EXAMPLE})")
    fine = (times.dt.microsecond % _MICROSECONDS_PER_MILLISECOND != 0) | (times.dt.nanosecond != 0)
    finer = np.flatnonzero(fine.to_numpy())
    if finer.size:
        at = int(finer[0])
        raise table.fail(at, f"{name} {texts[at]} is finer than a millisecond")
    return times_to_milliseconds(times)
