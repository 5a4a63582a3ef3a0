"""Finding the columns of a real-world OHLCV CSV from its header line (or the line after a banner).

Names are matched in any capitalisation with ``_`` and ``-`` as spaces; the timestamp may be
``timestamp``, ``unix``, ``datetime``, ``date`` or ``time`` (``date`` plus ``time`` joined),
volume may be ``Volume BTC``/``Volume USD``-style (the base asset's wins), ``price`` stands in
for a missing ``close``, and a column mapping names any field's column. What was chosen is
reported as notes.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from typing import Final

from marketbot.core.bars import OHLCV_COLUMNS
from marketbot.core.errors import DataError

__all__ = ["CSV_FIELDS", "OPEN_HIGH_LOW", "Header", "find_header"]

CSV_FIELDS: Final = ("timestamp", *OHLCV_COLUMNS)
"""The fields a column mapping may name."""
EXPECTED_HEADER: Final = ",".join(CSV_FIELDS)
# In order of preference: an epoch number means one instant, a written date may be local.
_TIME_NAMES: Final = ("timestamp", "unix", "datetime", "date", "time")
_EPOCH_NAMES: Final = frozenset({"unix"})
# "volume btc", "volume(usd)", "vol usdt" (names are lower-cased, "_" and "-" made spaces).
_CURRENCY_VOLUME: Final = re.compile(r"^vol(?:ume)? ?\(?([a-z0-9]+)\)?$")
_QUOTE_CURRENCIES: Final = frozenset(
    {"usd", "usdt", "usdc", "busd", "fdusd", "tusd", "dai", "eur", "gbp", "jpy", "krw", "aud",
     "cad", "chf", "try", "brl", "rub", "inr", "cny", "mxn", "zar"}
)  # fmt: skip
_DELIMITERS: Final = (",", ";", "\t")
_QUOTED_LENGTH: Final = 60  # of a skipped banner line in a note
OPEN_HIGH_LOW: Final = ("open", "high", "low")


@dataclass(frozen=True)
class Header:
    """Where each field is in a file's rows, found from its header line."""

    line: int
    delimiter: str
    names: tuple[str, ...]
    positions: dict[str, tuple[int, ...]]  # field -> column positions (two: date and time)
    notes: tuple[str, ...]


@dataclass(frozen=True)
class _NotAHeader:
    """A line that is not a header with the needed columns: what it lacks, what it has."""

    line: int
    missing: tuple[str, ...]
    names: tuple[str, ...]


def find_header(candidates: list[tuple[int, str]], mapping: dict[str, str], where: str) -> Header:
    """The header among the first numbered lines: line 1, or line 2 after a banner line.

    Raises:
        DataError: neither line names the needed columns (the message lists what is missing,
            the header expected and the names found).
    """
    first = _read_header(*candidates[0], mapping)
    if isinstance(first, Header):
        return first
    second = _read_header(*candidates[1], mapping) if len(candidates) > 1 else None
    if isinstance(second, Header):
        banner = candidates[0][1].strip()
        if len(banner) > _QUOTED_LENGTH:
            banner = banner[: _QUOTED_LENGTH - 3] + "..."
        skipped = f"skipped line {first.line} ({banner!r}): the header is line {second.line}"
        return replace(second, notes=(skipped, *second.notes))
    # A one-field first line followed by a wider one is a banner: the second is the header.
    wider = second is not None and len(first.names) == 1 < len(second.names)
    reported = second if wider and second is not None else first
    raise DataError(
        f"{where}: missing column(s) {', '.join(reported.missing)} in the header (line "
        f"{reported.line}): expected {EXPECTED_HEADER} or a column mapping; found: "
        f"{', '.join(reported.names)}"
    )


