"""Polymarket markets and outcome-token price history: idempotent upserts and loading.

A market row (:class:`~marketbot.store.models.PolymarketMarket`) holds what Gamma says about
it; its price history lives in ``polymarket_history``, one row per (token, second). Writing a
batch of points is one transaction and an upsert on ``(token_id, timestamp)``, so a batch is
stored whole or not at all, and fetching the same range again changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, NamedTuple, cast

import numpy as np
import pandas as pd
import sqlalchemy as sa

from marketbot.core.errors import DataError
from marketbot.core.timeframes import NANOSECONDS_PER_SECOND
from marketbot.core.timestamps import TimeLike, epoch_seconds_to_index, parse_utc
from marketbot.store.database import Database
from marketbot.store.models import PolymarketHistory, PolymarketMarket, UTCDateTime, utc_now
from marketbot.store.upserts import (
    execute_in_one_transaction,
    upsert_insert,
)

__all__ = [
    "PolymarketMarketInfo",
    "PolymarketMarketSummary",
    "PolymarketPricePoint",
    "PolymarketRepository",
    "TrackedPolymarketMarket",
]

_HISTORY: Final = cast(sa.Table, PolymarketHistory.__table__)
_MARKETS: Final = cast(sa.Table, PolymarketMarket.__table__)
# A closed market's final outcome price at or above this settled to that outcome; Gamma
# reports settled prices as "1"/"0" for CLOB markets and 0.99999.../0.0000... for old AMMs.
_SETTLED_PRICE: Final = 0.99
# 9999-12-31 23:59:59 UTC: anything later is a unit mistake (ms or ns) and would overflow.
_LAST_TIMESTAMP: Final = 253_402_300_799


class PolymarketPricePoint(NamedTuple):
    """One price of an outcome token.

    Attributes:
        timestamp: Seconds since the Unix epoch, UTC.
        price: The token's price in USDC, i.e. the market's probability, 0 to 1.
        liquidity: Liquidity in USDC at that moment, when known (the CLOB history has none).
    """

    timestamp: int
    price: float
    liquidity: float | None = None


@dataclass(frozen=True, slots=True)
class PolymarketMarketInfo:
    """What Gamma says about one market.

    Attributes:
        market_id: Gamma's numeric market id, as text (``"516926"``).
        condition_id: The market's CTF condition id (``0x...``).
        slug: The market's URL slug.
        question: The question the market resolves.
        event_slug: Slug of the event the market belongs to, when known.
        outcomes: Outcome names in Gamma's order (``("Yes", "No")``).
        token_ids: CLOB token id of each outcome, same order.
        outcome_prices: Gamma's last price of each outcome (0 to 1); empty when unknown.
        volume: Total traded volume in USDC, when given.
        liquidity: Current liquidity in USDC (a snapshot), when given.
        start_date: When trading started (or the market was created), when given.
        end_date: The scheduled end date, when given.
        closed: Whether the market is closed to trading.
        closed_time: When it closed, when given.
        resolution_status: UMA's resolution status (``resolved``, ``proposed``...), when given.
    """

    market_id: str
    condition_id: str
    slug: str
    question: str
    event_slug: str | None
    outcomes: tuple[str, ...]
    token_ids: tuple[str, ...]
    outcome_prices: tuple[float, ...]
    volume: float | None
    liquidity: float | None
    start_date: datetime | None
    end_date: datetime | None
    closed: bool
    closed_time: datetime | None
    resolution_status: str | None

    def __post_init__(self) -> None:
        if len(self.outcomes) != len(self.token_ids):
            raise DataError(
                f"Polymarket market {self.slug}: {len(self.outcomes)} outcomes but "
                f"{len(self.token_ids)} token ids"
            )
        if self.outcome_prices and len(self.outcome_prices) != len(self.outcomes):
            raise DataError(
                f"Polymarket market {self.slug}: {len(self.outcomes)} outcomes but "
                f"{len(self.outcome_prices)} outcome prices"
            )

    @property
    def tokens(self) -> tuple[tuple[str, str], ...]:
        """``(outcome, token_id)`` pairs in Gamma's order."""
        return tuple(zip(self.outcomes, self.token_ids, strict=True))

    @property
    def history_end(self) -> datetime | None:
        """When trading stopped, for a closed market: its close time, else its end date.

        None for an open market (its history goes on) or a closed one without either date.
        """
        if not self.closed:
            return None
        return self.closed_time if self.closed_time is not None else self.end_date

    @property
    def winning_outcome(self) -> str | None:
        """The outcome a closed market settled to, or None when open or not clear-cut.

        A closed market whose outcome prices are one at (about) 1 and the rest at (about) 0
        settled to that outcome. Scalar (Long/Short) markets that settle in between, and old
        markets whose prices Gamma reports as all zero, have no single winner.
        """
        if not self.closed or not self.outcome_prices:
            return None
        winners = [
            outcome
            for outcome, price in zip(self.outcomes, self.outcome_prices, strict=True)
            if price >= _SETTLED_PRICE
        ]
        others_settled = all(
            price <= 1 - _SETTLED_PRICE
            for outcome, price in zip(self.outcomes, self.outcome_prices, strict=True)
            if outcome not in winners
        )
        return winners[0] if len(winners) == 1 and others_settled else None


