"""Binary markets with order-book snapshots: importing them whole and loading them fast.

An import writes the markets into ``polymarket_markets`` (payouts as ``outcome_prices``; a
paid market is closed and ``resolved``) and the snapshots into ``polymarket_books``, all in
one transaction: a rejected row leaves the database as it was. Both are upserts, on
``market_id`` and on ``(market_id, outcome_index, timestamp_ms)``, so importing the same files
again changes nothing. Loading gives the normalised frames of
:mod:`marketbot.store.polymarket_book_frames`, one query for each.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from marketbot.core.errors import DataError
from marketbot.store.database import Database
from marketbot.store.models import PolymarketBook, PolymarketMarket, utc_now
from marketbot.store.polymarket_book_frames import (
    BOOK_FRAME_COLUMNS,
    BOOK_VALUE_COLUMNS,
    MARKET_FRAME_COLUMNS,
    books_frame,
    markets_frame,
    times_to_milliseconds,
)
from marketbot.store.upserts import REJECTED_BATCH_ERRORS, upsert_insert

__all__ = ["ImportSummary", "PolymarketBookRepository"]

_BOOKS: Final = cast(sa.Table, PolymarketBook.__table__)
_MARKETS: Final = cast(sa.Table, PolymarketMarket.__table__)
# One executemany() per chunk, as store.upserts does, so no driver call grows unbounded.
_ROWS_PER_CHUNK: Final = 5000
# What an import refreshes of a market stored already; the rest (token ids, condition id,
# volume, collection progress) may have come from Gamma and is kept.
_REFRESHED_MARKET_COLUMNS: Final = (
    "slug",
    "question",
    "outcomes",
    "outcome_prices",
    "start_date",
    "end_date",
    "closed",
    "closed_time",
    "resolution_status",
    "winning_outcome",
    "updated_at",
)
_NANOSECONDS_PER_MILLISECOND: Final = 1_000_000
_IMPORT_HINT: Final = (
    "import them with `marketbot polymarket import-book` (or `import-sample` for the shipped "
    "sample)"
)


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What one import stored.

    Attributes:
        markets: Markets written (new or refreshed).
        winners: How many resolved markets each outcome label won.
        split: Resolved markets that paid both outcomes (e.g. 0.5/0.5).
        unresolved: Markets without payouts.
        snapshots: Book snapshots written (one outcome token at one time each).
        first: Time of the earliest snapshot, None without snapshots.
        last: Time of the latest snapshot, None without snapshots.
    """

    markets: int
    winners: dict[str, int]
    split: int
    unresolved: int
    snapshots: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None

    def line(self) -> str:
        """One line for the CLI: ``stored 18 markets (13 Up, 5 Down) and 38,333 ...``."""
        parts = [f"{count} {label}" for label, count in self.winners.items()]
        if self.split:
            parts.append(f"{self.split} split")
        if self.unresolved:
            parts.append(f"{self.unresolved} unresolved")
        text = f"stored {self.markets} market(s) ({', '.join(parts)}) and {self.snapshots:,} "
        text += "book snapshot(s)"
        if self.first is not None and self.last is not None:
            text += f", {self.first:%Y-%m-%d %H:%M:%S} .. {self.last:%Y-%m-%d %H:%M:%S} UTC"
        return text


def _check_columns(frame: pd.DataFrame, expected: tuple[str, ...], what: str) -> None:
    missing = [name for name in expected if name not in frame.columns]
    if missing:
        raise DataError(f"the {what} frame lacks column(s) {', '.join(missing)}")


