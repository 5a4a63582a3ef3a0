"""``alerts test``: a stored alert evaluated on past bars, a CSV file or one value.

The alert is copied fresh (armed, never fired) into a
:class:`~marketbot.bot.alerts.MemoryAlertBook` and evaluated by the same
:class:`~marketbot.bot.alerts.AlertManager` as the bot's loop and ``alerts watch``, one
snapshot per bar, with no notifier: nothing is stored or sent. A replay through the bot
fires the same alert at the same bars.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import BacktestingEngine
from marketbot.backtest.signals import prepare_signals
from marketbot.bot.alert_snapshot import (
    AlertSnapshot,
    PortfolioReading,
    PriceReading,
    StrategyReading,
    strategy_reading,
)
from marketbot.bot.alert_sources import price_snapshots
from marketbot.bot.alerts import AlertFiring, AlertManager, MemoryAlertBook, condition_of
from marketbot.core.errors import ConfigError
from marketbot.store.alerts import AlertInfo
from marketbot.strategies.loader import load_strategy


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
    alert: AlertInfo,
    frame: pd.DataFrame,
    start: pd.Timestamp | None,
    config: BacktestConfig | None = None,
) -> Iterator[AlertSnapshot]:
    """One snapshot per bar from ``start`` (earlier bars are warm-up and the first change).

    A price alert reads the bars; a strategy alert reads its strategy run over them as the
    bot would (default parameters, ``config``: the bot's defaults unless given).

    Raises:
        ConfigError: a portfolio alert (bars say nothing of the account: test it with
            ``--value``).
        StrategyError: the strategy is unknown or crashes.
    """
    first = 0 if start is None else int(pd.DatetimeIndex(frame.index).searchsorted(start))
    if alert.kind == "price":
        return price_snapshots(frame, alert.subject or "", alert.timeframe, first=first)
    if alert.kind == "strategy":
        return strategy_snapshots(alert.subject or "", frame, first, config or BacktestConfig())
    raise ConfigError(
        f"alert {alert.id} is a portfolio alert: bars test price and strategy alerts; test it "
        "with --value X"
    )


def strategy_snapshots(
    name: str, frame: pd.DataFrame, first: int, config: BacktestConfig
) -> Iterator[AlertSnapshot]:
    """Per bar, the strategy's reading as the bot's loop would see it at that close.

    ``entry_signal`` and ``size_fraction`` are its signals at the close; ``pnl_usd``,
    ``win_rate`` and ``open_positions`` come from a backtest of the same bars (long only,
    as the bot trades): trades closed by then, and a position held after the bar.
    """
    strategy = load_strategy(name)
    params = strategy.resolve_params({})
    config = dataclasses.replace(config, allow_short=False)
    times = pd.DatetimeIndex(frame.index)
    kernel = prepare_signals(strategy, frame, params, config).kernel
    result = BacktestingEngine().backtest_frame(
        strategy, frame, params, config, start=times[first] if len(times) else None, symbol=name
    )
    trades = result.trades
    closed = trades[trades["exit_reason"] != "end_of_data"]
    for row in range(first, len(frame)):
        time = times[row]
        done = closed[closed["exit_time"] <= time]
        held = trades[(trades["entry_time"] <= time) & ~trades.index.isin(done.index)]
        size = float(kernel.size_fraction[row])
        reading = strategy_reading(
            name, done["pnl"].tolist(), open_positions=len(held),
            entry_signal=bool(kernel.entries_long[row]),
            size_fraction=size if math.isfinite(size) else None,
        )  # fmt: skip
        yield AlertSnapshot(at=time.to_pydatetime(), strategies=(reading,))


def value_snapshot(alert: AlertInfo, value: float, at: datetime) -> AlertSnapshot:
    """A snapshot in which the alert's metric has ``value`` at ``at``."""
    metric: dict[str, Any] = {alert.metric: value}
    if alert.kind == "price":
        price = PriceReading(alert.subject or "", at, timeframe=alert.timeframe, **metric)
        return AlertSnapshot(at=at, prices=(price,))
    if alert.kind == "strategy":
        return AlertSnapshot(at=at, strategies=(StrategyReading(alert.subject or "", **metric),))
    return AlertSnapshot(at=at, portfolio=PortfolioReading(**metric))