@dataclass(frozen=True, slots=True)
class TrackedPolymarketMarket:
    """A stored market and how far its history has been collected.

    Attributes:
        info: What Gamma said at the last collection.
        winning_outcome: The outcome it settled to, when known.
        fidelity_minutes: Resolution of the collected history, in minutes.
        collected_until: End of the last range fetched for every token (UTC).
        updated_at: When the market row was last written.
    """

    info: PolymarketMarketInfo
    winning_outcome: str | None
    fidelity_minutes: int | None
    collected_until: datetime | None
    updated_at: datetime

    @property
    def history_complete(self) -> bool:
        """Whether the market is closed and its history collected up to its close."""
        end = self.info.history_end
        if not self.info.closed or self.collected_until is None:
            return False
        return end is None or self.collected_until >= end


@dataclass(frozen=True, slots=True)
class PolymarketMarketSummary:
    """A stored market with the size and range of its stored history.

    Attributes:
        market: The market.
        points: Number of stored price points over all its tokens.
        first: Time of the earliest stored point, None without points.
        last: Time of the latest stored point, None without points.
    """

    market: TrackedPolymarketMarket
    points: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None


def _seconds_to_timestamp(seconds: int) -> pd.Timestamp:
    return pd.Timestamp(int(seconds) * NANOSECONDS_PER_SECOND, tz="UTC")


