"""The compiled portfolio loop: several symbols, one account, shared cash, one time axis.

Same conventions as the single-symbol kernel (docs/backtesting.md), applied per symbol, with
the same compiled rules (``core.costs_nb``, ``risk.exits_nb``, ``risk.sizing_nb``,
``risk.limits_nb``). Prices are ``bars x symbols`` arrays; NaN marks a symbol without a bar
at that time: it is simply not tradable then (nothing is forward-filled), its positions are
marked at their last close, and a signal at its last bar fills at its next bar.

Within a bar: (1) at the open, for every symbol with a bar, in symbol order: gapped stops,
max hold, signal exits; a portfolio stop closes everything; (2) entries, highest priority
first (the strategy's ranking, else symbol order), while slots, cash and the risk limits
allow; (3) intrabar stop-loss, take-profit, trailing stop per symbol; (4) at the close,
trailing extremes, marks, equity, exposure and the circuit-breaker checks.

State lives in two small matrices (positions x fields, trades x fields) sized once, so the
loop allocates nothing per bar.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
from numba import njit

from marketbot.backtest.kernel import KernelSettings, KernelSignals
from marketbot.core.codes import (
    EXIT_END_OF_DATA,
    EXIT_MAX_HOLD,
    EXIT_NONE,
    EXIT_PORTFOLIO_STOP,
    EXIT_SIGNAL,
    FLAT,
    LONG,
    SHORT,
    SIZING_ALL_IN,
)
from marketbot.core.costs_nb import fee_nb, fill_price_nb
from marketbot.risk.exits_nb import (
    gap_exit_reason_nb,
    intrabar_exit_nb,
    max_hold_reached_nb,
    stop_loss_level_nb,
    take_profit_level_nb,
    trailing_level_nb,
)
from marketbot.risk.limits_nb import (
    DENIED_DAILY_LOSS,
    DENIED_DRAWDOWN,
    ENTRY_ALLOWED,
    cap_entry_notional_nb,
    check_entry_nb,
    close_breaches_nb,
    next_daily_reset_ns_nb,
)
from marketbot.risk.sizing_nb import position_units_nb

# Position state columns.
P_DIRECTION, P_UNITS, P_ENTRY_PRICE, P_ENTRY_FEE, P_ENTRY_BAR, P_TAG = 0, 1, 2, 3, 4, 5
P_EXTREME, P_STOP, P_TARGET, P_LAST_BAR, P_MARK, P_LIQUIDATE = 6, 7, 8, 9, 10, 11
POSITION_FIELDS: Final = 12
# Trade record columns.
T_SYMBOL, T_ENTRY_BAR, T_EXIT_BAR, T_DIRECTION, T_SIZE, T_ENTRY_PRICE = 0, 1, 2, 3, 4, 5
T_EXIT_PRICE, T_PNL, T_PNL_PCT, T_FEES, T_REASON, T_TAG = 6, 7, 8, 9, 10, 11
TRADE_FIELDS: Final = 12


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
    """One portfolio simulation: equity and exposure per bar, and the trade records."""

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
    return PortfolioOutput(
        *simulate_portfolio_nb(
            open_, high, low, close, times_ns, signals, priority, settings, portfolio
        )
    )


@njit(cache=True)
def _close_nb(
    state: np.ndarray,
    symbol: int,
    trades: np.ndarray,
    index: int,
    bar: int,
    exit_price: float,
    exit_fee: float,
    reason: int,
) -> float:
    """Record the trade closing ``symbol``'s position; return the cash it brings back."""
    direction = state[symbol, P_DIRECTION]
    units = state[symbol, P_UNITS]
    entry_price = state[symbol, P_ENTRY_PRICE]
    entry_fee = state[symbol, P_ENTRY_FEE]
    pnl = direction * units * (exit_price - entry_price) - entry_fee - exit_fee
    trades[index, T_SYMBOL] = symbol
    trades[index, T_ENTRY_BAR] = state[symbol, P_ENTRY_BAR]
    trades[index, T_EXIT_BAR] = bar
    trades[index, T_DIRECTION] = direction
    trades[index, T_SIZE] = units
    trades[index, T_ENTRY_PRICE] = entry_price
    trades[index, T_EXIT_PRICE] = exit_price
    trades[index, T_PNL] = pnl
    trades[index, T_PNL_PCT] = 100.0 * pnl / (units * entry_price)
    trades[index, T_FEES] = entry_fee + exit_fee
    trades[index, T_REASON] = reason
    trades[index, T_TAG] = state[symbol, P_TAG]
    state[symbol, P_DIRECTION] = FLAT
    state[symbol, P_UNITS] = 0.0
    return float(direction * units * exit_price - exit_fee)


