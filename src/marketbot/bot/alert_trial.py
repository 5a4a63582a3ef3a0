"""``alerts test``: a stored alert evaluated on past bars, a CSV file or one value.

The alert is copied fresh (armed, never fired) into a
:class:`~marketbot.bot.alerts.MemoryAlertBook` and evaluated by the same
:class:`~marketbot.bot.alerts.AlertManager` as the bot's loop and ``alerts watch``, one
snapshot per bar, with no notifier: nothing is stored or sent. A replay through the bot
fires the same alert at the same bars.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from marketbot.bot.alert_snapshot import (
    AlertSnapshot,
    PortfolioReading,
    PriceReading,
    StrategyReading,
)
from marketbot.bot.alert_sources import price_snapshots
from marketbot.bot.alerts import AlertFiring, AlertManager, MemoryAlertBook, condition_of
from marketbot.core.errors import ConfigError
from marketbot.store.alerts import AlertInfo


@dataclass(frozen=True)
class AlertTrial:
    """What a test of one alert found: how many evaluations, and the firings."""

    alert: AlertInfo
    evaluations: int
    firings: list[AlertFiring]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: the alert, the evaluations, each firing's time and value."""
        return {
            "alert_id": self.alert.id,
            "name": self.alert.name,
            "condition": condition_of(self.alert).describe(),
            "cooldown_seconds": self.alert.cooldown_seconds,
            "evaluations": self.evaluations,
            "firings": [
                {"time": f"{f.at:%Y-%m-%dT%H:%M:%SZ}", "value": f.value} for f in self.firings
            ],
        }


def trial_alert(alert: AlertInfo, snapshots: Iterable[AlertSnapshot]) -> AlertTrial:
    """Evaluate a fresh copy of ``alert`` on each snapshot in turn."""
    fresh = dataclasses.replace(
        alert, enabled=True, armed=True, trigger_count=0, last_triggered=None, last_value=None
    )
    manager = AlertManager(MemoryAlertBook([fresh]))
    evaluations = 0
    firings: list[AlertFiring] = []
    for snapshot in snapshots:
        evaluations += 1
        firings.extend(manager.evaluate(snapshot))
    return AlertTrial(alert, evaluations, firings)


def bar_snapshots(
    alert: AlertInfo, frame: pd.DataFrame, start: pd.Timestamp | None
) -> Iterable[AlertSnapshot]:
    """One snapshot per bar from ``start`` (earlier bars only give the first change).

    Raises:
        ConfigError: the alert is not a price alert (bars say nothing of a strategy's or
            the portfolio's state: test those with ``--value``).
    """
    if alert.kind != "price":
        raise ConfigError(
            f"alert {alert.id} is a {alert.kind} alert: bars test price alerts only; test it "
            "with --value X"
        )
    first = 0 if start is None else int(pd.DatetimeIndex(frame.index).searchsorted(start))
    return price_snapshots(frame, alert.subject or "", alert.timeframe, first=first)


def value_snapshot(alert: AlertInfo, value: float, at: datetime) -> AlertSnapshot:
    """A snapshot in which the alert's metric has ``value`` at ``at``."""
    metric: dict[str, Any] = {alert.metric: value}
    if alert.kind == "price":
        price = PriceReading(alert.subject or "", at, timeframe=alert.timeframe, **metric)
        return AlertSnapshot(at=at, prices=(price,))
    if alert.kind == "strategy":
        return AlertSnapshot(at=at, strategies=(StrategyReading(alert.subject or "", **metric),))
    return AlertSnapshot(at=at, portfolio=PortfolioReading(**metric))