class PolymarketRepository:
    """Stores and loads Polymarket markets and their outcome-token price history.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    # -- writing ---------------------------------------------------------------------------

    def upsert_market(self, info: PolymarketMarketInfo) -> None:
        """Insert a market or refresh what Gamma says about it; collection progress is kept.

        Raises:
            DataError: the database rejected the row (e.g. a negative volume).
        """
        values: dict[str, Any] = {
            "market_id": info.market_id,
            "condition_id": info.condition_id,
            "slug": info.slug,
            "question": info.question,
            "event_slug": info.event_slug,
            "outcomes": list(info.outcomes),
            "token_ids": list(info.token_ids),
            "outcome_prices": list(info.outcome_prices),
            "volume": info.volume,
            "liquidity": info.liquidity,
            "start_date": info.start_date,
            "end_date": info.end_date,
            "closed": info.closed,
            "closed_time": info.closed_time,
            "resolution_status": info.resolution_status,
            "winning_outcome": info.winning_outcome,
            "updated_at": utc_now(),
        }
        statement = upsert_insert(self._database, "storing Polymarket data")(_MARKETS)
        refreshed = {name: statement.excluded[name] for name in values if name != "market_id"}
        # An event page may list a market with less detail than the market itself gives.
        refreshed["event_slug"] = sa.func.coalesce(
            statement.excluded.event_slug, _MARKETS.c.event_slug
        )
        statement = statement.on_conflict_do_update(index_elements=["market_id"], set_=refreshed)
        rejected = f"Polymarket market {info.slug}: the database rejected it"
        execute_in_one_transaction(self._database, statement, [values], rejected=rejected)

    def mark_collected(self, market_id: str, until: datetime, fidelity_minutes: int) -> None:
        """Record that every token's history up to ``until`` was fetched at this fidelity.

        The mark only moves forward: collecting an earlier range again does not lower it.
        """
        column = _MARKETS.c.collected_until
        # Typed, so that the value is converted to UTC like every other UTCDateTime.
        mark = sa.literal(until, type_=UTCDateTime())
        with self._database.engine.begin() as connection:
            connection.execute(
                sa.update(_MARKETS)
                .where(_MARKETS.c.market_id == market_id)
                .values(
                    collected_until=sa.case(
                        (sa.or_(column.is_(None), column < mark), mark), else_=column
                    ),
                    fidelity_minutes=fidelity_minutes,
                )
            )

    def upsert_points(
        self,
        market_id: str,
        token_id: str,
        outcome: str,
        points: Sequence[PolymarketPricePoint],
    ) -> int:
        """Insert or overwrite one token's price points, all in one transaction.

        A point whose (token, timestamp) is stored already replaces it, so re-running a
        collection never duplicates rows. If anything is wrong, nothing of the batch is stored.

        Returns:
            The number of points written.

        Raises:
            DataError: a point is not a whole-second time with a price in 0..1 and a
                non-negative (or no) liquidity, or the database rejected the batch.
        """
        where = f"Polymarket token {token_id} ({outcome!r} of market {market_id})"
        rows = [self._row(market_id, token_id, outcome, point, where) for point in points]
        if not rows:
            return 0
        statement = upsert_insert(self._database, "storing Polymarket data")(_HISTORY)
        statement = statement.on_conflict_do_update(
            index_elements=["token_id", "timestamp"],
            set_={
                "market_id": statement.excluded.market_id,
                "outcome": statement.excluded.outcome,
                "price": statement.excluded.price,
                # Re-fetched history has no liquidity; keep one learned some other way.
                "liquidity": sa.func.coalesce(statement.excluded.liquidity, _HISTORY.c.liquidity),
            },
        )
        rejected = (
            f"{where}: the database rejected the batch of {len(rows)} points, so none of them "
            f"was stored"
        )
        return execute_in_one_transaction(self._database, statement, rows, rejected=rejected)

    @staticmethod
    def _row(
        market_id: str, token_id: str, outcome: str, point: PolymarketPricePoint, where: str
    ) -> dict[str, Any]:
        timestamp, price, liquidity = point
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | np.integer):
            raise DataError(f"{where}: timestamp {timestamp!r} is not whole seconds")
        if not 0 <= timestamp <= _LAST_TIMESTAMP:
            raise DataError(f"{where}: timestamp {timestamp} is not seconds since 1970")
        moment = _seconds_to_timestamp(int(timestamp)).isoformat()
        if not (isinstance(price, int | float) and math.isfinite(price) and 0 <= price <= 1):
            raise DataError(f"{where}: the price at {moment} is {price!r}, not within 0..1")
        if liquidity is not None and not (math.isfinite(liquidity) and liquidity >= 0):
            raise DataError(f"{where}: the liquidity at {moment} is {liquidity!r}")
        return {
            "market_id": market_id,
            "token_id": token_id,
            "outcome": outcome,
            "timestamp": int(timestamp),
            "price": float(price),
            "liquidity": None if liquidity is None else float(liquidity),
        }

    # -- reading ---------------------------------------------------------------------------

    def get_market(self, market: str) -> TrackedPolymarketMarket | None:
        """The stored market with this Gamma id or slug, or None."""
        with self._database.engine.connect() as connection:
            row = connection.execute(
                sa.select(_MARKETS)
                .where(sa.or_(_MARKETS.c.market_id == market, _MARKETS.c.slug == market))
                .order_by(_MARKETS.c.market_id != market)  # an id match wins over a slug
                .limit(1)
            ).first()
        return None if row is None else _tracked(row._mapping)

    def list_markets(self) -> list[TrackedPolymarketMarket]:
        """Every stored market, ordered by slug."""
        with self._database.engine.connect() as connection:
            rows = connection.execute(sa.select(_MARKETS).order_by(_MARKETS.c.slug)).all()
        return [_tracked(row._mapping) for row in rows]

    def list_summaries(self) -> list[PolymarketMarketSummary]:
        """Every stored market with its number of points and their time range."""
        history = _HISTORY
        ranges = sa.select(
            history.c.market_id,
            sa.func.count(),
            sa.func.min(history.c.timestamp),
            sa.func.max(history.c.timestamp),
        ).group_by(history.c.market_id)
        with self._database.engine.connect() as connection:
            stats = {row[0]: row[1:] for row in connection.execute(ranges).all()}
        summaries = []
        for market in self.list_markets():
            count, first, last = stats.get(market.info.market_id, (0, None, None))
            summaries.append(
                PolymarketMarketSummary(
                    market=market,
                    points=int(count),
                    first=None if first is None else _seconds_to_timestamp(first),
                    last=None if last is None else _seconds_to_timestamp(last),
                )
            )
        return summaries

    def last_timestamps(self, market_id: str | None = None) -> dict[str, pd.Timestamp]:
        """Time of the newest stored point of each token (of one market, or of all).

        Collectors use it to fetch only what is new.
        """
        query = sa.select(_HISTORY.c.token_id, sa.func.max(_HISTORY.c.timestamp)).group_by(
            _HISTORY.c.token_id
        )
        if market_id is not None:
            query = query.where(_HISTORY.c.market_id == market_id)
        with self._database.engine.connect() as connection:
            rows = connection.execute(query).all()
        return {str(token): _seconds_to_timestamp(newest) for token, newest in rows}

    def load_history(
        self, token_id: str, *, start: TimeLike | None = None, end: TimeLike | None = None
    ) -> pd.DataFrame:
        """One token's stored history, oldest first.

        Args:
            token_id: The CLOB token id.
            start: First time to include (inclusive, UTC; naive means UTC).
            end: Last time to include (inclusive).

        Returns:
            A frame with a UTC DatetimeIndex named ``timestamp`` and float64 columns
            ``price`` and ``liquidity`` (NaN where unknown); empty when nothing is stored.
        """
        query = (
            sa.select(_HISTORY.c.timestamp, _HISTORY.c.price, _HISTORY.c.liquidity)
            .where(_HISTORY.c.token_id == token_id)
            .order_by(_HISTORY.c.timestamp)
        )
        if start is not None:
            query = query.where(
                _HISTORY.c.timestamp
                >= -(-parse_utc(start, "start").value // NANOSECONDS_PER_SECOND)
            )
        if end is not None:
            query = query.where(
                _HISTORY.c.timestamp <= parse_utc(end, "end").value // NANOSECONDS_PER_SECOND
            )
        with self._database.engine.connect() as connection:
            rows = connection.execute(query).all()
        stamps = np.array([row[0] for row in rows], dtype=np.int64)
        return pd.DataFrame(
            {
                "price": np.array([row[1] for row in rows], dtype=np.float64),
                "liquidity": np.array(
                    [np.nan if row[2] is None else row[2] for row in rows], dtype=np.float64
                ),
            },
            index=epoch_seconds_to_index(stamps),
        )

    def load_market_prices(self, market: str) -> pd.DataFrame:
        """Every outcome's price of one market side by side, one column per outcome.

        Args:
            market: The market's Gamma id or slug.

        Returns:
            A frame with a UTC DatetimeIndex and one float64 column per outcome (Gamma's
            order), NaN where an outcome has no point at that time.

        Raises:
            DataError: the market is not stored.
        """
        tracked = self.get_market(market)
        if tracked is None:
            raise DataError(f"no Polymarket market {market!r} is stored; collect it first")
        columns = {
            outcome: self.load_history(token_id)["price"]
            for outcome, token_id in tracked.info.tokens
        }
        frame = pd.DataFrame(columns)
        frame.index.name = "timestamp"
        return frame.sort_index()


def _tracked(row: Any) -> TrackedPolymarketMarket:
    info = PolymarketMarketInfo(
        market_id=row["market_id"],
        condition_id=row["condition_id"],
        slug=row["slug"],
        question=row["question"],
        event_slug=row["event_slug"],
        outcomes=tuple(row["outcomes"]),
        token_ids=tuple(row["token_ids"]),
        outcome_prices=tuple(float(price) for price in row["outcome_prices"]),
        volume=row["volume"],
        liquidity=row["liquidity"],
        start_date=row["start_date"],
        end_date=row["end_date"],
        closed=bool(row["closed"]),
        closed_time=row["closed_time"],
        resolution_status=row["resolution_status"],
    )
    return TrackedPolymarketMarket(
        info=info,
        winning_outcome=row["winning_outcome"],
        fidelity_minutes=row["fidelity_minutes"],
        collected_until=row["collected_until"],
        updated_at=row["updated_at"],
    )
