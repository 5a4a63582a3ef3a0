"""The compiled backtest loop: one pass over plain arrays that owns everything path-dependent.

Conventions (docs/backtesting.md has the full text): a signal computed at the close of bar
``t`` fills at the open of bar ``t + 1``. Within a bar: (1) at the open, exits the open has
gapped through, then max-hold exits, then signal exits, then signal entries, all at the open;
(2) intrabar, stop-loss, then take-profit, then trailing stop against the bar's low/high, at
their level (on the entry bar too); (3) at the close, the trailing extreme is raised and the
equity is marked. Every fill pays slippage and a fee on notional.

The loop allocates nothing per bar: trade records go into arrays sized once up front (pages
are only touched as trades are written). The decision rules are the shared ``*_nb`` functions
of ``core.costs_nb``, ``risk.exits_nb`` and ``risk.sizing_nb``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from marketbot.core.codes import (
    EXIT_END_OF_DATA,
    EXIT_MAX_HOLD,
    EXIT_NONE,
    EXIT_SIGNAL,
    FLAT,
    LONG,
    SHORT,
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


class KernelSettings(NamedTuple):
    """Scalar settings of one simulation, as the kernel takes them (rates are fractions).

    Off rules and limits are ``NaN`` (``max_hold_ns`` 0). Build it with
    ``BacktestConfig.kernel_settings``. The risk limits are those of ``RiskLimits`` in quote
    currency; ``daily_reset_offset_ns`` is the daily reset's offset from UTC midnight.
    """

    initial_cash: float
    fee_rate: float
    slippage_rate: float
    stop_loss: float
    take_profit: float
    trailing_stop: float
    trailing_activation: float
    max_hold_ns: int
    sizing_mode: int
    sizing_value: float
    allow_short: bool
    max_position_size: float
    max_total_exposure: float
    max_positions: float
    max_daily_loss: float
    max_drawdown_pct: float
    daily_reset_offset_ns: int


class KernelSignals(NamedTuple):
    """Per-bar signal arrays, all of length n; signals at bar t act at the open of t + 1."""

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray
    exits_short: np.ndarray
    size_fraction: np.ndarray
    tag: np.ndarray


class KernelOutput(NamedTuple):
    """What one simulation returns; trade arrays hold ``num_trades`` valid records."""

    equity: np.ndarray
    num_trades: int
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    direction: np.ndarray
    size: np.ndarray
    entry_price: np.ndarray
    exit_price: np.ndarray
    pnl: np.ndarray
    pnl_pct: np.ndarray
    fees: np.ndarray
    exit_reason: np.ndarray
    tag: np.ndarray
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
    return KernelOutput(*simulate_nb(open_, high, low, close, times_ns, signals, settings))


@njit(cache=True, nogil=True)
def simulate_nb(  # noqa: PLR0912, PLR0915 - one flat loop is what keeps the kernel fast
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    signals: KernelSignals,
    settings: KernelSettings,
) -> tuple[
    np.ndarray,
    int,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    np.ndarray,
    int,
    float,
    np.ndarray,
    np.ndarray,
]:
    """Simulate one account trading one symbol; see the module docstring for the rules."""
    n = open_.shape[0]
    fee_rate = settings.fee_rate
    slippage_rate = settings.slippage_rate
    equity = np.empty(n, dtype=np.float64)
    # Every trade needs its own entry at some bar open after the first, so n + 1 is ample.
    capacity = n + 1
    t_entry_bar = np.empty(capacity, dtype=np.int64)
    t_exit_bar = np.empty(capacity, dtype=np.int64)
    t_direction = np.empty(capacity, dtype=np.int64)
    t_size = np.empty(capacity, dtype=np.float64)
    t_entry_price = np.empty(capacity, dtype=np.float64)
    t_exit_price = np.empty(capacity, dtype=np.float64)
    t_pnl = np.empty(capacity, dtype=np.float64)
    t_pnl_pct = np.empty(capacity, dtype=np.float64)
    t_fees = np.empty(capacity, dtype=np.float64)
    t_reason = np.empty(capacity, dtype=np.int64)
    t_tag = np.empty(capacity, dtype=np.int64)

    cash = settings.initial_cash
    position = FLAT
    units = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    entry_bar = 0
    entry_tag = -1
    extreme = 0.0
    stop_level = math.nan
    target_level = math.nan
    num_trades = 0
    exposed_bars = 0
    total_fees = 0.0
    # Risk state: the equity marked at the last close, its high-water mark, the equity at
    # the start of the risk day, and the circuit breaker (daily trips clear at the reset).
    entry_denials = np.zeros(n, dtype=np.int8)
    breaker_trips = np.zeros(n, dtype=np.int8)
    last_equity = settings.initial_cash
    peak_equity = settings.initial_cash
    day_start_equity = settings.initial_cash
    next_reset_ns = next_daily_reset_ns_nb(times_ns[0], settings.daily_reset_offset_ns) if n else 0
    daily_halt = False
    drawdown_halt = False
    # Without limits a run pays for none of the risk bookkeeping below.
    limits_on = (
        not math.isnan(settings.max_daily_loss)
        or not math.isnan(settings.max_drawdown_pct)
        or not math.isnan(settings.max_position_size)
        or not math.isnan(settings.max_total_exposure)
        or not math.isnan(settings.max_positions)
    )

    for bar in range(n):
        bar_open = open_[bar]
        if limits_on and times_ns[bar] >= next_reset_ns:
            next_reset_ns = next_daily_reset_ns_nb(times_ns[bar], settings.daily_reset_offset_ns)
            day_start_equity = last_equity
            daily_halt = False
        if bar > 0:
            signal_bar = bar - 1
            entry_long = signals.entries_long[signal_bar]
            exit_long = signals.exits_long[signal_bar]
            entry_short = settings.allow_short and signals.entries_short[signal_bar]
            exit_short = signals.exits_short[signal_bar]
            # Conflicting signals on one bar cancel the entry; the exit stands.
            if entry_long and (exit_long or entry_short):
                entry_long = False
            if entry_short and (exit_short or signals.entries_long[signal_bar]):
                entry_short = False
            position_at_signal = position

            # (1) at the open: gapped stops, max hold, then signal exits.
            if position != FLAT:
                trail_level = trailing_level_nb(
                    position,
                    entry_price,
                    extreme,
                    settings.trailing_stop,
                    settings.trailing_activation,
                )
                reason = gap_exit_reason_nb(
                    position, bar_open, stop_level, target_level, trail_level
                )
                if reason == EXIT_NONE and max_hold_reached_nb(
                    times_ns[entry_bar], times_ns[bar], settings.max_hold_ns
                ):
                    reason = EXIT_MAX_HOLD
                if reason == EXIT_NONE and (
                    (position == LONG and (exit_long or entry_short))
                    or (position == SHORT and (exit_short or entry_long))
                ):
                    reason = EXIT_SIGNAL
                if reason != EXIT_NONE:
                    exit_fill = fill_price_nb(bar_open, -position, slippage_rate)
                    exit_fee = fee_nb(units, exit_fill, fee_rate)
                    cash += position * units * exit_fill - exit_fee
                    total_fees += exit_fee
                    _record_trade_nb(
                        num_trades, t_entry_bar, t_exit_bar, t_direction, t_size,
                        t_entry_price, t_exit_price, t_pnl, t_pnl_pct, t_fees, t_reason,
                        t_tag, entry_bar, bar, position, units, entry_price, exit_fill,
                        entry_fee, exit_fee, reason, entry_tag,
                    )  # fmt: skip
                    num_trades += 1
                    position = FLAT

            # (1) at the open: entries, acted on against the position the signal saw.
            direction = FLAT
            if entry_long and position_at_signal != LONG:
                direction = LONG
            elif entry_short and position_at_signal != SHORT:
                direction = SHORT
            if direction != FLAT and position == FLAT:
                entry_fill = fill_price_nb(bar_open, direction, slippage_rate)
                new_units = position_units_nb(
                    cash,
                    entry_fill,
                    fee_rate,
                    settings.sizing_mode,
                    settings.sizing_value,
                    signals.size_fraction[signal_bar],
                )
                verdict = ENTRY_ALLOWED
                if limits_on:
                    notional = cap_entry_notional_nb(
                        new_units * entry_fill,
                        0.0,
                        settings.max_position_size,
                        settings.max_total_exposure,
                    )
                    if notional < new_units * entry_fill:
                        new_units = notional / entry_fill
                    verdict = check_entry_nb(
                        notional,
                        0.0,
                        last_equity - day_start_equity,
                        0,
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
                    entry_denials[bar] = verdict
                elif new_units > 0.0:
                    position = direction
                    units = new_units
                    entry_price = entry_fill
                    entry_fee = fee_nb(units, entry_fill, fee_rate)
                    cash += -direction * units * entry_fill - entry_fee
                    total_fees += entry_fee
                    entry_bar = bar
                    entry_tag = signals.tag[signal_bar]
                    extreme = entry_fill
                    stop_level = stop_loss_level_nb(direction, entry_fill, settings.stop_loss)
                    target_level = take_profit_level_nb(direction, entry_fill, settings.take_profit)

        # (2) intrabar: stop-loss, take-profit, trailing stop at their levels.
        if position != FLAT:
            exposed_bars += 1
            trail_level = trailing_level_nb(
                position,
                entry_price,
                extreme,
                settings.trailing_stop,
                settings.trailing_activation,
            )
            reason, level = intrabar_exit_nb(
                position, bar_open, high[bar], low[bar], stop_level, target_level, trail_level
            )
            if reason != EXIT_NONE:
                exit_fill = fill_price_nb(level, -position, slippage_rate)
                exit_fee = fee_nb(units, exit_fill, fee_rate)
                cash += position * units * exit_fill - exit_fee
                total_fees += exit_fee
                _record_trade_nb(
                    num_trades, t_entry_bar, t_exit_bar, t_direction, t_size, t_entry_price,
                    t_exit_price, t_pnl, t_pnl_pct, t_fees, t_reason, t_tag, entry_bar, bar,
                    position, units, entry_price, exit_fill, entry_fee, exit_fee, reason,
                    entry_tag,
                )  # fmt: skip
                num_trades += 1
                position = FLAT

        # (3) at the close: raise the trailing extreme after the check, mark the equity.
        if position == LONG:
            extreme = max(extreme, high[bar])
        elif position == SHORT:
            extreme = min(extreme, low[bar])
        last_equity = cash + position * units * close[bar]
        equity[bar] = last_equity
        if not limits_on:
            continue
        peak_equity = max(peak_equity, last_equity)
        # A breach at any close trips the breaker, as the live bot's account update does.
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

    if position != FLAT and n > 0:
        # Still open after the last bar: valued at the last close, without exit costs.
        _record_trade_nb(
            num_trades, t_entry_bar, t_exit_bar, t_direction, t_size, t_entry_price,
            t_exit_price, t_pnl, t_pnl_pct, t_fees, t_reason, t_tag, entry_bar, n - 1,
            position, units, entry_price, close[n - 1], entry_fee, 0.0, EXIT_END_OF_DATA,
            entry_tag,
        )  # fmt: skip
        num_trades += 1

    return (
        equity,
        num_trades,
        t_entry_bar,
        t_exit_bar,
        t_direction,
        t_size,
        t_entry_price,
        t_exit_price,
        t_pnl,
        t_pnl_pct,
        t_fees,
        t_reason,
        t_tag,
        exposed_bars,
        total_fees,
        entry_denials,
        breaker_trips,
    )


@njit(cache=True, inline="always")
def _record_trade_nb(
    index: int,
    t_entry_bar: np.ndarray,
    t_exit_bar: np.ndarray,
    t_direction: np.ndarray,
    t_size: np.ndarray,
    t_entry_price: np.ndarray,
    t_exit_price: np.ndarray,
    t_pnl: np.ndarray,
    t_pnl_pct: np.ndarray,
    t_fees: np.ndarray,
    t_reason: np.ndarray,
    t_tag: np.ndarray,
    entry_bar: int,
    exit_bar: int,
    direction: int,
    units: float,
    entry_price: float,
    exit_price: float,
    entry_fee: float,
    exit_fee: float,
    reason: int,
    tag: int,
) -> None:
    pnl = direction * units * (exit_price - entry_price) - entry_fee - exit_fee
    t_entry_bar[index] = entry_bar
    t_exit_bar[index] = exit_bar
    t_direction[index] = direction
    t_size[index] = units
    t_entry_price[index] = entry_price
    t_exit_price[index] = exit_price
    t_pnl[index] = pnl
    t_pnl_pct[index] = 100.0 * pnl / (units * entry_price)
    t_fees[index] = entry_fee + exit_fee
    t_reason[index] = reason
    t_tag[index] = tag
