"""Binary markets and their order books from the two derived CSV files (plain or gzipped).

The markets file, one row per market::

    market_id,slug,question,start,end,payout_up,payout_down[,winner]

The two ``payout_<label>`` columns name the outcomes in index order (``payout_up,payout_down``:
outcome 0 is ``Up``, outcome 1 ``Down``). Both payouts empty: unresolved; else each is in
[0, 1] and they sum to 1 (0.5/0.5 is a valid split). ``winner``, when given, is the label
paid 1. ``start`` and ``end`` are ISO 8601 times (UTC when they carry no offset).

The books file, one row per outcome token and snapshot (the top of its order book)::

    timestamp,slug,side,best_bid,bid_size,best_ask,ask_size[,mid]

``side`` is an outcome label in any case (``UP``); ``mid`` is ignored. An empty side of the
book has an empty price and size. Crossed, locked, one-sided and 0-price books are data, not
errors. Times are whole milliseconds.

Either file may be gzipped (found by its content, not its name). Bad input raises one
:class:`~marketbot.core.errors.DataError` naming the file, the line (the header is line 1),
the field, the value and what is allowed: ``B.csv: line 4: best_ask 1.2 is outside [0, 1]``.
The results are the normalised frames of :mod:`marketbot.store.polymarket_book_frames`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from marketbot.core.errors import DataError
from marketbot.sources.polymarket_book_table import (
    Table,
    milliseconds,
    numbers,
    read_table,
)
from marketbot.store.polymarket_book_frames import books_frame, markets_frame

__all__ = ["BOOKS_HEADER", "MARKETS_HEADER", "read_books_csv", "read_markets_csv"]

MARKETS_HEADER: Final = "market_id,slug,question,start,end,payout_<a>,payout_<b>[,winner]"
BOOKS_HEADER: Final = "timestamp,slug,side,best_bid,bid_size,best_ask,ask_size[,mid]"
_MARKET_FIELDS: Final = ("market_id", "slug", "question", "start", "end")
_BOOK_FIELDS: Final = ("timestamp", "slug", "side", "best_bid", "bid_size", "best_ask", "ask_size")
_PAYOUT_PREFIX: Final = "payout_"
_OUTCOMES: Final = 2
_SUM_TOLERANCE: Final = 1e-9
# The markets frame remembers its file's name, for "slug 'x' is not in M.csv".
SOURCE_ATTRIBUTE: Final = "source_file"


def read_markets_csv(path: str | Path) -> pd.DataFrame:
    """Read and validate a markets file (plain or gzipped).

    Returns:
        The normalised markets frame, ordered by slug; ``attrs["source_file"]`` is the file's
        name.

    Raises:
        DataError: the file is missing or unreadable, its header is not the markets header,
            or a row is bad: an empty id or slug, one seen before, an empty or bad time, a
            start after its end, bad payouts or a winner they do not pay. The message names
            the file, line, field and value.
    """
    table = read_table(path, _markets_header)
    payout_names = _markets_header(table)
    if not table.rows:
        raise DataError(f"{table.where}: no markets (the file has a header but no rows)")
    market_ids = _unique_texts(table, "market_id")
    slugs = _unique_texts(table, "slug")
    start = milliseconds(table, "start")
    end = milliseconds(table, "end")
    late = np.flatnonzero(start > end)
    if late.size:
        at = int(late[0])
        raise table.fail(
            at, f"start {table.text('start', at)} is after end {table.text('end', at)}"
        )
    labels = tuple(_label(table.header[table.names.index(name)]) for name in payout_names)
    payouts = _payouts(table, payout_names)
    winners = _winners(table, payout_names, labels, payouts)
    frame = markets_frame(
        market_id=market_ids,
        slug=slugs,
        question=table.column("question"),
        bounds_ms=np.column_stack([start, end]),
        labels=[(labels[0], labels[1])] * len(table.rows),
        payouts=payouts,
        winner=winners,
    )
    frame.attrs[SOURCE_ATTRIBUTE] = table.where
    return frame


def read_books_csv(path: str | Path, markets: pd.DataFrame) -> pd.DataFrame:
    """Read and validate a books file (plain or gzipped) of the given markets.

    Args:
        path: The books file.
        markets: The markets frame its slugs refer to (from :func:`read_markets_csv`).

    Returns:
        The normalised books frame, ordered by (slug, timestamp, outcome_index).

    Raises:
        DataError: the file is missing or unreadable, its header is not the books header, or
            a row is bad: a slug not in ``markets``, a side that is not one of its outcomes,
            an empty or bad time, a price outside [0, 1] or not a number, a negative size, a
            price without its size (or the reverse), a second row for one token and time.
    """
    table = read_table(path, _books_header)
    if not table.rows:
        raise DataError(f"{table.where}: no snapshots (the file has a header but no rows)")
    positions = _market_positions(table, markets)
    outcomes = _outcome_indexes(table, markets, positions)
    stamps = milliseconds(table, "timestamp")
    values = {
        "best_bid": numbers(table, "best_bid", price=True),
        "bid_size": numbers(table, "bid_size", price=False),
        "best_ask": numbers(table, "best_ask", price=True),
        "ask_size": numbers(table, "ask_size", price=False),
    }
    _check_sides_whole(table, values)
    _check_no_duplicates(table, positions, outcomes, stamps)
    return books_frame(
        market_id=markets["market_id"].to_numpy(dtype=object)[positions],
        slug=markets["slug"].to_numpy(dtype=object)[positions],
        outcome_index=outcomes,
        timestamp_ms=stamps,
        values=values,
    )


# -- the markets file ----------------------------------------------------------------------


def _label(column: str) -> str:
    """``payout_up`` -> ``Up``: the outcome's label, first letter capitalised."""
    name = column.strip()[len(_PAYOUT_PREFIX) :]
    return name[:1].upper() + name[1:]


