"""Binary markets as a backtest sees them: each market's events and both outcomes' books.

The one entry point is :meth:`BinaryMarkets.from_frames` (markets and book snapshots as the
data layer reads them); ``from_csv`` and ``from_store`` call it. The rules (issue 13):

- A market's events are its distinct snapshot times (either token) before its ``end``.
- A token's book at an event is its latest snapshot at or before that event.
- A quote is valid with an ask and either no bid or a bid below the ask; a crossed or
  locked book is valid for neither side. A mid needs both sides of a valid quote.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import pandas as pd

from marketbot.core.errors import DataError
from marketbot.strategies.binary import OUTCOMES

if TYPE_CHECKING:
    from marketbot.store.database import Database

_SIDE_COLUMNS: Final = ("best_bid", "bid_size", "best_ask", "ask_size")
_BOOK_NAMES: Final = ("bid", "bid_size", "ask", "ask_size")


@dataclass(frozen=True)
class BinaryMarket:
    """One binary market and its events.

    Attributes:
        slug: The market's slug (the ``symbol`` of its trades).
        market_id: The market's id.
        question: The market's question.
        labels: The two outcomes' names, in index order (e.g. ``("Up", "Down")``).
        start: When the market opened (UTC).
        end: When it closed; legs still held settle here (UTC).
        payouts: What one share of each outcome paid, or None while unresolved.
        book: The events (UTC index) with ``bid_k``, ``bid_size_k``, ``ask_k``,
            ``ask_size_k``, ``mid_k`` and ``valid_k`` for k = 0, 1; ``attrs`` holds slug,
            labels, start and end.
    """

    slug: str
    market_id: str
    question: str
    labels: tuple[str, str]
    start: pd.Timestamp
    end: pd.Timestamp
    payouts: tuple[float, float] | None
    book: pd.DataFrame

    @cached_property
    def times_ns(self) -> np.ndarray:
        """The events as int64 UTC nanoseconds."""
        return np.asarray(pd.DatetimeIndex(self.book.index).as_unit("ns").asi8, dtype=np.int64)

    @cached_property
    def last_mid(self) -> np.ndarray:
        """Each token's last valid mid at or before each event (NaN before its first), (n x 2)."""
        mid = self.column("mid")
        latest = np.where(~np.isnan(mid), np.arange(len(mid))[:, None], -1)
        np.maximum.accumulate(latest, axis=0, out=latest)
        found = np.take_along_axis(mid, np.maximum(latest, 0), axis=0)
        return np.where(latest >= 0, found, np.nan)

    @property
    def end_ns(self) -> int:
        """The end as UTC nanoseconds."""
        return int(self.end.value)

    def column(self, name: str) -> np.ndarray:
        """Both outcomes' ``name`` (bid, bid_size, ask, ask_size, mid, valid) as (events x 2)."""
        return self._columns[name]

    @cached_property
    def _columns(self) -> dict[str, np.ndarray]:
        # Built once per market: every run (and every combination of an optimisation) reads
        # them, and a frame's column access copies its attrs each time.
        return {
            name: np.column_stack([self.book[f"{name}_{k}"].to_numpy() for k in range(OUTCOMES)])
            for name in (*_BOOK_NAMES, "mid", "valid")
        }


