"""What alerts are evaluated on: one plain snapshot of prices, strategies and the portfolio.

The bot's loop builds one per bar from its account, ``alerts watch`` from the database
(``bot.alert_sources``) and ``alerts test`` from stored bars, a CSV file or a given value;
:class:`~marketbot.bot.alerts.AlertManager` reads all three the same way. A value left None
is not known at this moment: an alert on it is neither fired nor re-armed.

Units: prices in the quote currency; ``change_pct``, ``win_rate`` and ``drawdown_pct`` in
percent (12.5 is 12.5 %, ``drawdown_pct`` a positive magnitude); ``size_fraction`` a
fraction of equity (0..1); ``entry_signal`` 1 when the strategy signals an entry, else 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from marketbot.bot.alert_expressions import AlertCondition


@dataclass(frozen=True, slots=True)
class PriceReading:
    """One symbol's price at a moment.

    Attributes:
        symbol: As stored (``bitcoin``, ``BTC/USDT``).
        time: Open time of the latest closed bar (a firing on it is stamped with it), or the
            time of a live ticker poll.
        close: Close of the latest closed bar.
        last: The last traded price (a live ticker; from stored bars, the latest close).
        change_pct: The latest close against the one before, in percent.
        timeframe: The bars' timeframe (an alert with a timeframe reads only its own).
    """

    symbol: str
    time: datetime
    close: float | None = None
    last: float | None = None
    change_pct: float | None = None
    timeframe: str | None = None


@dataclass(frozen=True, slots=True)
class StrategyReading:
    """One strategy's state: its latest signal, its size, its results so far."""

    name: str
    entry_signal: float | None = None
    size_fraction: float | None = None
    pnl_usd: float | None = None
    win_rate: float | None = None
    open_positions: float | None = None


@dataclass(frozen=True, slots=True)
class PortfolioReading:
    """The account: its value, the day's P&L, what is held, the drawdown from the peak."""

    total_value: float | None = None
    daily_pnl: float | None = None
    exposure_usd: float | None = None
    drawdown_pct: float | None = None


@dataclass(frozen=True, slots=True)
class AlertSnapshot:
    """Everything one evaluation may read.

    Attributes:
        at: The evaluation's time (a bar's open time in a replay); strategy and portfolio
            firings are stamped with it, price firings with their reading's bar time.
        prices: One reading per symbol (and timeframe).
        strategies: One reading per strategy.
        portfolio: The account, when there is one.
    """

    at: datetime
    prices: tuple[PriceReading, ...] = ()
    strategies: tuple[StrategyReading, ...] = ()
    portfolio: PortfolioReading | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """A metric's value and the time a firing on it is stamped with."""

    value: float
    at: datetime


def reading_for(
    snapshot: AlertSnapshot, condition: AlertCondition, timeframe: str | None = None
) -> Reading | None:
    """The value ``condition`` compares in ``snapshot``; None when the snapshot lacks it.

    A price alert with a ``timeframe`` reads only a price of that timeframe (or one that does
    not say).
    """
    if condition.kind == "price":
        price = _price(snapshot.prices, condition.subject, timeframe)
        if price is None:
            return None
        return _known(getattr(price, condition.metric), price.time)
    if condition.kind == "strategy":
        for strategy in snapshot.strategies:
            if strategy.name == condition.subject:
                return _known(getattr(strategy, condition.metric), snapshot.at)
        return None
    if snapshot.portfolio is None:
        return None
    return _known(getattr(snapshot.portfolio, condition.metric), snapshot.at)


def _price(
    prices: Iterable[PriceReading], symbol: str | None, timeframe: str | None
) -> PriceReading | None:
    for price in prices:
        if price.symbol != symbol:
            continue
        if timeframe is None or price.timeframe is None or price.timeframe == timeframe:
            return price
    return None


def _known(value: float | None, at: datetime) -> Reading | None:
    if value is None or not math.isfinite(value):
        return None
    return Reading(float(value), at)


def change_pct(close: float, previous_close: float | None) -> float | None:
    """``close`` against ``previous_close`` in percent; None without a usable previous close."""
    if previous_close is None or not previous_close > 0 or not math.isfinite(previous_close):
        return None
    return 100.0 * (close / previous_close - 1.0)


def strategy_reading(
    name: str,
    trade_pnls: Iterable[float],
    *,
    open_positions: int,
    entry_signal: bool | None = None,
    size_fraction: float | None = None,
) -> StrategyReading:
    """A strategy's reading from its closed trades' P&L (quote currency) and its position.

    ``pnl_usd`` is the closed trades' total, ``win_rate`` the percent of them that made
    money (None before the first).
    """
    pnls = [float(pnl) for pnl in trade_pnls]
    wins = sum(1 for pnl in pnls if pnl > 0.0)
    return StrategyReading(
        name=name,
        entry_signal=None if entry_signal is None else float(entry_signal),
        size_fraction=size_fraction,
        pnl_usd=sum(pnls),
        win_rate=100.0 * wins / len(pnls) if pnls else None,
        open_positions=float(open_positions),
    )


def portfolio_reading(
    total_value: float, *, day_start_value: float, peak_value: float, exposure_usd: float
) -> PortfolioReading:
    """The account's reading from its marks (as the bot's risk book keeps them)."""
    drawdown = (
        100.0 * max(peak_value - total_value, 0.0) / peak_value
        if peak_value > 0 and math.isfinite(peak_value)
        else None
    )
    return PortfolioReading(
        total_value=total_value,
        daily_pnl=total_value - day_start_value,
        exposure_usd=exposure_usd,
        drawdown_pct=drawdown,
    )
