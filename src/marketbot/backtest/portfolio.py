"""Portfolio backtests: one account trading several symbols with shared cash.

Each symbol's signals are computed on its own bars (the strategy never sees another symbol's
calendar or a filled-in bar). The bars are then laid on the union of all bar times, with NaN
where a symbol has no bar, and the portfolio kernel trades them: a symbol without a bar at a
time is simply not tradable then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.kernel import KernelSignals
from marketbot.backtest.portfolio_kernel import (
    PortfolioOutput,
    PortfolioSettings,
    simulate_portfolio,
)
from marketbot.backtest.portfolio_signals import TimeAxis, portfolio_signals
from marketbot.backtest.result import trade_records_frame
from marketbot.core.bar_panel import PanelBars
from marketbot.core.bars import PRICE_COLUMNS
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Strategy


@dataclass(frozen=True, slots=True)
class PortfolioRules:
    """How the account spreads over symbols.

    Attributes:
        max_open_positions: Slots; None means one per symbol. Entries are sized at equal
            weight of equity per slot unless the strategy gives a size fraction or the run
            uses fraction / fixed-cash sizing.
        max_exposure: Cap on gross exposure as a fraction of equity (None: no cap).
        portfolio_stop: Close every position when equity falls this fraction below its
            peak since the last portfolio stop (None: off).
    """

    max_open_positions: int | None = None
    max_exposure: float | None = None
    portfolio_stop: float | None = None

    def __post_init__(self) -> None:
        if self.max_open_positions is not None and self.max_open_positions < 1:
            raise ConfigError(f"max_open_positions={self.max_open_positions}: must be >= 1")
        if self.max_exposure is not None and not (0.0 < self.max_exposure <= 100.0):
            raise ConfigError(f"max_exposure={self.max_exposure}: must be a positive fraction")
        if self.portfolio_stop is not None and not (0.0 < self.portfolio_stop < 1.0):
            raise ConfigError(f"portfolio_stop={self.portfolio_stop}: must be in (0, 1)")

    def kernel_settings(self, symbols: int) -> PortfolioSettings:
        """The kernel's portfolio settings for ``symbols`` symbols."""
        return PortfolioSettings(
            max_open_positions=self.max_open_positions or symbols,
            max_exposure_fraction=np.nan if self.max_exposure is None else self.max_exposure,
            portfolio_stop=np.nan if self.portfolio_stop is None else self.portfolio_stop,
        )


@dataclass(frozen=True)
class AlignedPortfolio:
    """Bars and signals of several symbols on one time axis (bars x symbols).

    ``shared_calendar``: every symbol has a bar at every time of ``index``.
    """

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    signals: KernelSignals
    priority: np.ndarray
    allow_short: bool
    tag_names: tuple[str, ...]
    shared_calendar: bool = False


def align_portfolio(
    strategy: Strategy,
    frames: Mapping[str, pd.DataFrame],
    params: Mapping[str, Any],
    config: BacktestConfig,
) -> AlignedPortfolio:
    """Compute each symbol's signals on its own bars and lay everything on one time axis.

    The strategy's panel hook computes all the symbols at once when it has one; otherwise
    each symbol's signals are computed on its own frame (``backtest.portfolio_signals``).

    Raises:
        ConfigError: no frames.
        StrategyError: the strategy crashed or broke the contract.
    """
    bars = PanelBars.of(frames)
    axis = TimeAxis.of(bars)
    signals = portfolio_signals(strategy, frames, bars, axis, params, config)
    prices = {name: axis.place(bars.grid(name), np.nan) for name in PRICE_COLUMNS}
    return AlignedPortfolio(
        index=axis.index,
        symbols=bars.symbols,
        open=prices["open"],
        high=prices["high"],
        low=prices["low"],
        close=prices["close"],
        signals=signals.kernel,
        priority=signals.priority,
        allow_short=signals.allow_short,
        tag_names=signals.tag_names,
        shared_calendar=axis.rows is None,
    )