def _markets_header(table: Table) -> tuple[str, str]:
    """The two payout columns' names, after checking the header's columns."""
    payout_names = tuple(name for name in table.names if name.startswith(_PAYOUT_PREFIX))
    missing = [name for name in _MARKET_FIELDS if name not in table.names]
    if missing:
        raise table.fail_header(
            f"missing column(s) {', '.join(missing)} (the header is {MARKETS_HEADER})"
        )
    if len(payout_names) != _OUTCOMES or any(name == _PAYOUT_PREFIX for name in payout_names):
        found = ", ".join(payout_names) or "none"
        raise table.fail_header(
            f"a binary market needs 2 payout columns named payout_<outcome>, found {found} "
            f"(the header is {MARKETS_HEADER})"
        )
    if payout_names[0] == payout_names[1]:
        raise table.fail_header(f"the payout columns name one outcome twice ({payout_names[0]})")
    known = {*_MARKET_FIELDS, *payout_names, "winner"}
    unknown = [name for name in table.names if name not in known]
    if unknown:
        raise table.fail_header(
            f"unknown column(s) {', '.join(unknown)} (the header is {MARKETS_HEADER})"
        )
    return payout_names[0], payout_names[1]


def _unique_texts(table: Table, name: str) -> list[str]:
    """A column that must be filled in and may not repeat (ids and slugs)."""
    texts = table.column(name)
    first_line: dict[str, int] = {}
    for position, text in enumerate(texts):
        if not text:
            raise table.fail(position, f"{name} is empty (each market needs one)")
        if text in first_line:
            raise table.fail(
                position, f"{name} {text} is on line {first_line[text]} already (one row a market)"
            )
        first_line[text] = int(table.lines[position])
    return texts


def _payouts(table: Table, names: tuple[str, str]) -> np.ndarray:
    """Shape (markets, 2): the payouts, NaN for an unresolved market."""
    pairs = np.column_stack([numbers(table, name, price=True) for name in names])
    empty = np.isnan(pairs)
    half = np.flatnonzero(empty[:, 0] != empty[:, 1])
    if half.size:
        at = int(half[0])
        blank, given = (names[0], names[1]) if empty[at, 0] else (names[1], names[0])
        raise table.fail(
            at,
            f"{blank} is empty but {given} is {table.text(given, at)} (both empty: unresolved; "
            "both given: resolved)",
        )
    paid = ~empty[:, 0]
    off = np.flatnonzero(paid & (np.abs(pairs[:, 0] + pairs[:, 1] - 1.0) > _SUM_TOLERANCE))
    if off.size:
        at = int(off[0])
        total = pairs[at, 0] + pairs[at, 1]
        raise table.fail(
            at,
            f"{names[0]} {table.text(names[0], at)} + {names[1]} {table.text(names[1], at)} "
            f"= {total:g}, not 1 (a resolved market's payouts sum to 1)",
        )
    return pairs


