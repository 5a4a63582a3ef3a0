"""The trade journal: notes before and after a trade, searchable, with drafts from the bot.

An entry may link a trade: ``trade:{id}`` (a closed bot trade) or ``run:{run_id}:{n}`` (the
n-th trade of a saved backtest, from 1). :func:`draft_journal_entry` is what the bot calls for
each closed trade: a draft whose entry reason is the trade's entry tag, made once per trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError
from marketbot.store.database import Database
from marketbot.store.models import TradeJournal, utc_now

SEARCHED_COLUMNS = ("symbol", "strategy", "trade_ref", "entry_reason", "exit_reason", "lessons")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal entry as stored."""

    id: int
    trade_ref: str | None
    symbol: str
    strategy: str | None
    entry_reason: str | None
    confidence: int | None
    exit_reason: str | None
    lessons: str | None
    rating: int | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The entry for the API."""
        return {
            "id": self.id,
            "trade_ref": self.trade_ref,
            "symbol": self.symbol,
            "strategy": self.strategy,
            "entry_reason": self.entry_reason,
            "confidence": self.confidence,
            "exit_reason": self.exit_reason,
            "lessons": self.lessons,
            "rating": self.rating,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class JournalFilter:
    """What a journal list shows: a search text and filters (each None: any)."""

    search: str | None = None
    strategy: str | None = None
    symbol: str | None = None
    rating: int | None = None
    start: date | None = None
    end: date | None = None


EDITABLE = (
    "trade_ref", "symbol", "strategy", "entry_reason", "confidence", "exit_reason", "lessons",
    "rating",
)  # fmt: skip


def _entry(row: TradeJournal) -> JournalEntry:
    return JournalEntry(
        id=row.id,
        trade_ref=row.trade_ref,
        symbol=row.symbol,
        strategy=row.strategy,
        entry_reason=row.entry_reason,
        confidence=row.confidence,
        exit_reason=row.exit_reason,
        lessons=row.lessons,
        rating=row.rating,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _check(values: dict[str, Any]) -> None:
    confidence, rating = values.get("confidence"), values.get("rating")
    if confidence is not None and not 1 <= confidence <= 10:
        raise DataError("confidence must be 1 to 10")
    if rating is not None and not 1 <= rating <= 5:
        raise DataError("rating must be 1 to 5 stars")
    if not str(values.get("symbol") or "").strip():
        raise DataError("symbol must not be empty")


class JournalRepository:
    """Journal entries: list with search and filters, save, delete.

    Args:
        database: A database migrated to the current schema.
        clock: Returns the current time; tests pass a fixed one.
    """

    def __init__(self, database: Database, *, clock: Any = utc_now) -> None:
        self._database = database
        self._clock = clock

    def list_entries(
        self, where: JournalFilter, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[JournalEntry], int]:
        """Matching entries, newest first, and how many match."""
        query = sa.select(TradeJournal)
        if where.search:
            pattern = _like(where.search)
            query = query.where(
                sa.or_(
                    *(
                        getattr(TradeJournal, column).ilike(pattern, escape="\\")
                        for column in SEARCHED_COLUMNS
                    )
                )
            )
        if where.strategy:
            query = query.where(TradeJournal.strategy == where.strategy)
        if where.symbol:
            query = query.where(TradeJournal.symbol == where.symbol)
        if where.rating is not None:
            query = query.where(TradeJournal.rating == where.rating)
        if where.start is not None:
            query = query.where(TradeJournal.created_at >= datetime.combine(where.start, time()))
        if where.end is not None:
            end = datetime.combine(where.end + timedelta(days=1), time())
            query = query.where(TradeJournal.created_at < end)
        with self._database.session() as session:
            total = int(
                session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
            )
            rows = session.scalars(
                query.order_by(TradeJournal.created_at.desc(), TradeJournal.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            return [_entry(row) for row in rows], total

    def get(self, entry_id: int) -> JournalEntry:
        """One entry.

        Raises:
            DataError: there is no such entry.
        """
        with self._database.session() as session:
            row = session.get(TradeJournal, entry_id)
            if row is None:
                raise DataError(f"no journal entry with id {entry_id}")
            return _entry(row)

    def save(self, entry_id: int | None, values: dict[str, Any]) -> JournalEntry:
        """Create an entry (``entry_id`` None) or replace an entry's editable fields.

        Raises:
            DataError: no entry with that id, or a value out of range; nothing is changed.
        """
        fields = {key: values.get(key) for key in EDITABLE}
        _check(fields)
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            if entry_id is None:
                row = TradeJournal(**fields, created_at=now, updated_at=now)
                session.add(row)
            else:
                found = session.get(TradeJournal, entry_id)
                if found is None:
                    raise DataError(f"no journal entry with id {entry_id}")
                row = found
                for key, value in fields.items():
                    setattr(row, key, value)
                row.updated_at = now
            session.flush()
            return _entry(row)

    def delete(self, entry_id: int) -> bool:
        """Delete an entry; returns whether it existed."""
        with self._database.session() as session, session.begin():
            deleted = session.execute(sa.delete(TradeJournal).where(TradeJournal.id == entry_id))
            return int(getattr(deleted, "rowcount", 0)) > 0


def draft_journal_entry(
    database: Database,
    *,
    trade_id: int,
    symbol: str,
    strategy: str | None,
    entry_tag: str | None,
    clock: Any = utc_now,
) -> int:
    """The journal draft of a closed bot trade: entry reason = its entry tag; made once.

    The bot calls this when it records a closed trade. A second call for the same trade
    returns the existing entry's id and changes nothing.

    Returns:
        The entry's id.
    """
    reference = f"trade:{trade_id}"
    now = as_utc(clock())
    with database.session() as session, session.begin():
        existing = session.scalar(
            sa.select(TradeJournal.id).where(TradeJournal.trade_ref == reference).limit(1)
        )
        if existing is not None:
            return int(existing)
        row = TradeJournal(
            trade_ref=reference,
            symbol=symbol[:100],
            strategy=None if strategy is None else strategy[:100],
            entry_reason=entry_tag,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id
