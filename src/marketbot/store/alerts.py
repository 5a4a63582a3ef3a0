"""Stored alerts: their conditions, their armed state, and their firings with the events.

A firing's new trigger count, its time and its ``events`` row are written in one transaction
(:meth:`AlertRepository.save_evaluations`), so an alert never counts a firing that has no
event, nor an event that did not count; the notice goes after the commit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from marketbot.core.clock import as_utc
from marketbot.core.errors import ConfigError, DataError
from marketbot.store._bot_common import info_from_row, one_of, refused, text
from marketbot.store.database import Database
from marketbot.store.events import EventRecord, event_row
from marketbot.store.models import ALERT_KINDS, ALERT_OPERATORS, Alert, utc_now

__all__ = ["AlertEvaluation", "AlertFiringRecord", "AlertInfo", "AlertRepository", "AlertSpec"]

DEFAULT_COOLDOWN_SECONDS = 3600


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """A new alert: ``metric`` of ``subject`` compared by ``operator`` with ``threshold``.

    Attributes:
        name: What people call it (in the notice's title).
        kind: ``price``, ``strategy`` or ``portfolio``.
        subject: The symbol (price), the strategy's name (strategy), None (portfolio).
        metric: ``close``, ``pnl_usd``, ``total_value``...
        operator: ``>``, ``>=``, ``<`` or ``<=``.
        threshold: The value compared with.
        unit: The threshold's unit (``price``, ``pct``, ``usd``, ``fraction``, ``count``...).
        cooldown_seconds: Least time between two firings.
        timeframe: Evaluate on bars of this timeframe only (None: any).
    """

    name: str
    kind: str
    subject: str | None
    metric: str
    operator: str
    threshold: float
    unit: str | None = None
    cooldown_seconds: int = DEFAULT_COOLDOWN_SECONDS
    timeframe: str | None = None


@dataclass(frozen=True, slots=True)
class AlertInfo:
    """A stored alert and its state."""

    id: int
    name: str
    kind: str
    subject: str | None
    metric: str
    operator: str
    threshold: float
    unit: str | None
    cooldown_seconds: int
    timeframe: str | None
    enabled: bool
    armed: bool
    trigger_count: int
    last_triggered: datetime | None
    last_value: float | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AlertEvaluation:
    """An alert's state after one evaluation that did not fire it.

    ``seen_last_triggered`` is the last firing the evaluation started from: when another
    process (the bot, ``alerts watch``) fired the alert since, this evaluation is stale and
    is not stored.
    """

    alert_id: int
    armed: bool
    last_value: float | None
    seen_last_triggered: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertFiringRecord:
    """One firing: the alert, its time (its bar's open time), the value, and its event.

    ``seen_last_triggered`` is the last firing the evaluation started from; the firing is
    stored only if the alert is still armed with that last firing (so two processes
    evaluating the same alert fire it once).
    """

    alert_id: int
    at: datetime
    value: float
    event: EventRecord
    seen_last_triggered: datetime | None = None


class AlertRepository:
    """Alerts: add, list, enable, disable, delete, and the state each evaluation leaves.

    Args:
        database: The database to use (migrated to the current schema).
    """

    def __init__(self, database: Database) -> None:
        self._database = database

    def add(self, spec: AlertSpec) -> AlertInfo:
        """Store a new alert (enabled and armed); return it.

        Raises:
            ConfigError: an unknown kind or operator, a non-finite threshold, a negative
                cooldown, an empty or too long name.
        """
        try:
            one_of(spec.kind, ALERT_KINDS, "alert kind")
            one_of(spec.operator, ALERT_OPERATORS, "alert operator")
            text(spec.name, "alert name", 200)
            text(spec.metric, "alert metric", 64)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        if not math.isfinite(spec.threshold):
            raise ConfigError(f"alert threshold {spec.threshold!r}: must be a finite number")
        if spec.cooldown_seconds < 0:
            raise ConfigError(f"alert cooldown {spec.cooldown_seconds} s: must be 0 or more")
        row = Alert(
            name=spec.name, kind=spec.kind, subject=spec.subject, metric=spec.metric,
            operator=spec.operator, threshold=float(spec.threshold), unit=spec.unit,
            cooldown_seconds=int(spec.cooldown_seconds), timeframe=spec.timeframe,
            enabled=True, armed=True, trigger_count=0, created_at=utc_now(),
        )  # fmt: skip
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return info_from_row(AlertInfo, row)

    def all(self) -> list[AlertInfo]:
        """Every alert, by id."""
        with self._database.session() as session:
            rows = session.scalars(sa.select(Alert).order_by(Alert.id))
            return [info_from_row(AlertInfo, row) for row in rows]

    def enabled(self) -> list[AlertInfo]:
        """The enabled alerts, by id."""
        query = sa.select(Alert).where(Alert.enabled.is_(True)).order_by(Alert.id)
        with self._database.session() as session:
            return [info_from_row(AlertInfo, row) for row in session.scalars(query)]

    def get(self, alert_id: int) -> AlertInfo:
        """One alert by id.

        Raises:
            ConfigError: there is no such alert (the message lists the stored ids).
        """
        with self._database.session() as session:
            return info_from_row(AlertInfo, self._row(session, alert_id))

    def set_enabled(self, alert_id: int, enabled: bool) -> AlertInfo:
        """Enable or disable an alert; enabling re-arms it.

        Raises:
            ConfigError: there is no such alert.
        """
        with self._database.session() as session, session.begin():
            row = self._row(session, alert_id)
            row.enabled = enabled
            if enabled:
                row.armed = True
            return info_from_row(AlertInfo, row)

    def delete(self, alert_id: int) -> AlertInfo:
        """Delete an alert (its events stay, unlinked); return what it was.

        Raises:
            ConfigError: there is no such alert.
        """
        with self._database.session() as session, session.begin():
            row = self._row(session, alert_id)
            info = info_from_row(AlertInfo, row)
            session.delete(row)
            return info

    def save_evaluations(
        self, evaluations: Sequence[AlertEvaluation], firings: Sequence[AlertFiringRecord]
    ) -> dict[int, int]:
        """Store one evaluation's outcome in one transaction; return ``{alert id: event id}``.

        A firing adds one to ``trigger_count``, sets ``last_triggered`` to its time, disarms
        the alert and stores its event; the other alerts keep their new armed state and value.
        Each change is a conditional update: an alert deleted, or fired by another process,
        since it was read is left alone (its firing stores no event and is not returned).

        Raises:
            DataError: an event the store cannot keep; nothing is stored then.
        """
        try:
            with self._database.session() as session, session.begin():
                for evaluation in evaluations:
                    session.execute(
                        sa.update(Alert)
                        .where(_unchanged(evaluation.alert_id, evaluation.seen_last_triggered))
                        .values(armed=evaluation.armed, last_value=evaluation.last_value)
                    )
                events = {}
                for firing in firings:
                    fired = session.execute(
                        sa.update(Alert)
                        .where(
                            _unchanged(firing.alert_id, firing.seen_last_triggered),
                            Alert.armed.is_(True),
                        )
                        .values(
                            trigger_count=Alert.trigger_count + 1,
                            last_triggered=as_utc(firing.at),
                            armed=False,
                            last_value=firing.value,
                        )
                    )
                    if fired.rowcount != 1:  # type: ignore[attr-defined]  # a CursorResult
                        continue
                    event = event_row(firing.event)
                    session.add(event)
                    events[firing.alert_id] = event
                session.flush()
                ids = {alert_id: int(event.id) for alert_id, event in events.items()}
        except IntegrityError as exc:
            raise refused("alert evaluation", exc) from exc
        # A firing is durable before its notice goes, inside the bot's batch too.
        self._database.commit_batch()
        return ids

    @staticmethod
    def _row(session: Session, alert_id: int) -> Alert:
        row = session.get(Alert, alert_id)
        if row is None:
            ids = session.scalars(sa.select(Alert.id).order_by(Alert.id)).all()
            listed = ", ".join(str(i) for i in ids) if ids else "none (add one with alerts add)"
            raise ConfigError(f"no alert with id {alert_id}; stored alert ids: {listed}")
        return row


def _unchanged(alert_id: int, seen_last_triggered: datetime | None) -> sa.ColumnElement[bool]:
    """The alert, if its last firing is still the one the evaluation saw."""
    last = (
        Alert.last_triggered.is_(None)
        if seen_last_triggered is None
        else Alert.last_triggered == as_utc(seen_last_triggered)
    )
    return sa.and_(Alert.id == alert_id, last)