def _winners(
    table: Table, names: tuple[str, str], labels: tuple[str, ...], payouts: np.ndarray
) -> list[str | None]:
    """Each market's winning label (the outcome paid 1), checked against a winner column."""
    stated = table.column("winner") if "winner" in table.names else [""] * len(table.rows)
    by_name = {label.lower(): label for label in labels}
    winners: list[str | None] = []
    for position, text in enumerate(stated):
        paid = [
            label
            for label, payout in zip(labels, payouts[position], strict=True)
            if payout >= 1.0 - _SUM_TOLERANCE
        ]
        winner = paid[0] if paid else None
        if text and text.lower() not in by_name:
            raise table.fail(
                position,
                f"winner {text!r} is not an outcome ({labels[0]} or {labels[1]}, or empty)",
            )
        if text and by_name[text.lower()] != winner:
            label = by_name[text.lower()]
            if np.isnan(payouts[position, 0]):
                why = "the payouts are empty (an unresolved market has no winner)"
            else:
                name = names[labels.index(label)]
                why = f"{name} is {table.text(name, position)} (the winner is paid 1)"
            raise table.fail(position, f"winner {text} but {why}")
        winners.append(winner)
    return winners


# -- the books file ------------------------------------------------------------------------


def _books_header(table: Table) -> None:
    missing = [name for name in _BOOK_FIELDS if name not in table.names]
    if missing:
        raise table.fail_header(
            f"missing column(s) {', '.join(missing)} (the header is {BOOKS_HEADER})"
        )
    unknown = [name for name in table.names if name not in {*_BOOK_FIELDS, "mid"}]
    if unknown:
        raise table.fail_header(
            f"unknown column(s) {', '.join(unknown)} (the header is {BOOKS_HEADER})"
        )


def _market_positions(table: Table, markets: pd.DataFrame) -> np.ndarray:
    """Each row's market, as its position in ``markets``."""
    known = {str(slug): position for position, slug in enumerate(markets["slug"])}
    source = markets.attrs.get(SOURCE_ATTRIBUTE, "the markets file")
    positions = np.empty(len(table.rows), dtype=np.int64)
    for row, slug in enumerate(table.column("slug")):
        position = known.get(slug)
        if position is None:
            if not slug:
                raise table.fail(row, "slug is empty (each snapshot names its market)")
            raise table.fail(row, f"slug {slug!r} is not in {source}")
        positions[row] = position
    return positions


def _outcome_indexes(table: Table, markets: pd.DataFrame, positions: np.ndarray) -> np.ndarray:
    """Each row's outcome index (0/1) from its side, a label of its market in any case."""
    sides = np.array([side.lower() for side in table.column("side")], dtype=object)
    first = np.array([label.lower() for label in markets["label_0"]], dtype=object)[positions]
    second = np.array([label.lower() for label in markets["label_1"]], dtype=object)[positions]
    outcomes = np.where(sides == first, 0, np.where(sides == second, 1, -1)).astype(np.int8)
    unknown = np.flatnonzero(outcomes < 0)
    if unknown.size:
        at = int(unknown[0])
        market = markets.iloc[int(positions[at])]
        raise table.fail(
            at,
            f"side {table.text('side', at)!r} is not an outcome of {market['slug']} "
            f"({market['label_0']} or {market['label_1']}, in any case)",
        )
    return outcomes


def _check_sides_whole(table: Table, values: dict[str, np.ndarray]) -> None:
    """A side of the book is a price and a size, or neither."""
    for price, size in (("best_bid", "bid_size"), ("best_ask", "ask_size")):
        half = np.flatnonzero(np.isnan(values[price]) != np.isnan(values[size]))
        if half.size:
            at = int(half[0])
            blank, given = (price, size) if np.isnan(values[price][at]) else (size, price)
            raise table.fail(
                at,
                f"{blank} is empty but {given} is {table.text(given, at)} (a side of the "
                "book is a price and a size, or both empty)",
            )


def _check_no_duplicates(
    table: Table, positions: np.ndarray, outcomes: np.ndarray, stamps: np.ndarray
) -> None:
    keys = pd.DataFrame({"market": positions, "outcome": outcomes, "time": stamps})
    repeated = np.flatnonzero(keys.duplicated().to_numpy())
    if not repeated.size:
        return
    at = int(repeated[0])
    same = (positions == positions[at]) & (outcomes == outcomes[at]) & (stamps == stamps[at])
    earlier = int(table.lines[int(np.flatnonzero(same)[0])])
    raise table.fail(
        at,
        f"{table.text('slug', at)} {table.text('side', at)} at {table.text('timestamp', at)} "
        f"is on line {earlier} already (one snapshot per outcome and time)",
    )
