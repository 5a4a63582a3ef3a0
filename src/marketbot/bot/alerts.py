"""The alert manager: evaluates every enabled alert on a snapshot, fires, stores, notifies.

Pinned semantics (docs/alerts.md): an alert starts armed. At each evaluation a false
condition re-arms it; a true one fires it when it is armed and has never fired or its
cooldown has passed since the last firing, and firing disarms it; otherwise nothing happens
(so a crossing inside the cooldown fires at the first evaluation after it that is still
true). Time is the snapshot's (a bar's open time in a replay): a price firing is stamped
with its bar's open time. A firing's trigger count, time and ``events`` row are committed
together, then the notice goes. A value the snapshot does not know changes nothing.

The bot's loop, ``alerts watch`` and ``alerts test`` all call :meth:`AlertManager.evaluate`;
``alerts test`` passes a :class:`MemoryAlertBook` and no notifier, so nothing is stored or
sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from marketbot.bot.alert_expressions import METRICS, AlertCondition
from marketbot.bot.alert_snapshot import AlertSnapshot, reading_for
from marketbot.bot.notify import EventNotifier
from marketbot.store.alerts import AlertEvaluation, AlertFiringRecord, AlertInfo
from marketbot.store.events import EventRecord


@dataclass(frozen=True, slots=True)
class AlertStep:
    """What one evaluation does to an alert: fire it or not, and whether it stays armed."""

    fires: bool
    armed: bool


def step_alert(
    *,
    condition_true: bool,
    armed: bool,
    last_triggered: datetime | None,
    cooldown_seconds: int,
    at: datetime,
) -> AlertStep:
    """One evaluation of the pinned rule (the module docstring)."""
    if not condition_true:
        return AlertStep(fires=False, armed=True)
    cooled = last_triggered is None or at - last_triggered >= timedelta(seconds=cooldown_seconds)
    if armed and cooled:
        return AlertStep(fires=True, armed=False)
    return AlertStep(fires=False, armed=armed)


def condition_of(alert: AlertInfo) -> AlertCondition:
    """A stored alert's condition."""
    unit = alert.unit or METRICS.get(alert.kind, {}).get(alert.metric, "")
    return AlertCondition(
        alert.kind, alert.subject, alert.metric, alert.operator, alert.threshold, unit
    )


@dataclass(frozen=True, slots=True)
class AlertFiring:
    """One firing: which alert, when (its bar's open time), on what value, and its event."""

    alert_id: int
    name: str
    condition: str
    at: datetime
    value: float
    event_id: int | None = None

    @property
    def message(self) -> str:
        """The notice's text."""
        value = f"{self.value:,.2f}" if abs(self.value) >= 1 else f"{self.value:.6g}"
        return f"{self.condition} (value {value} at {self.at:%Y-%m-%d %H:%M} UTC)"


class AlertBook(Protocol):
    """Where alerts come from and their evaluations go (the database, or memory)."""

    def enabled(self) -> list[AlertInfo]:
        """The alerts to evaluate."""
        ...

    def save_evaluations(
        self, evaluations: Sequence[AlertEvaluation], firings: Sequence[AlertFiringRecord]
    ) -> Mapping[int, int | None]:
        """Keep one evaluation's outcome (all or nothing); the firings kept.

        Returns:
            ``{alert id: event id}`` of the firings stored (None where no event is kept).
        """
        ...


class MemoryAlertBook:
    """Alerts held in memory: ``alerts test`` evaluates a copy; nothing is stored."""

    def __init__(self, alerts: Iterable[AlertInfo]) -> None:
        self.alerts = {alert.id: alert for alert in alerts}

    def enabled(self) -> list[AlertInfo]:
        """Every alert held (a tested alert is evaluated even when disabled)."""
        return list(self.alerts.values())

    def save_evaluations(
        self, evaluations: Sequence[AlertEvaluation], firings: Sequence[AlertFiringRecord]
    ) -> Mapping[int, int | None]:
        """Update the copies; every firing is kept, with no event."""
        for evaluation in evaluations:
            alert = self.alerts[evaluation.alert_id]
            self.alerts[alert.id] = dataclasses.replace(
                alert, armed=evaluation.armed, last_value=evaluation.last_value
            )
        for firing in firings:
            alert = self.alerts[firing.alert_id]
            self.alerts[alert.id] = dataclasses.replace(
                alert, armed=False, last_value=firing.value, last_triggered=firing.at,
                trigger_count=alert.trigger_count + 1,
            )  # fmt: skip
        return {firing.alert_id: None for firing in firings}


class AlertManager:
    """Evaluates alerts on snapshots.

    Args:
        book: The alerts and where their state goes (``AlertRepository`` for the database).
        notifier: Where firings are announced (None: nowhere, as in ``alerts test``).
    """

    def __init__(self, book: AlertBook, notifier: EventNotifier | None = None) -> None:
        self.book = book
        self.notifier = notifier

    def evaluate(self, snapshot: AlertSnapshot) -> list[AlertFiring]:
        """Evaluate every enabled alert once; store the outcome, then notify the firings."""
        evaluations: list[AlertEvaluation] = []
        records: list[AlertFiringRecord] = []
        firings: list[AlertFiring] = []
        for alert in self.book.enabled():
            condition = condition_of(alert)
            reading = reading_for(snapshot, condition, alert.timeframe)
            if reading is None:
                continue
            step = step_alert(
                condition_true=condition.holds(reading.value), armed=alert.armed,
                last_triggered=alert.last_triggered, cooldown_seconds=alert.cooldown_seconds,
                at=reading.at,
            )  # fmt: skip
            if step.fires:
                firing = AlertFiring(
                    alert.id, alert.name, condition.describe(), reading.at, reading.value
                )
                firings.append(firing)
                records.append(_firing_record(alert, firing))
            elif step.armed != alert.armed or reading.value != alert.last_value:
                evaluations.append(
                    AlertEvaluation(alert.id, step.armed, reading.value, alert.last_triggered)
                )
        if not evaluations and not records:
            return []
        stored = self.book.save_evaluations(evaluations, records)
        # A firing another process got to first (the bot and alerts watch) is not repeated.
        firings = [
            dataclasses.replace(f, event_id=stored[f.alert_id])
            for f in firings
            if f.alert_id in stored
        ]
        if self.notifier is not None:
            for firing in firings:
                self.notifier.notify(
                    f"alert {firing.name}", firing.message, kind="alert_fired",
                    event_id=firing.event_id,
                )  # fmt: skip
        return firings


def _firing_record(alert: AlertInfo, firing: AlertFiring) -> AlertFiringRecord:
    event = EventRecord(
        at=firing.at,
        kind="alert_fired",
        severity="info",
        message=f"alert {alert.name}: {firing.message}",
        details={
            "alert": alert.name,
            "condition": firing.condition,
            "value": firing.value,
            "threshold": alert.threshold,
            "unit": alert.unit,
        },
        alert_id=alert.id,
    )
    return AlertFiringRecord(alert.id, firing.at, firing.value, event, alert.last_triggered)
