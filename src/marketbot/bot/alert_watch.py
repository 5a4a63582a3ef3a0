"""``alerts watch``: evaluate the stored alerts every interval, and watch the bot's heartbeat.

Each iteration reads the enabled alerts, builds a snapshot from the database
(``bot.alert_sources``), lets the :class:`~marketbot.bot.alerts.AlertManager` fire and
notify, and reports a current bot run whose heartbeat is older than two of its bars as an
emergency (once per silence: a heartbeat that moves and goes quiet again is reported again).
Time and waiting are injected, so a test runs a few iterations on a fake clock.
"""

from __future__ import annotations

import logging
import time as wall
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from marketbot.bot.alert_sources import snapshot_from_database, stale_heartbeats
from marketbot.bot.alerts import AlertFiring, AlertManager
from marketbot.bot.notify import EventNotifier
from marketbot.core.clock import Clock
from marketbot.store.alerts import AlertRepository
from marketbot.store.database import Database

_log = logging.getLogger("marketbot.alerts")


@dataclass
class WatchReport:
    """What the iterations so far did."""

    iterations: int = 0
    firings: list[AlertFiring] = field(default_factory=list)
    stale_runs: list[int] = field(default_factory=list)


class AlertWatcher:
    """Runs ``alerts watch``.

    Args:
        database: Where the alerts, bars and bot runs are.
        notifier: Where firings and emergencies go.
        clock: The time of each evaluation.
        sleep: Waits between iterations (a test's advances its fake clock).
    """

    def __init__(
        self,
        database: Database,
        notifier: EventNotifier,
        clock: Clock,
        sleep: Callable[[float], None] = wall.sleep,
    ) -> None:
        self.database = database
        self.notifier = notifier
        self.clock = clock
        self.sleep = sleep
        self.alerts = AlertRepository(database)
        self.manager = AlertManager(self.alerts, notifier)
        self._reported: dict[int, datetime] = {}

    def run(self, interval_seconds: float, iterations: int | None = None) -> WatchReport:
        """Iterate until ``iterations`` are done (None: until interrupted)."""
        report = WatchReport()
        while iterations is None or report.iterations < iterations:
            if report.iterations:
                self.sleep(interval_seconds)
            self.iterate(report)
        return report

    def iterate(self, report: WatchReport) -> None:
        """One evaluation of every enabled alert, and the heartbeat check."""
        now = self.clock.now()
        snapshot = snapshot_from_database(self.database, self.alerts.enabled(), now)
        report.firings.extend(self.manager.evaluate(snapshot))
        for stale in stale_heartbeats(self.database, now):
            if self._reported.get(stale.run.id) == stale.heartbeat:
                continue
            self._reported[stale.run.id] = stale.heartbeat
            report.stale_runs.append(stale.run.id)
            self.notifier.notify(
                "heartbeat stale", stale.message, emergency=True, kind="heartbeat_stale"
            )
        report.iterations += 1