class BinaryMarkets(Mapping[str, BinaryMarket]):
    """Binary markets by slug, in slug order: what a binary backtest runs on.

    Build it with :meth:`from_frames`, :meth:`from_csv` (stores nothing) or
    :meth:`from_store`; :meth:`select` picks some of them.
    """

    def __init__(self, markets: Iterable[BinaryMarket]) -> None:
        self._markets = {market.slug: market for market in sorted(markets, key=_slug)}

    def __getitem__(self, slug: str) -> BinaryMarket:
        return self._markets[slug]

    def __iter__(self) -> Iterator[str]:
        return iter(self._markets)

    def __len__(self) -> int:
        return len(self._markets)

    def __repr__(self) -> str:
        return f"BinaryMarkets({len(self)} markets)"

    @property
    def slugs(self) -> tuple[str, ...]:
        """The markets' slugs, in order."""
        return tuple(self._markets)

    @property
    def snapshot_count(self) -> int:
        """How many events the markets have together."""
        return sum(len(market.book) for market in self._markets.values())

    def select(self, slugs: Iterable[str]) -> BinaryMarkets:
        """The markets named, in slug order.

        Raises:
            DataError: a slug that is not among these markets.
        """
        chosen = list(dict.fromkeys(slugs))
        if not chosen:
            raise DataError("no market named: give at least one market slug")
        for slug in chosen:
            if slug not in self._markets:
                known = ", ".join(self._markets) or "none"
                raise DataError(f"market {slug!r}: no such market with books (markets: {known})")
        return BinaryMarkets(self._markets[slug] for slug in chosen)

    def describe(self) -> str:
        """``18 markets`` or ``market SLUG``: how messages name the data."""
        if len(self) == 1:
            return f"market {self.slugs[0]}"
        return f"{len(self)} markets"

    @classmethod
    def from_frames(cls, markets: pd.DataFrame, books: pd.DataFrame) -> BinaryMarkets:
        """Markets and their book snapshots, as ``polymarket_book_csv`` and the store give them.

        Args:
            markets: One row per market: market_id, slug, question, start, end, label_0,
                label_1, payout_0, payout_1 (NaN when unresolved).
            books: Snapshots: slug, outcome_index (0/1), timestamp (UTC), best_bid, bid_size,
                best_ask, ask_size (NaN: an empty side).

        Markets without a snapshot before their end are left out.

        Raises:
            DataError: a column is missing.
        """
        _require(markets, ("market_id", "slug", "start", "end", "label_0", "label_1"), "markets")
        _require(books, ("slug", "outcome_index", "timestamp", *_SIDE_COLUMNS), "books")
        grouped = dict(tuple(books.groupby("slug", sort=False)))
        built = []
        for record in markets.to_dict("records"):
            row = {str(key): value for key, value in record.items()}
            slug = str(row["slug"])
            snapshots = grouped.get(slug)
            if snapshots is None:
                continue
            market = _market(row, snapshots)
            if len(market.book):
                built.append(market)
        return cls(built)

    @classmethod
    def from_csv(cls, markets_csv: str | Path, books_csv: str | Path) -> BinaryMarkets:
        """Markets and books from the derived CSV files (plain or .gz); stores nothing.

        Raises:
            DataError: a file is missing or has a bad row (one line naming file and line).
        """
        from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv

        markets = read_markets_csv(Path(markets_csv))
        return cls.from_frames(markets, read_books_csv(Path(books_csv), markets))

    @classmethod
    def from_store(cls, database: Database, slugs: Iterable[str] | None = None) -> BinaryMarkets:
        """Stored markets with books: all of them, or those of ``slugs``.

        Raises:
            DataError: no stored market has books, or a slug has none.
        """
        from marketbot.store.polymarket_books import PolymarketBookRepository

        wanted = None if slugs is None else list(dict.fromkeys(slugs))
        markets, books = PolymarketBookRepository(database).load_frames(slugs=wanted)
        found = cls.from_frames(markets, books)
        if wanted is not None:
            return found.select(wanted)
        if not len(found):
            raise DataError(
                "no stored market has book snapshots: import some with "
                "`marketbot polymarket import-book` or `import-sample`"
            )
        return found


def _slug(market: BinaryMarket) -> str:
    return market.slug


def _require(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise DataError(f"{name} frame: missing column(s) {', '.join(missing)}")


def _utc(value: object) -> pd.Timestamp:
    stamp = pd.Timestamp(value)  # type: ignore[arg-type]  # any time-like value
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _payouts(row: Mapping[str, object]) -> tuple[float, float] | None:
    values = [row.get(f"payout_{k}") for k in range(OUTCOMES)]
    if any(value is None or pd.isna(value) for value in values):  # type: ignore[call-overload]
        return None
    return (float(values[0]), float(values[1]))  # type: ignore[arg-type]


def _market(row: Mapping[str, object], snapshots: pd.DataFrame) -> BinaryMarket:
    slug = str(row["slug"])
    start, end = _utc(row["start"]), _utc(row["end"])
    labels = (str(row["label_0"]), str(row["label_1"]))
    times = _utc_ns(snapshots["timestamp"])
    end_ns = int(end.value)
    events = np.unique(times[times < end_ns])
    outcome = snapshots["outcome_index"].to_numpy().astype(np.int64)
    columns: dict[str, np.ndarray] = {}
    for k in range(OUTCOMES):
        mine = outcome == k
        own_times = times[mine]
        order = np.argsort(own_times, kind="stable")
        own_times = own_times[order]
        # The token's latest snapshot at or before each event (-1: none yet).
        latest = np.searchsorted(own_times, events, side="right") - 1
        for source, name in zip(_SIDE_COLUMNS, _BOOK_NAMES, strict=True):
            values = snapshots[source].to_numpy(dtype=np.float64)[mine][order]
            if not len(values):  # a token never quoted: no side, ever
                values, latest = np.full(1, np.nan), np.zeros_like(latest)
            columns[f"{name}_{k}"] = np.where(latest >= 0, values[np.maximum(latest, 0)], np.nan)
        bid, ask = columns[f"bid_{k}"], columns[f"ask_{k}"]
        valid = ~np.isnan(ask) & (np.isnan(bid) | (bid < ask))
        columns[f"mid_{k}"] = np.where(valid & ~np.isnan(bid), (bid + ask) / 2.0, np.nan)
        columns[f"valid_{k}"] = valid
    order_names = [f"{name}_{k}" for k in range(OUTCOMES) for name in (*_BOOK_NAMES, "mid")]
    order_names += [f"valid_{k}" for k in range(OUTCOMES)]
    index = pd.DatetimeIndex(pd.to_datetime(events, utc=True), name="timestamp")
    book = pd.DataFrame({name: columns[name] for name in order_names}, index=index)
    book.attrs = {"slug": slug, "labels": labels, "start": start, "end": end}
    return BinaryMarket(
        slug=slug,
        market_id=str(row["market_id"]),
        question=str(row.get("question") or ""),
        labels=labels,
        start=start,
        end=end,
        payouts=_payouts(row),
        book=book,
    )


def _utc_ns(values: pd.Series) -> np.ndarray:
    stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
    return np.asarray(stamps.asi8, dtype=np.int64)