def _read_header(number: int, text: str, mapping: dict[str, str]) -> Header | _NotAHeader:
    """The header on line ``number``, or what that line lacks to be one."""
    delimiter = max(_DELIMITERS, key=text.count)  # ties go to the comma, listed first
    names = tuple(name.strip() for name in next(csv.reader([text], delimiter=delimiter), []))
    keys = [_name_key(name) for name in names]
    positions: dict[str, tuple[int, ...]] = {}
    missing: list[str] = []
    for wanted, name in mapping.items():
        if _name_key(name) in keys:
            positions[wanted] = (keys.index(_name_key(name)),)
        else:
            missing.append(f"{name!r} (for {wanted})")
    notes: list[str] = []
    for name in CSV_FIELDS:
        if name not in mapping and (found := _find_column(name, names, keys, notes)):
            positions[name] = found
    missing += [f"'{name}'" for name in _missing_fields(positions) if name not in mapping]
    if missing:
        return _NotAHeader(number, tuple(missing), names)
    if not any(name in positions for name in OPEN_HIGH_LOW):
        notes.append("no open, high and low columns: close-only bars (open = high = low = close)")
    if "volume" not in positions:
        notes.append("no volume column: volume 0")
    return Header(number, delimiter, names, positions, tuple(notes))


def _find_column(
    name: str, names: tuple[str, ...], keys: list[str], notes: list[str]
) -> tuple[int, ...]:
    """The column position(s) of field ``name`` by its usual names, or () if none."""
    if name == "timestamp":
        return _time_columns(names, keys, notes)
    if name == "volume":
        return _volume_column(names, keys, notes)
    if name == "close" and "close" not in keys and "price" in keys:
        notes.append(f"close from column {names[keys.index('price')]!r}")
        return (keys.index("price"),)
    return (keys.index(name),) if name in keys else ()


def _missing_fields(positions: dict[str, tuple[int, ...]]) -> list[str]:
    """Fields a file cannot do without: timestamp and close, and open, high, low as a set."""
    missing = [name for name in ("timestamp", "close") if name not in positions]
    if any(name in positions for name in OPEN_HIGH_LOW):
        missing += [name for name in OPEN_HIGH_LOW if name not in positions]
    return missing


def _name_key(name: str) -> str:
    """A header name as matched: lower case, ``_`` and ``-`` as spaces, spaces collapsed."""
    return " ".join(name.lower().replace("_", " ").replace("-", " ").split())


def _time_columns(names: tuple[str, ...], keys: list[str], notes: list[str]) -> tuple[int, ...]:
    present = [name for name in _TIME_NAMES if name in keys]
    if not present:
        return ()
    if present == ["date", "time"]:
        date, time = keys.index("date"), keys.index("time")
        notes.append(f"timestamps from columns {names[date]!r} and {names[time]!r} joined")
        return (date, time)
    chosen = keys.index(present[0])
    if len(present) > 1:
        why = " (epoch times: unambiguous)" if present[0] in _EPOCH_NAMES else ""
        ignored = ", ".join(repr(names[keys.index(name)]) for name in present[1:])
        notes.append(f"timestamps from column {names[chosen]!r}{why}; ignored {ignored}")
    return (chosen,)


def _volume_column(names: tuple[str, ...], keys: list[str], notes: list[str]) -> tuple[int, ...]:
    if "volume" in keys:
        return (keys.index("volume"),)
    currencies = {
        position: match.group(1)
        for position, key in enumerate(keys)
        if (match := _CURRENCY_VOLUME.match(key)) is not None
    }
    if not currencies:
        return ()
    base = [position for position, code in currencies.items() if code not in _QUOTE_CURRENCIES]
    chosen = (base or list(currencies))[0]
    kind = "the base asset's" if base else "in the quote currency: no base-asset volume column"
    others = [repr(names[position]) for position in currencies if position != chosen]
    ignored = f"; ignored {', '.join(others)}" if others else ""
    notes.append(f"volume from column {names[chosen]!r} ({kind}){ignored}")
    return (chosen,)