@njit(cache=True)
def _marks_nb(state: np.ndarray) -> tuple[float, float, int]:
    """Net value, gross exposure and count of the open positions at their marks."""
    value = 0.0
    gross = 0.0
    count = 0
    for symbol in range(state.shape[0]):
        direction = state[symbol, P_DIRECTION]
        if direction != FLAT:
            notional = state[symbol, P_UNITS] * state[symbol, P_MARK]
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
    fee_rate = settings.fee_rate
    slippage_rate = settings.slippage_rate
    equity = np.empty(n, dtype=np.float64)
    exposure = np.empty(n, dtype=np.float64)
    cash_curve = np.empty(n, dtype=np.float64)
    # Every trade opens on one entry signal, acted on at most once: that bounds the records.
    capacity = np.count_nonzero(signals.entries_long)
    if settings.allow_short:
        capacity += np.count_nonzero(signals.entries_short)
    trades = np.empty((capacity + 1, TRADE_FIELDS), dtype=np.float64)
    entry_denials = np.zeros((n, k), dtype=np.int8)
    breaker_trips = np.zeros(n, dtype=np.int8)
    state = np.zeros((k, POSITION_FIELDS), dtype=np.float64)
    state[:, P_LAST_BAR] = -1.0
    state[:, P_MARK] = np.nan
    candidates = np.empty(k, dtype=np.int64)
    candidate_keys = np.empty(k, dtype=np.float64)
    wanted = np.zeros(k, dtype=np.int64)

    cash = settings.initial_cash
    num_trades = 0
    exposed_bars = 0
    total_fees = 0.0
    last_equity = cash
    peak_equity = cash
    stop_peak = cash
    day_start_equity = cash
    next_reset_ns = next_daily_reset_ns_nb(times_ns[0], settings.daily_reset_offset_ns) if n else 0
    daily_halt = False
    drawdown_halt = False

    for bar in range(n):
        if times_ns[bar] >= next_reset_ns:
            next_reset_ns = next_daily_reset_ns_nb(times_ns[bar], settings.daily_reset_offset_ns)
            day_start_equity = last_equity
            daily_halt = False

        # (1) at the open: exits, per symbol with a bar now.
        num_candidates = 0
        for s in range(k):
            bar_open = open_[bar, s]
            if math.isnan(bar_open):
                continue
            signal_bar = int(state[s, P_LAST_BAR])
            position = int(state[s, P_DIRECTION])
            if position != FLAT:
                state[s, P_MARK] = bar_open
            if signal_bar < 0:
                continue
            entry_long = signals.entries_long[signal_bar, s]
            exit_long = signals.exits_long[signal_bar, s]
            entry_short = settings.allow_short and signals.entries_short[signal_bar, s]
            exit_short = signals.exits_short[signal_bar, s]
            if entry_long and (exit_long or entry_short):
                entry_long = False
            if entry_short and (exit_short or signals.entries_long[signal_bar, s]):
                entry_short = False
            if position != FLAT:
                reason = EXIT_NONE
                if state[s, P_LIQUIDATE] != 0.0:
                    reason = EXIT_PORTFOLIO_STOP
                    state[s, P_LIQUIDATE] = 0.0
                if reason == EXIT_NONE:
                    trail_level = trailing_level_nb(
                        position,
                        state[s, P_ENTRY_PRICE],
                        state[s, P_EXTREME],
                        settings.trailing_stop,
                        settings.trailing_activation,
                    )
                    reason = gap_exit_reason_nb(
                        position, bar_open, state[s, P_STOP], state[s, P_TARGET], trail_level
                    )
                if reason == EXIT_NONE and max_hold_reached_nb(
                    times_ns[int(state[s, P_ENTRY_BAR])], times_ns[bar], settings.max_hold_ns
                ):
                    reason = EXIT_MAX_HOLD
                if reason == EXIT_NONE and (
                    (position == LONG and (exit_long or entry_short))
                    or (position == SHORT and (exit_short or entry_long))
                ):
                    reason = EXIT_SIGNAL
                if reason != EXIT_NONE:
                    exit_fill = fill_price_nb(bar_open, -position, slippage_rate)
                    exit_fee = fee_nb(state[s, P_UNITS], exit_fill, fee_rate)
                    cash += _close_nb(
                        state, s, trades, num_trades, bar, exit_fill, exit_fee, reason
                    )
                    total_fees += exit_fee
                    num_trades += 1
            # A pending entry is acted on against the position its signal saw.
            wants = FLAT
            if entry_long and position != LONG:
                wants = LONG
            elif entry_short and position != SHORT:
                wants = SHORT
            if wants != FLAT and state[s, P_DIRECTION] == FLAT:
                wanted[s] = wants
                candidates[num_candidates] = s
                candidate_keys[num_candidates] = priority[signal_bar, s]
                num_candidates += 1

        # (2) entries by priority, while slots, cash and limits allow.
        if num_candidates > 0:
            _entry_order_nb(candidates, candidate_keys, num_candidates)
            for i in range(num_candidates):
                s = candidates[i]
                direction = wanted[s]
                held_value, gross, open_count = _marks_nb(state)
                if open_count >= portfolio.max_open_positions:
                    continue
                equity_now = cash + held_value
                signal_bar = int(state[s, P_LAST_BAR])
                entry_fill = fill_price_nb(open_[bar, s], direction, slippage_rate)
                fraction = signals.size_fraction[signal_bar, s]
                if math.isnan(fraction) and settings.sizing_mode == SIZING_ALL_IN:
                    # Default portfolio sizing: equal weight of equity per slot.
                    fraction = 1.0 / portfolio.max_open_positions
                units = position_units_nb(
                    equity_now,
                    entry_fill,
                    fee_rate,
                    settings.sizing_mode,
                    settings.sizing_value,
                    fraction,
                )
                if direction == LONG:
                    # Shared cash: a long never spends more than the cash there is.
                    units = min(units, max(cash, 0.0) / (entry_fill * (1.0 + fee_rate)))
                notional = cap_entry_notional_nb(
                    units * entry_fill,
                    gross,
                    settings.max_position_size,
                    settings.max_total_exposure,
                )
                if not math.isnan(portfolio.max_exposure_fraction):
                    room = portfolio.max_exposure_fraction * equity_now - gross
                    notional = min(notional, max(room, 0.0))
                verdict = check_entry_nb(
                    notional,
                    gross,
                    last_equity - day_start_equity,
                    open_count,
                    last_equity,
                    peak_equity,
                    daily_halt or drawdown_halt,
                    settings.max_position_size,
                    settings.max_daily_loss,
                    settings.max_total_exposure,
                    settings.max_drawdown_pct,
                    settings.max_positions,
                )
                if verdict != ENTRY_ALLOWED:
                    entry_denials[bar, s] = verdict
                    continue
                if notional < units * entry_fill:
                    units = notional / entry_fill
                if units <= 0.0:
                    continue
                entry_fee = fee_nb(units, entry_fill, fee_rate)
                cash += -direction * units * entry_fill - entry_fee
                total_fees += entry_fee
                state[s, P_DIRECTION] = direction
                state[s, P_UNITS] = units
                state[s, P_ENTRY_PRICE] = entry_fill
                state[s, P_ENTRY_FEE] = entry_fee
                state[s, P_ENTRY_BAR] = bar
                state[s, P_TAG] = signals.tag[signal_bar, s]
                state[s, P_EXTREME] = entry_fill
                state[s, P_STOP] = stop_loss_level_nb(direction, entry_fill, settings.stop_loss)
                state[s, P_TARGET] = take_profit_level_nb(
                    direction, entry_fill, settings.take_profit
                )
                state[s, P_MARK] = open_[bar, s]

        # (3) intrabar exits, then (4) marks at the close.
        any_open = False
        for s in range(k):
            if math.isnan(open_[bar, s]):
                continue
            position = int(state[s, P_DIRECTION])
            if position != FLAT:
                trail_level = trailing_level_nb(
                    position,
                    state[s, P_ENTRY_PRICE],
                    state[s, P_EXTREME],
                    settings.trailing_stop,
                    settings.trailing_activation,
                )
                reason, level = intrabar_exit_nb(
                    position,
                    open_[bar, s],
                    high[bar, s],
                    low[bar, s],
                    state[s, P_STOP],
                    state[s, P_TARGET],
                    trail_level,
                )
                if reason != EXIT_NONE:
                    exit_fill = fill_price_nb(level, -position, slippage_rate)
                    exit_fee = fee_nb(state[s, P_UNITS], exit_fill, fee_rate)
                    cash += _close_nb(
                        state, s, trades, num_trades, bar, exit_fill, exit_fee, reason
                    )
                    total_fees += exit_fee
                    num_trades += 1
                    any_open = True  # held during this bar
            position = int(state[s, P_DIRECTION])
            if position == LONG:
                state[s, P_EXTREME] = max(state[s, P_EXTREME], high[bar, s])
            elif position == SHORT:
                state[s, P_EXTREME] = min(state[s, P_EXTREME], low[bar, s])
            state[s, P_MARK] = close[bar, s]
            state[s, P_LAST_BAR] = bar
        held_value, gross, open_count = _marks_nb(state)
        if open_count > 0 or any_open:
            exposed_bars += 1
        last_equity = cash + held_value
        equity[bar] = last_equity
        exposure[bar] = gross
        cash_curve[bar] = cash
        peak_equity = max(peak_equity, last_equity)
        stop_peak = max(stop_peak, last_equity)
        daily_now, drawdown_now = close_breaches_nb(
            last_equity,
            peak_equity,
            last_equity - day_start_equity,
            daily_halt,
            drawdown_halt,
            settings.max_daily_loss,
            settings.max_drawdown_pct,
        )
        if daily_now:
            daily_halt = True
            breaker_trips[bar] = DENIED_DAILY_LOSS
        if drawdown_now:
            drawdown_halt = True
            breaker_trips[bar] = DENIED_DRAWDOWN
        if open_count > 0 and last_equity <= stop_peak * (1.0 - portfolio.portfolio_stop):
            # Close everything at each symbol's next open; the stop re-arms from here.
            for s in range(k):
                if state[s, P_DIRECTION] != FLAT:
                    state[s, P_LIQUIDATE] = 1.0
            stop_peak = last_equity

    # Still open after the last bar: valued at their last close, without exit costs.
    for s in range(k):
        if state[s, P_DIRECTION] != FLAT:
            last = int(state[s, P_LAST_BAR])
            _close_nb(state, s, trades, num_trades, last, state[s, P_MARK], 0.0, EXIT_END_OF_DATA)
            num_trades += 1
    return (
        equity,
        exposure,
        cash_curve,
        trades,
        num_trades,
        exposed_bars,
        total_fees,
        entry_denials,
        breaker_trips,
    )
