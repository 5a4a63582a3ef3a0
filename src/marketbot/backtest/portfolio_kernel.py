"""The compiled portfolio loop: several symbols, one account, shared cash, one time axis.

Same conventions as the single-symbol kernel (docs/backtesting.md), applied per symbol with
the same bar steps (``backtest.step_nb``). Prices are ``bars x symbols`` arrays; NaN marks a
symbol without a bar at that time: it is simply not tradable then (nothing is
forward-filled), its positions are marked at their last close, and a signal at its last bar
fills at its next bar.

Within a bar: (1) at the open, for every symbol with a bar, in symbol order: gapped stops,
max hold, signal exits; a portfolio stop closes everything; (2) entries, highest priority
first (the strategy's ranking, else symbol order), while slots, cash and the risk limits
allow; (3) intrabar stop-loss, trailing stop, take-profit per symbol; (4) at the close,
trailing extremes, marks, equity, exposure and the circuit-breaker checks.

This module is the skeleton: symbols, slots, priority, marks and the portfolio stop. The
state is one ``step_nb.POSITION_DTYPE`` record per symbol and one trade array, sized once,
so the loop allocates nothing per bar.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from marketbot.backtest.kernel import KernelSettings, KernelSignals
from marketbot.backtest.step_nb import (
    POSITION_DTYPE,
    TRADE_DTYPE,
    Account,
    Book,
    bar_orders_nb,
    close_step_nb,
    end_of_data_nb,
    enter_position_nb,
    entry_direction_nb,
    exit_position_nb,
    flat_position_nb,
    intrabar_step_nb,
    limits_on_nb,
    load_position_nb,
    open_exit_reason_nb,
    risk_close_nb,
    risk_open_nb,
    risk_start_nb,
    size_entry_nb,
    store_position_nb,
)
from marketbot.core.codes import EXIT_NONE, EXIT_PORTFOLIO_STOP, FLAT, SIZING_ALL_IN
from marketbot.risk.limits_nb import ENTRY_ALLOWED


class PortfolioSettings(NamedTuple):
    """Portfolio-only settings; costs, exits and risk limits come from ``KernelSettings``.

    Attributes:
        max_open_positions: Slots: at most this many positions at once.
        max_exposure_fraction: Gross exposure cap as a fraction of equity (NaN: none).
        portfolio_stop: Close everything when equity falls this fraction below its peak
            since the last portfolio stop (NaN: off).
    """

    max_open_positions: int
    max_exposure_fraction: float
    portfolio_stop: float


class PortfolioOutput(NamedTuple):
    """One portfolio simulation: equity, exposure and cash per bar, and the trade records.

    ``trades`` holds one ``step_nb.TRADE_DTYPE`` record per trade (``symbol`` is the
    column), in the order they closed; read fields by name.
    """

    equity: np.ndarray
    exposure: np.ndarray
    cash: np.ndarray
    trades: np.ndarray
    num_trades: int
    exposed_bars: int
    total_fees: float
    entry_denials: np.ndarray
    breaker_trips: np.ndarray


def simulate_portfolio(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    signals: KernelSignals,
    priority: np.ndarray,
    settings: KernelSettings,
    portfolio: PortfolioSettings,
) -> PortfolioOutput:
    """Run the compiled portfolio simulation (arrays are bars x symbols)."""
    out = simulate_portfolio_nb(
        open_, high, low, close, times_ns, signals, priority, settings, portfolio
    )
    equity, exposure, cash, trades, num_trades, exposed_bars, total_fees, denials, trips = out
    return PortfolioOutput(
        equity, exposure, cash, trades[:num_trades], num_trades, exposed_bars, total_fees,
        denials, trips,
    )  # fmt: skip


@njit(cache=True)
def _marks_nb(positions: np.ndarray, marks: np.ndarray) -> tuple[float, float, int]:
    """Net value, gross exposure and count of the open positions at their marks."""
    value = 0.0
    gross = 0.0
    count = 0
    for symbol in range(positions.shape[0]):
        direction = positions[symbol]["direction"]
        if direction != FLAT:
            notional = positions[symbol]["units"] * marks[symbol]
            value += direction * notional
            gross += notional
            count += 1
    return value, gross, count


@njit(cache=True)
def _entry_order_nb(candidates: np.ndarray, keys: np.ndarray, count: int) -> None:
    """Sort the first ``count`` candidates in place: priority key high first, then symbol."""
    # Insertion sort: candidate lists are short, and it keeps symbol order among equals.
    for i in range(1, count):
        symbol = candidates[i]
        key = keys[i]
        j = i - 1
        while j >= 0 and _ranks_before(key, keys[j]):
            candidates[j + 1] = candidates[j]
            keys[j + 1] = keys[j]
            j -= 1
        candidates[j + 1] = symbol
        keys[j + 1] = key


@njit(cache=True, inline="always")
def _ranks_before(key: float, other: float) -> bool:
    if math.isnan(key):
        return False
    return math.isnan(other) or key > other


@njit(cache=True)
def simulate_portfolio_nb(  # noqa: PLR0912, PLR0915 - one flat loop keeps the kernel fast
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    signals: KernelSignals,
    priority: np.ndarray,
    settings: KernelSettings,
    portfolio: PortfolioSettings,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int, float, np.ndarray, np.ndarray]:
    """Simulate one account trading several symbols; see the module docstring."""
    n, k = close.shape
    equity = np.empty(n, dtype=np.float64)
    exposure = np.empty(n, dtype=np.float64)
    cash_curve = np.empty(n, dtype=np.float64)
    # Every trade opens on one entry signal, acted on at most once: that bounds the records.
    capacity = np.count_nonzero(signals.entries_long)
    if settings.allow_short:
        capacity += np.count_nonzero(signals.entries_short)
    trades = np.empty(capacity + 1, dtype=TRADE_DTYPE)
    entry_denials = np.zeros((n, k), dtype=np.int8)
    breaker_trips = np.zeros(n, dtype=np.int8)
    positions = np.empty(k, dtype=POSITION_DTYPE)
    for s in range(k):
        store_position_nb(positions, s, flat_position_nb())
    last_bar = np.full(k, -1, dtype=np.int64)  # each symbol's last bar with prices
    marks = np.full(k, np.nan)
    liquidate = np.zeros(k, dtype=np.bool_)
    candidates = np.empty(k, dtype=np.int64)
    candidate_keys = np.empty(k, dtype=np.float64)
    wanted = np.zeros(k, dtype=np.int64)
    account = Account(settings.initial_cash, 0.0, 0)
    exposed_bars = 0
    risk = risk_start_nb(settings, times_ns[0] if n else 0)
    limits_on = limits_on_nb(settings)
    stop_peak = settings.initial_cash

    for bar in range(n):
        now_ns = times_ns[bar]
        if limits_on:
            risk = risk_open_nb(risk, now_ns, settings)
        # (1) at the open: exits, per symbol with a bar now; then the entries it wants.
        num_candidates = 0
        for s in range(k):
            bar_open = open_[bar, s]
            signal_bar = last_bar[s]
            if math.isnan(bar_open) or signal_bar < 0:
                continue
            position = load_position_nb(positions, s)
            orders = bar_orders_nb(
                signals.entries_long[signal_bar, s],
                signals.exits_long[signal_bar, s],
                signals.entries_short[signal_bar, s],
                signals.exits_short[signal_bar, s],
                settings.allow_short,
            )
            position_at_signal = position.direction
            if position.direction != FLAT:
                marks[s] = bar_open
                reason = EXIT_PORTFOLIO_STOP
                if not liquidate[s]:
                    reason = open_exit_reason_nb(position, bar_open, now_ns, orders, settings)
                liquidate[s] = False
                if reason != EXIT_NONE:
                    account, position = exit_position_nb(
                        account, position, bar_open, bar, reason, s, trades, settings
                    )
                    store_position_nb(positions, s, position)
            direction = entry_direction_nb(orders, position_at_signal)
            if direction != FLAT and position.direction == FLAT:
                wanted[s] = direction
                candidates[num_candidates] = s
                candidate_keys[num_candidates] = priority[signal_bar, s]
                num_candidates += 1

        # (2) entries by priority, while slots, cash and limits allow.
        _entry_order_nb(candidates, candidate_keys, num_candidates)
        for i in range(num_candidates):
            s = candidates[i]
            held_value, gross, open_count = _marks_nb(positions, marks)
            if open_count >= portfolio.max_open_positions:
                continue
            signal_bar = last_bar[s]
            fraction = signals.size_fraction[signal_bar, s]
            if math.isnan(fraction) and settings.sizing_mode == SIZING_ALL_IN:
                # Default portfolio sizing: equal weight of equity per slot.
                fraction = 1.0 / portfolio.max_open_positions
            book = Book(account.cash + held_value, account.cash, gross, open_count)
            fill, units, verdict = size_entry_nb(
                wanted[s], open_[bar, s], fraction, book, risk,
                portfolio.max_exposure_fraction, limits_on, settings,
            )  # fmt: skip
            if verdict != ENTRY_ALLOWED:
                entry_denials[bar, s] = verdict
            elif units > 0.0:
                account, position = enter_position_nb(
                    account, wanted[s], fill, units, bar, now_ns, signals.tag[signal_bar, s],
                    settings,
                )  # fmt: skip
                store_position_nb(positions, s, position)
                marks[s] = open_[bar, s]

        # (3) intrabar exits, then (4) marks at the close.
        exited = False
        for s in range(k):
            if math.isnan(open_[bar, s]):
                continue
            position = load_position_nb(positions, s)
            if position.direction != FLAT:
                account, position = intrabar_step_nb(
                    account, position, open_[bar, s], high[bar, s], low[bar, s], bar, s,
                    trades, settings,
                )  # fmt: skip
                exited |= position.direction == FLAT  # held during this bar
                position, _ = close_step_nb(
                    position, high[bar, s], low[bar, s], close[bar, s], settings
                )
                store_position_nb(positions, s, position)
            marks[s] = close[bar, s]
            last_bar[s] = bar
        held_value, gross, open_count = _marks_nb(positions, marks)
        if open_count > 0 or exited:
            exposed_bars += 1
        equity[bar] = account.cash + held_value
        exposure[bar] = gross
        cash_curve[bar] = account.cash
        if limits_on:
            risk, trip = risk_close_nb(risk, equity[bar], settings)
            breaker_trips[bar] = trip
        stop_peak = max(stop_peak, equity[bar])
        if open_count > 0 and equity[bar] <= stop_peak * (1.0 - portfolio.portfolio_stop):
            # Close everything at each symbol's next open; the stop re-arms from here.
            for s in range(k):
                liquidate[s] = positions[s]["direction"] != FLAT
            stop_peak = equity[bar]

    # Still open after the last bar: valued at their last close, without exit costs.
    for s in range(k):
        position = load_position_nb(positions, s)
        if position.direction != FLAT:
            account, _ = end_of_data_nb(account, position, last_bar[s], marks[s], s, trades)
    return (
        equity,
        exposure,
        cash_curve,
        trades,
        account.num_trades,
        exposed_bars,
        account.total_fees,
        entry_denials,
        breaker_trips,
    )
