"""The compiled single-symbol backtest loop: one pass over plain arrays, one account.

Conventions (docs/backtesting.md has the full text): a signal computed at the close of bar
``t`` fills at the open of bar ``t + 1``. Within a bar: (1) at the open, exits the open has
gapped through, then max-hold exits, then signal exits, then signal entries, all at the open;
(2) intrabar, stop-loss, then trailing stop, then take-profit against the bar's low/high, at
their level (on the entry bar too), so that when two trigger in one bar a stop is taken;
(3) at the close, the trailing extreme is raised and the equity is marked. Every fill pays
slippage and a fee on notional.

This module is only the loop's skeleton: every step of a bar is a function of
``backtest.step_nb``, the same steps the portfolio kernel, the optimiser's fast grid and the
bot call. The loop allocates nothing per bar: trade records go into one array sized up front
from the number of entry signals.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from marketbot.backtest.step_nb import (
    TRADE_DTYPE,
    Account,
    Book,
    KernelSettings,
    bar_orders_nb,
    close_step_nb,
    end_of_data_nb,
    enter_position_nb,
    entry_direction_nb,
    exit_position_nb,
    flat_position_nb,
    intrabar_step_nb,
    limits_on_nb,
    open_exit_reason_nb,
    risk_close_nb,
    risk_open_nb,
    risk_start_nb,
    size_entry_nb,
)
from marketbot.core.codes import EXIT_NONE, FLAT
from marketbot.risk.limits_nb import ENTRY_ALLOWED

__all__ = ["KernelOutput", "KernelSettings", "KernelSignals", "simulate", "simulate_nb"]


class KernelSignals(NamedTuple):
    """Per-bar signal arrays, all of length n; signals at bar t act at the open of t + 1."""

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray
    exits_short: np.ndarray
    size_fraction: np.ndarray
    tag: np.ndarray


class KernelOutput(NamedTuple):
    """What one simulation returns.

    Attributes:
        equity: The equity at each bar's close.
        trades: One ``step_nb.TRADE_DTYPE`` record per trade, in the order they closed;
            read fields by name (``trades["pnl"]``).
        num_trades: ``len(trades)``.
        exposed_bars: Bars with a position held after the open's fills.
        total_fees: Fees paid, in quote currency.
        entry_denials: Per bar, the risk limit that refused an entry there (0: none).
        breaker_trips: Per bar, the circuit breaker that tripped at its close (0: none).
    """

    equity: np.ndarray
    trades: np.ndarray
    num_trades: int
    exposed_bars: int
    total_fees: float
    entry_denials: np.ndarray
    breaker_trips: np.ndarray


def simulate(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    signals: KernelSignals,
    settings: KernelSettings,
) -> KernelOutput:
    """Run the compiled simulation over one symbol's bars and wrap its outputs."""
    # Every trade opens on an entry signal, each acted on at most once: that bounds the
    # records (far below one per bar, and no page of a bar-sized buffer to fault in).
    capacity = np.count_nonzero(signals.entries_long) + 1
    if settings.allow_short:
        capacity += np.count_nonzero(signals.entries_short)
    trades = np.empty(capacity, dtype=TRADE_DTYPE)
    equity, num_trades, exposed_bars, total_fees, denials, trips = simulate_nb(
        open_, high, low, close, times_ns, signals, settings, trades
    )
    return KernelOutput(
        equity, trades[:num_trades], num_trades, exposed_bars, total_fees, denials, trips
    )


@njit(cache=True, nogil=True)
def simulate_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    signals: KernelSignals,
    settings: KernelSettings,
    trades: np.ndarray,
) -> tuple[np.ndarray, int, int, float, np.ndarray, np.ndarray]:
    """Simulate one account trading one symbol; see the module docstring for the rules.

    Writes the trade records into ``trades`` (``TRADE_DTYPE``, room for one per entry
    signal). Returns (equity, num_trades, exposed_bars, total_fees, entry_denials,
    breaker_trips), as in ``KernelOutput``.
    """
    n = open_.shape[0]
    equity = np.empty(n, dtype=np.float64)
    entry_denials = np.zeros(n, dtype=np.int8)
    breaker_trips = np.zeros(n, dtype=np.int8)
    account = Account(settings.initial_cash, 0.0, 0)
    position = flat_position_nb()
    exposed_bars = 0
    risk = risk_start_nb(settings, times_ns[0] if n else 0)
    # Without limits a run pays for none of the risk bookkeeping.
    limits_on = limits_on_nb(settings)

    for bar in range(n):
        bar_open = open_[bar]
        if limits_on:
            risk = risk_open_nb(risk, times_ns[bar], settings)
        if bar > 0:
            signal_bar = bar - 1
            orders = bar_orders_nb(
                signals.entries_long[signal_bar],
                signals.exits_long[signal_bar],
                settings.allow_short and signals.entries_short[signal_bar],  # read if used
                signals.exits_short[signal_bar],
                settings.allow_short,
            )
            position_at_signal = position.direction
            # (1) at the open: gapped stops, max hold, the signal exit, then the entry.
            if position.direction != FLAT:
                now_ns = times_ns[bar]
                reason = open_exit_reason_nb(position, bar_open, now_ns, orders, settings)
                if reason != EXIT_NONE:
                    account, position = exit_position_nb(
                        account, position, bar_open, bar, reason, 0, trades, settings
                    )
            direction = entry_direction_nb(orders, position_at_signal)
            if direction != FLAT and position.direction == FLAT:
                book = Book(account.cash, account.cash, 0.0, 0)
                fill, units, verdict = size_entry_nb(
                    direction, bar_open, signals.size_fraction[signal_bar], book, risk,
                    math.nan, limits_on, settings,
                )  # fmt: skip
                if verdict != ENTRY_ALLOWED:
                    entry_denials[bar] = verdict
                elif units > 0.0:
                    account, position = enter_position_nb(
                        account, direction, fill, units, bar, times_ns[bar],
                        signals.tag[signal_bar], settings,
                    )  # fmt: skip
        # (2) intrabar: stop-loss, trailing stop, take-profit at their levels.
        if position.direction != FLAT:
            exposed_bars += 1
            account, position = intrabar_step_nb(
                account, position, bar_open, high[bar], low[bar], bar, 0, trades, settings
            )
        # (3) at the close: raise the trailing extreme after the check, mark the equity.
        position, value = close_step_nb(position, high[bar], low[bar], close[bar], settings)
        equity[bar] = account.cash + value
        if limits_on:
            risk, trip = risk_close_nb(risk, equity[bar], settings)
            breaker_trips[bar] = trip

    if position.direction != FLAT:
        account, position = end_of_data_nb(account, position, n - 1, close[n - 1], 0, trades)
    return (
        equity,
        account.num_trades,
        exposed_bars,
        account.total_fees,
        entry_denials,
        breaker_trips,
    )