def _or_none(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _label_or_none(value: Any) -> str | None:
    """A winner label, or None for None, NaN or an empty text (pandas may give either)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    return str(value)


def _market_rows(markets: pd.DataFrame) -> list[dict[str, Any]]:
    now = utc_now()
    rows = []
    for market in markets.to_dict("records"):
        payouts = (float(market["payout_0"]), float(market["payout_1"]))
        resolved = not any(math.isnan(payout) for payout in payouts)
        end: datetime = pd.Timestamp(market["end"]).to_pydatetime()
        rows.append(
            {
                "market_id": str(market["market_id"]),
                # The derived files carry one id: resolvedkit's is the CTF condition id.
                "condition_id": str(market["market_id"])
                if str(market["market_id"]).startswith("0x")
                else "",
                "slug": str(market["slug"]),
                "question": str(market["question"]),
                "event_slug": None,
                "outcomes": [str(market["label_0"]), str(market["label_1"])],
                "token_ids": ["", ""],  # not in the files; a Gamma collection fills them
                "outcome_prices": list(payouts) if resolved else [],
                "start_date": pd.Timestamp(market["start"]).to_pydatetime(),
                "end_date": end,
                "closed": resolved,
                "closed_time": end if resolved else None,
                "resolution_status": "resolved" if resolved else None,
                "winning_outcome": _label_or_none(market["winner"]),
                "updated_at": now,
            }
        )
    return rows


def _book_rows(books: pd.DataFrame) -> list[dict[str, Any]]:
    stamps = times_to_milliseconds(books["timestamp"]).tolist()
    values = [
        [_or_none(value) for value in books[name].to_numpy(dtype=np.float64).tolist()]
        for name in BOOK_VALUE_COLUMNS
    ]
    return [
        {
            "market_id": market_id,
            "outcome_index": outcome,
            "timestamp_ms": stamp,
            "best_bid": bid,
            "bid_size": bid_size,
            "best_ask": ask,
            "ask_size": ask_size,
        }
        for market_id, outcome, stamp, bid, bid_size, ask, ask_size in zip(
            books["market_id"].astype(str).tolist(),
            books["outcome_index"].astype(int).tolist(),
            stamps,
            *values,
            strict=True,
        )
    ]


def _summary(markets: pd.DataFrame, books: pd.DataFrame) -> ImportSummary:
    paid = markets["payout_0"].notna() & markets["payout_1"].notna()
    tally = Counter(_label_or_none(winner) for winner in markets["winner"])
    # In outcome order (Up before Down), as the files name them.
    labels = dict.fromkeys([*markets["label_0"].astype(str), *markets["label_1"].astype(str)])
    winners = {label: tally[label] for label in labels if tally[label]}
    times = books["timestamp"]
    return ImportSummary(
        markets=len(markets),
        winners=dict(winners),
        split=int(paid.sum()) - sum(winners.values()),
        unresolved=int((~paid).sum()),
        snapshots=len(books),
        first=None if times.empty else pd.Timestamp(times.min()),
        last=None if times.empty else pd.Timestamp(times.max()),
    )


class PolymarketBookRepository:
    """Stores and loads binary markets and the top of their outcome tokens' order books.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def import_frames(self, markets: pd.DataFrame, books: pd.DataFrame) -> ImportSummary:
        """Store the markets and their snapshots, all in one transaction (re-imports upsert).

        Args:
            markets: The normalised markets frame (as ``read_markets_csv`` returns).
            books: The normalised books frame of those markets (``read_books_csv``).

        Raises:
            DataError: a frame lacks a column, a snapshot's market is not in ``markets``, a
                slug is stored already for another market, or the database rejected a row;
                nothing of the import is stored.
        """
        _check_columns(markets, MARKET_FRAME_COLUMNS, "markets")
        _check_columns(books, BOOK_FRAME_COLUMNS, "books")
        known = set(markets["market_id"].astype(str))
        strays = sorted(set(books["market_id"].astype(str)) - known)
        if strays:
            raise DataError(f"books of market(s) not in the markets frame: {', '.join(strays)}")
        market_rows = _market_rows(markets)
        book_rows = _book_rows(books)
        insert = upsert_insert(self._database, "storing Polymarket books")
        market_statement = insert(_MARKETS)
        market_statement = market_statement.on_conflict_do_update(
            index_elements=["market_id"],
            set_={name: market_statement.excluded[name] for name in _REFRESHED_MARKET_COLUMNS},
        )
        book_statement = insert(_BOOKS)
        book_statement = book_statement.on_conflict_do_update(
            index_elements=["market_id", "outcome_index", "timestamp_ms"],
            set_={name: book_statement.excluded[name] for name in BOOK_VALUE_COLUMNS},
        )
        try:
            with self._database.engine.begin() as connection:
                self._refuse_taken_slugs(connection, market_rows)
                for statement, rows in (
                    (market_statement, market_rows),
                    (book_statement, book_rows),
                ):
                    for offset in range(0, len(rows), _ROWS_PER_CHUNK):
                        connection.execute(statement, rows[offset : offset + _ROWS_PER_CHUNK])
        except REJECTED_BATCH_ERRORS as exc:
            raise DataError(
                f"the database rejected the import of {len(market_rows)} market(s) and "
                f"{len(book_rows)} snapshot(s), so none of it was stored: {exc.orig}"
            ) from exc
        return _summary(markets, books)

    @staticmethod
    def _refuse_taken_slugs(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
        """A slug names one market: refuse one stored already under another market id."""
        wanted = {row["slug"]: row["market_id"] for row in rows}
        stored = connection.execute(
            sa.select(_MARKETS.c.slug, _MARKETS.c.market_id).where(
                _MARKETS.c.slug.in_(list(wanted))
            )
        ).all()
        for slug, market_id in stored:
            if market_id != wanted[slug]:
                raise DataError(
                    f"market {slug} is stored already with market_id {market_id}, not "
                    f"{wanted[slug]}; nothing was imported"
                )

    def snapshot_counts(self) -> dict[str, int]:
        """How many book snapshots each stored market has, by market id (none: absent)."""
        query = sa.select(_BOOKS.c.market_id, sa.func.count()).group_by(_BOOKS.c.market_id)
        with self._database.engine.connect() as connection:
            return {str(market_id): int(count) for market_id, count in connection.execute(query)}

    def markets_with_books(self) -> list[str]:
        """The slugs of the stored markets that have book snapshots, in order."""
        query = (
            sa.select(_MARKETS.c.slug)
            .where(sa.exists().where(_BOOKS.c.market_id == _MARKETS.c.market_id))
            .order_by(_MARKETS.c.slug)
        )
        with self._database.engine.connect() as connection:
            return [str(slug) for slug in connection.execute(query).scalars()]

    def load_frames(self, slugs: Sequence[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The normalised markets and books frames of stored markets that have books.

        Args:
            slugs: The markets to load, by slug; None loads every market with books.

        Returns:
            ``(markets, books)`` as :mod:`marketbot.store.polymarket_book_frames` describes.

        Raises:
            DataError: a slug names no stored market with books.
        """
        has_books = sa.exists().where(_BOOKS.c.market_id == _MARKETS.c.market_id)
        market_query = sa.select(
            _MARKETS.c.market_id,
            _MARKETS.c.slug,
            _MARKETS.c.question,
            _MARKETS.c.start_date,
            _MARKETS.c.end_date,
            _MARKETS.c.outcomes,
            _MARKETS.c.outcome_prices,
            _MARKETS.c.winning_outcome,
        ).where(has_books)
        book_query = sa.select(
            _BOOKS.c.market_id,
            _BOOKS.c.outcome_index,
            _BOOKS.c.timestamp_ms,
            *(_BOOKS.c[name] for name in BOOK_VALUE_COLUMNS),
        ).join(_MARKETS, _MARKETS.c.market_id == _BOOKS.c.market_id)
        if slugs is not None:
            wanted = list(dict.fromkeys(slugs))
            market_query = market_query.where(_MARKETS.c.slug.in_(wanted))
            book_query = book_query.where(_MARKETS.c.slug.in_(wanted))
        with self._database.engine.connect() as connection:
            market_rows = connection.execute(market_query).all()
            # Plain DB-API tuples: the columns are ints and floats that need no conversion,
            # and building 38k Row objects would take longer than the query.
            book_rows = connection.execute(book_query).cursor.fetchall()
        if slugs is not None:
            missing = [slug for slug in wanted if slug not in {row[1] for row in market_rows}]
            if missing:
                raise DataError(
                    f"no order books stored for market(s) {', '.join(missing)}; {_IMPORT_HINT}"
                )
        markets = _stored_markets(market_rows)
        return markets, _stored_books(book_rows, markets)


def _milliseconds(moment: datetime | None) -> int:
    if moment is None:
        return int(np.iinfo(np.int64).min)  # NaT
    return int(pd.Timestamp(moment).value // _NANOSECONDS_PER_MILLISECOND)


def _stored_markets(rows: Sequence[Any]) -> pd.DataFrame:
    payouts = np.full((len(rows), 2), np.nan)
    for position, row in enumerate(rows):
        if len(row.outcome_prices) == 2:  # binary markets: two outcomes
            payouts[position] = [float(price) for price in row.outcome_prices]
    return markets_frame(
        market_id=[row.market_id for row in rows],
        slug=[row.slug for row in rows],
        question=[row.question for row in rows],
        bounds_ms=np.array(
            [[_milliseconds(row.start_date), _milliseconds(row.end_date)] for row in rows],
            dtype=np.int64,
        ).reshape(-1, 2),
        labels=[(row.outcomes[0], row.outcomes[1]) for row in rows],
        payouts=payouts,
        winner=[row.winning_outcome for row in rows],
    )


def _stored_books(rows: Sequence[Any], markets: pd.DataFrame) -> pd.DataFrame:
    names = ["market_id", "outcome_index", "timestamp_ms", *BOOK_VALUE_COLUMNS]
    frame = pd.DataFrame.from_records(rows, columns=names, nrows=len(rows))
    market_ids = frame["market_id"].to_numpy(dtype=object)
    slug_of = dict(zip(markets["market_id"], markets["slug"], strict=True))
    return books_frame(
        market_id=market_ids,
        slug=np.array([slug_of[market_id] for market_id in market_ids], dtype=object),
        outcome_index=frame["outcome_index"].to_numpy(dtype=np.int8),
        timestamp_ms=frame["timestamp_ms"].to_numpy(dtype=np.int64),
        values={name: frame[name].to_numpy(dtype=np.float64) for name in BOOK_VALUE_COLUMNS},
    )