def run_aligned(
    aligned: AlignedPortfolio,
    config: BacktestConfig,
    rules: PortfolioRules,
    first: int,
) -> PortfolioOutput:
    """Simulate the aligned portfolio from row ``first`` on (earlier rows were warm-up)."""
    window = slice(first, None)
    signals = KernelSignals(*(array[window] for array in aligned.signals))
    return simulate_portfolio(
        np.ascontiguousarray(aligned.open[window]),
        np.ascontiguousarray(aligned.high[window]),
        np.ascontiguousarray(aligned.low[window]),
        np.ascontiguousarray(aligned.close[window]),
        aligned.index.asi8[window],
        signals,
        aligned.priority[window],
        config.kernel_settings(allow_short=aligned.allow_short),
        rules.kernel_settings(len(aligned.symbols)),
    )


def portfolio_trades_frame(
    output: PortfolioOutput,
    index: pd.DatetimeIndex,
    symbols: tuple[str, ...],
    tag_names: tuple[str, ...],
) -> pd.DataFrame:
    """The kernel's trade records as the public trade table, with a ``symbol`` column."""
    names = np.asarray(symbols, dtype=object)
    # Exits are recorded bar by bar; order trades by exit, then entry, then symbol name. The
    # records are sorted before the table is built: sorting the table by its text column
    # took most of the time. A symbol has at most one trade per (entry, exit), so the order
    # is the one sort_values gives.
    name_rank = np.argsort(np.argsort(names, kind="stable"), kind="stable")
    unordered = output.trades
    order = np.lexsort(
        (name_rank[unordered["symbol"]], unordered["entry_bar"], unordered["exit_bar"])
    )
    records = unordered[order]
    frame = trade_records_frame(records, index, tag_names)
    frame["symbol"] = pd.array(names[records["symbol"]], dtype="str")
    return frame


def per_symbol_breakdown(
    trades: pd.DataFrame, symbols: tuple[str, ...], initial_cash: float
) -> pd.DataFrame:
    """Trades, win rate, P&L, fees and contribution to the return, per symbol."""
    codes = pd.Index(symbols).get_indexer(pd.Index(trades["symbol"]))
    # One stable sort keeps each symbol's trades in order, so its sums are the plain sums.
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(symbols) + 1))
    pnl_all = trades["pnl"].to_numpy()[order]
    fees_all = trades["fees"].to_numpy()[order]
    starts, stops = bounds[:-1], bounds[1:]
    counts = stops - starts
    won = np.concatenate(([0], np.cumsum(pnl_all > 0)))
    wins = won[stops] - won[starts]
    # Each symbol's sums are NumPy's sums of its own slice, as one symbol's run sums them.
    pnl = np.array([pnl_all[a:b].sum() for a, b in zip(starts, stops, strict=True)], dtype=float)
    fees = np.array([fees_all[a:b].sum() for a, b in zip(starts, stops, strict=True)], dtype=float)
    win_rate = np.zeros(len(symbols))
    np.divide(100.0 * wins, counts, out=win_rate, where=counts > 0)
    return pd.DataFrame(
        {
            "symbol": pd.array(list(symbols), dtype="str"),
            "num_trades": counts.astype(np.int64),
            "win_rate": win_rate,
            "pnl": pnl,
            "fees": fees,
            "contribution_pct": 100.0 * pnl / initial_cash,
        }
    )


def equal_weight_benchmark(close: np.ndarray) -> np.ndarray:
    """Equal-weight buy and hold of every symbol from its first bar, as one price series.

    Each symbol's close is divided by its first close and carried forward over its gaps;
    before a symbol's first bar it counts as 1 (cash). The mean over symbols is the curve,
    so for one symbol it is that symbol's close over its first close.
    """
    if not np.isnan(close).any():
        return np.asarray((close / close[0]).mean(axis=1), dtype=np.float64)
    normalised = pd.DataFrame(close / _first_valid(close)).ffill().fillna(1.0).to_numpy()
    return np.asarray(normalised.mean(axis=1), dtype=np.float64)


def _first_valid(close: np.ndarray) -> np.ndarray:
    firsts = np.full(close.shape[1], np.nan)
    for column in range(close.shape[1]):
        valid = np.flatnonzero(~np.isnan(close[:, column]))
        if len(valid):
            firsts[column] = close[valid[0], column]
    return firsts
