"""The bot's alerts: one snapshot of the account per bar (and per ticker), evaluated once.

The loop's readings go into an :class:`~marketbot.bot.alert_snapshot.AlertSnapshot`: the
symbol's latest closed bar (or a live ticker), the strategy's latest entry signal and size,
its closed trades' P&L and win rate, and the account as the risk book marks it. The
:class:`~marketbot.bot.alerts.AlertManager` stores each firing with its event before the
notice goes, so a bar redone after a crash does not fire an alert twice (it is disarmed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from marketbot.bot.alert_snapshot import (
    AlertSnapshot,
    PriceReading,
    change_pct,
    portfolio_reading,
    strategy_reading,
)
from marketbot.bot.alerts import AlertManager


@dataclass(frozen=True)
class BarReading:
    """What the loop saw at one evaluation.

    Attributes:
        at: The bar's open time, or the ticker's time.
        price: The bar's close, or the ticker's last price.
        previous_close: The close before (for ``change_pct``), None when unknown.
        is_ticker: A live ticker (``last``) rather than a closed bar (``close``, ``last``).
        entry_signal: The strategy's entry signal at the bar's close (None: not computed).
        size_fraction: Its size for that entry (NaN: the run's sizing).
        equity: The account's value at this mark.
        day_start_equity: The risk day's starting equity.
        peak_equity: The high-water mark.
        exposure_usd: The open position at this price.
        open_positions: How many positions the strategy holds.
        trade_pnls: The P&L of every closed trade so far.
    """

    at: datetime
    price: float
    previous_close: float | None
    is_ticker: bool
    entry_signal: bool | None
    size_fraction: float | None
    equity: float
    day_start_equity: float
    peak_equity: float
    exposure_usd: float
    open_positions: int
    trade_pnls: tuple[float, ...]


class LoopAlerts:
    """Evaluates the stored alerts on the bot's readings."""

    def __init__(self, manager: AlertManager, strategy: str, symbol: str, timeframe: str) -> None:
        self.manager = manager
        self.strategy = strategy
        self.symbol = symbol
        self.timeframe = timeframe

    def any_enabled(self) -> bool:
        """Whether any alert is enabled (else the loop need not read the account for them)."""
        return bool(self.manager.book.enabled())

    def evaluate(self, reading: BarReading) -> int:
        """Evaluate every enabled alert on ``reading``; the number that fired."""
        change = None if reading.is_ticker else change_pct(reading.price, reading.previous_close)
        price = PriceReading(
            symbol=self.symbol,
            time=reading.at,
            close=None if reading.is_ticker else reading.price,
            last=reading.price,
            change_pct=change,
            timeframe=self.timeframe,
        )
        strategy = strategy_reading(
            self.strategy,
            reading.trade_pnls,
            open_positions=reading.open_positions,
            entry_signal=reading.entry_signal,
            size_fraction=reading.size_fraction,
        )
        portfolio = portfolio_reading(
            reading.equity,
            day_start_value=reading.day_start_equity,
            peak_value=reading.peak_equity,
            exposure_usd=reading.exposure_usd,
        )
        snapshot = AlertSnapshot(
            at=reading.at, prices=(price,), strategies=(strategy,), portfolio=portfolio
        )
        return len(self.manager.evaluate(snapshot))
