"""The events table: what the bot and the alerts told people, and whether the notice went out.

An event is stored before its notice is sent (so a crash between the two loses no event),
then marked delivered, or given the reason it was not, by the notifier's worker thread.
Alert firings store their event in the same transaction as the alert's new trigger count
(``store.alerts``), through :func:`event_row`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError
from marketbot.store._bot_common import info_from_row, json_object, one_of, refused, text
from marketbot.store.database import Database
from marketbot.store.models import EVENT_SEVERITIES, Event

__all__ = ["EventInfo", "EventRecord", "EventRepository", "event_row"]


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event to store.

    Attributes:
        at: When it happened (UTC; a bar's open time for what a bar decided).
        kind: What happened: ``alert_fired``, ``circuit_breaker_tripped``, ``slippage_high``...
        severity: ``info``, ``warning`` or ``emergency``.
        message: One line for people.
        details: Machine-readable facts (JSON-ready).
        alert_id: The alert that fired, for ``alert_fired``.
    """

    at: datetime
    kind: str
    severity: str
    message: str
    details: Mapping[str, Any] = field(default_factory=dict)
    alert_id: int | None = None


@dataclass(frozen=True, slots=True)
class EventInfo:
    """A stored event and what became of its notice."""

    id: int
    at: datetime
    kind: str
    severity: str
    message: str
    details: dict[str, Any]
    alert_id: int | None
    delivered: bool
    delivery_error: str | None


def event_row(record: EventRecord) -> Event:
    """The row for ``record``, its values checked.

    Raises:
        DataError: an unknown severity, an empty kind or message, details that are not JSON.
    """
    one_of(record.severity, EVENT_SEVERITIES, "event severity")
    return Event(
        at=as_utc(record.at),
        kind=text(record.kind, "event kind", 64),
        severity=record.severity,
        message=text(record.message, "event message", 100_000),
        details=json_object(record.details, "event details"),
        alert_id=record.alert_id,
        delivered=False,
        delivery_error=None,
    )


class EventRepository:
    """Events: record one, list the newest, mark a notice's outcome.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def record(self, record: EventRecord) -> int:
        """Store one event (not delivered yet); return its id.

        Raises:
            DataError: a value the store cannot keep (named), or an unknown alert id.
        """
        row = event_row(record)
        try:
            with self._database.session() as session, session.begin():
                session.add(row)
                session.flush()
                event_id = int(row.id)
        except IntegrityError as exc:
            raise refused(f"event {record.kind}", exc) from exc
        # Durable before its notice is queued: the sender marks its delivery on this row.
        self._database.commit_batch()
        return event_id

    def mark_delivery(self, event_id: int, *, delivered: bool, error: str | None) -> None:
        """Record whether the event's notice reached every notify URL (and what failed).

        Raises:
            DataError: there is no such event.
        """
        with self._database.session() as session, session.begin():
            row = session.get(Event, event_id)
            if row is None:
                raise DataError(f"no event with id {event_id}")
            row.delivered = delivered
            row.delivery_error = error

    def get(self, event_id: int) -> EventInfo:
        """One event by id.

        Raises:
            DataError: there is no such event.
        """
        with self._database.session() as session:
            row = session.get(Event, event_id)
            if row is None:
                raise DataError(f"no event with id {event_id}")
            return info_from_row(EventInfo, row)

    def newest(self, limit: int = 50, *, kind: str | None = None) -> list[EventInfo]:
        """The newest events (by time, then id), newest first; only ``kind`` when given."""
        query = sa.select(Event).order_by(Event.at.desc(), Event.id.desc()).limit(limit)
        if kind is not None:
            query = query.where(Event.kind == kind)
        with self._database.session() as session:
            return [info_from_row(EventInfo, row) for row in session.scalars(query)]
