"""The two normalised frames of binary markets and their order books, built one way for all.

The CSV reader (:mod:`marketbot.sources.polymarket_book_csv`) and the store
(:class:`~marketbot.store.polymarket_books.PolymarketBookRepository`) both hand the backtest
these frames, so both build them here, with the same names, dtypes and order:

* markets, one row per market, ordered by slug: ``market_id``, ``slug``, ``question`` (str);
  ``start``, ``end`` (``datetime64[ms, UTC]``); ``label_0``, ``label_1`` (str, the outcomes
  in index order); ``payout_0``, ``payout_1`` (float64, NaN while unresolved); ``winner``
  (object: the winning label, or None when unresolved or split).
* books, one row per outcome token and snapshot, ordered by (slug, timestamp,
  outcome_index): ``market_id``, ``slug`` (str); ``outcome_index`` (int8, 0 or 1);
  ``timestamp`` (``datetime64[ms, UTC]``); ``best_bid``, ``bid_size``, ``best_ask``,
  ``ask_size`` (float64, NaN on an empty side).

Both have a fresh RangeIndex.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

__all__ = [
    "BOOK_FRAME_COLUMNS",
    "BOOK_VALUE_COLUMNS",
    "MARKET_FRAME_COLUMNS",
    "TIME_DTYPE",
    "books_frame",
    "markets_frame",
    "milliseconds_to_times",
    "times_to_milliseconds",
]

MARKET_FRAME_COLUMNS: Final = (
    "market_id",
    "slug",
    "question",
    "start",
    "end",
    "label_0",
    "label_1",
    "payout_0",
    "payout_1",
    "winner",
)
BOOK_FRAME_COLUMNS: Final = (
    "market_id",
    "slug",
    "outcome_index",
    "timestamp",
    "best_bid",
    "bid_size",
    "best_ask",
    "ask_size",
)
TIME_DTYPE: Final = "datetime64[ms, UTC]"
BOOK_VALUE_COLUMNS: Final = ("best_bid", "bid_size", "best_ask", "ask_size")


def milliseconds_to_times(milliseconds: np.ndarray) -> pd.DatetimeIndex:
    """Integer milliseconds since the epoch as UTC times of millisecond resolution."""
    values = np.asarray(milliseconds, dtype=np.int64).view("datetime64[ms]")
    return pd.DatetimeIndex(values).tz_localize("UTC")


def times_to_milliseconds(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """UTC times as integer milliseconds since the epoch (what the store keeps)."""
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        index = index.tz_localize("UTC")
    return np.asarray(index.tz_convert("UTC").as_unit("ms").asi8, dtype=np.int64)


def _text(values: Sequence[str]) -> pd.Series:
    return pd.Series(list(values), dtype=str)


def markets_frame(
    *,
    market_id: Sequence[str],
    slug: Sequence[str],
    question: Sequence[str],
    bounds_ms: np.ndarray,
    labels: Sequence[tuple[str, str]],
    payouts: np.ndarray,
    winner: Sequence[str | None],
) -> pd.DataFrame:
    """The normalised markets frame (see the module docstring), ordered by slug.

    Args:
        market_id: Each market's id.
        slug: Each market's slug.
        question: Each market's question.
        bounds_ms: Shape (markets, 2): start and end, integer ms since the epoch (UTC).
        labels: Each market's two outcome labels, in index order.
        payouts: Shape (markets, 2), float; NaN where unresolved.
        winner: Each market's winning label, or None.
    """
    payout_pairs = np.asarray(payouts, dtype=np.float64).reshape(-1, 2)
    bounds = np.asarray(bounds_ms, dtype=np.int64).reshape(-1, 2)
    frame = pd.DataFrame(
        {
            "market_id": _text(market_id),
            "slug": _text(slug),
            "question": _text(question),
            "start": pd.Series(milliseconds_to_times(bounds[:, 0])),
            "end": pd.Series(milliseconds_to_times(bounds[:, 1])),
            "label_0": _text([pair[0] for pair in labels]),
            "label_1": _text([pair[1] for pair in labels]),
            "payout_0": payout_pairs[:, 0],
            "payout_1": payout_pairs[:, 1],
            "winner": pd.Series(list(winner), dtype=object),
        },
        columns=list(MARKET_FRAME_COLUMNS),
    )
    order = np.argsort(frame["slug"].to_numpy(dtype=object), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def books_frame(
    *,
    market_id: Sequence[str] | np.ndarray,
    slug: Sequence[str] | np.ndarray,
    outcome_index: np.ndarray,
    timestamp_ms: np.ndarray,
    values: dict[str, np.ndarray],
) -> pd.DataFrame:
    """The normalised books frame (see the module docstring), ordered by (slug, time, outcome).

    Args:
        market_id: Each snapshot's market id.
        slug: Each snapshot's market slug.
        outcome_index: 0 or 1, the outcome whose token the book is of.
        timestamp_ms: Snapshot times, integer ms since the epoch (UTC).
        values: ``best_bid``, ``bid_size``, ``best_ask``, ``ask_size``: float arrays, NaN
            on an empty side.
    """
    slugs = np.asarray(slug, dtype=object)
    stamps = np.asarray(timestamp_ms, dtype=np.int64)
    outcomes = np.asarray(outcome_index, dtype=np.int8)
    slug_ranks = pd.factorize(slugs, sort=True)[0]
    order = np.lexsort((outcomes, stamps, slug_ranks))
    columns: dict[str, object] = {
        "market_id": _text(np.asarray(market_id, dtype=object)[order].tolist()),
        "slug": _text(slugs[order].tolist()),
        "outcome_index": outcomes[order],
        "timestamp": pd.Series(milliseconds_to_times(stamps[order])),
    }
    for name in BOOK_VALUE_COLUMNS:
        columns[name] = np.asarray(values[name], dtype=np.float64)[order]
    return pd.DataFrame(columns, columns=list(BOOK_FRAME_COLUMNS))
