"""Compiled kernels of the fast SMA-crossover grid: shared averages, one pass per combination.

The grid computes each distinct moving average once (:func:`rolling_means_nb`: the
strategy's ``rolling_mean_nb``, bit for bit, with its own compensated add), then
:func:`crossover_grid_nb` runs every combination on all cores. Per combination,
:func:`simulate_crossover_nb` derives the crossings from the two cached averages (the rule
of ``crossed_above_nb``), simulates the long-only account with the backtest kernel's rules
(the part of ``backtest.kernel.simulate_nb`` that a long-only strategy without risk limits
reaches, built from the same ``*_nb`` rule functions) and streams each bar's equity into
the statistics that ``core.metrics.compute_metrics`` is defined on (``grid_stats_nb``); the
trades go into a buffer that the worker thread reuses. No equity curve is stored.

Two shortcuts skip work that cannot change the result. While the account is flat nothing
happens until the next entry signal and the equity stays the cash, so the loop jumps to
that signal and adds the flat bars' zero returns in a tight loop. While it holds a long with
no stop, target, trailing stop or max hold, only an exit signal can act, so each bar just
marks its equity. The tests compare every metric with one-by-one backtests, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from marketbot.backtest.kernel import KernelSettings
from marketbot.core.codes import EXIT_MAX_HOLD, EXIT_NONE, EXIT_SIGNAL, FLAT, LONG
from marketbot.core.costs_nb import fee_nb, fill_price_nb
from marketbot.optimize.grid_stats_nb import (
    STAT_DOWNSIDE,
    STAT_EXPOSED_BARS,
    STAT_FINAL_EQUITY,
    STAT_FINITE,
    STAT_HOLD_MEAN,
    STAT_LONGEST_DRAWDOWN,
    STAT_MAX_DEPTH,
    STAT_NUM_TRADES,
    STAT_RETURN_MEAN,
    STAT_RETURN_STD,
    STAT_TOTAL_FEES,
    EquityState,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
    trade_sums_nb,
)
from marketbot.risk.exits_nb import (
    gap_exit_reason_nb,
    intrabar_exit_nb,
    max_hold_reached_nb,
    stop_loss_level_nb,
    take_profit_level_nb,
    trailing_level_nb,
)
from marketbot.risk.sizing_nb import position_units_nb
from marketbot.strategies.indicators import _kahan_add_nb as kahan_add_nb


@njit(parallel=True, cache=True)
def rolling_means_nb(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One row per window: ``rolling_mean_nb(values, window)``, bit for bit, on all cores.

    The windows go four to a pass (:func:`_four_rolling_means_nb`), written straight into
    their rows: each average is a chain of dependent compensated additions that waits on
    latency, and four side by side overlap (a pass costs about what one average alone did).
    """
    count = windows.shape[0]
    groups = (count + 3) // 4
    means = np.empty((4 * groups, values.shape[0]), dtype=np.float64)
    for group in prange(groups):
        row = 4 * group
        # A last group short of four repeats its last window into the spare rows.
        w0 = windows[min(row, count - 1)]
        w1 = windows[min(row + 1, count - 1)]
        w2 = windows[min(row + 2, count - 1)]
        w3 = windows[min(row + 3, count - 1)]
        _four_rolling_means_nb(values, w0, w1, w2, w3, means[row : row + 4])
    return means[:count]


@njit(cache=True, nogil=True)
def _four_rolling_means_nb(
    values: np.ndarray, w0: int, w1: int, w2: int, w3: int, out: np.ndarray
) -> None:
    """``rolling_mean_nb`` of four windows into ``out[0..3]``: its updates, interleaved.

    Once every window is full (from the longest one on) each bar adds a value and drops
    one in every sum, with no branch; that second loop is four times faster than the first.
    """
    t0 = c0 = t1 = c1 = t2 = c2 = t3 = c3 = 0.0
    n = values.shape[0]
    full_from = min(max(w0, w1, w2, w3), n)
    for i in range(full_from):
        value = values[i]
        t0, c0 = _rolling_sum_step_nb(values, value, i, w0, t0, c0)
        t1, c1 = _rolling_sum_step_nb(values, value, i, w1, t1, c1)
        t2, c2 = _rolling_sum_step_nb(values, value, i, w2, t2, c2)
        t3, c3 = _rolling_sum_step_nb(values, value, i, w3, t3, c3)
        out[0, i] = t0 / w0 if i >= w0 - 1 else np.nan
        out[1, i] = t1 / w1 if i >= w1 - 1 else np.nan
        out[2, i] = t2 / w2 if i >= w2 - 1 else np.nan
        out[3, i] = t3 / w3 if i >= w3 - 1 else np.nan
    out0 = out[0]
    out1 = out[1]
    out2 = out[2]
    out3 = out[3]
    for i in range(full_from, n):
        value = values[i]
        t0, c0 = kahan_add_nb(t0, c0, value)
        t0, c0 = kahan_add_nb(t0, c0, -values[i - w0])
        t1, c1 = kahan_add_nb(t1, c1, value)
        t1, c1 = kahan_add_nb(t1, c1, -values[i - w1])
        t2, c2 = kahan_add_nb(t2, c2, value)
        t2, c2 = kahan_add_nb(t2, c2, -values[i - w2])
        t3, c3 = kahan_add_nb(t3, c3, value)
        t3, c3 = kahan_add_nb(t3, c3, -values[i - w3])
        out0[i] = t0 / w0
        out1[i] = t1 / w1
        out2[i] = t2 / w2
        out3[i] = t3 / w3


@njit(cache=True, inline="always")
def _rolling_sum_step_nb(
    values: np.ndarray, value: float, i: int, window: int, total: float, compensation: float
) -> tuple[float, float]:
    """``rolling_mean_nb``'s Kahan updates at bar ``i``: add the value, drop the oldest."""
    total, compensation = kahan_add_nb(total, compensation, value)
    if i >= window:
        total, compensation = kahan_add_nb(total, compensation, -values[i - window])
    return total, compensation


@njit(cache=True, inline="always")
def _crossings_nb(fast_mean: np.ndarray, slow_mean: np.ndarray, row: int) -> tuple[bool, bool]:
    """The signals of frame row ``row``: ``crossed_above_nb(fast, slow)[row]`` and its mirror.

    All four values are loaded and compared without short-circuiting: a branch on whether
    the fast average was below is as unpredictable as the data, and costs several times
    more than the loads.
    """
    fast_before = fast_mean[row - 1]
    slow_before = slow_mean[row - 1]
    fast_now = fast_mean[row]
    slow_now = slow_mean[row]
    up = (fast_before <= slow_before) & (fast_now > slow_now)
    down = (slow_before <= fast_before) & (slow_now > fast_now)
    return up, down


@njit(cache=True, inline="always")
def _next_entry_bar_nb(
    fast_mean: np.ndarray,
    slow_mean: np.ndarray,
    signal_start: int,
    first: int,
    bar: int,
    n: int,
) -> int:
    """The first bar from ``bar`` on whose open has an entry signal pending; n if none."""
    row = max(first + bar - 1, signal_start)
    last_row = first + n - 2  # the signal of the last bar never fills
    while row <= last_row:
        up, _ = _crossings_nb(fast_mean, slow_mean, row)
        if up:
            break
        row += 1
    return row - first + 1 if row <= last_row else n


@njit(cache=True, inline="always")
def _hold_until_exit_signal_nb(
    close: np.ndarray,
    fast_mean: np.ndarray,
    slow_mean: np.ndarray,
    signal_start: int,
    first: int,
    bar: int,
    cash: float,
    position: int,
    units: float,
    value: float,
    state: EquityState,
) -> tuple[int, float, EquityState]:
    """Hold a long from ``bar`` on, when no stop, target, trailing stop or max hold is set.

    Then a held bar only marks its equity (the exit rules' levels are NaN and never
    trigger, and the trailing extreme is never read), up to the bar whose open has an exit
    signal pending, which the caller simulates in full.

    Returns:
        (bars held, the last equity marked (``value`` if none), the statistics' state).
    """
    n = close.shape[0]
    start = bar
    while bar < n:
        row = first + bar - 1
        if row >= signal_start:
            _, exit_long = _crossings_nb(fast_mean, slow_mean, row)
            if exit_long:
                break
        value = cash + position * units * close[bar]
        state = equity_stats_mark_nb(state, bar, value)
        bar += 1
    return bar - start, value, state


@njit(cache=True, nogil=True)
def simulate_crossover_nb(  # noqa: PLR0912, PLR0915 - one flat loop, as in the kernel
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    fast_mean: np.ndarray,
    slow_mean: np.ndarray,
    signal_start: int,
    first: int,
    settings: KernelSettings,
    trade_pnl: np.ndarray,
    trade_pnl_pct: np.ndarray,
    out: np.ndarray,
) -> int:
    """Simulate a long-only SMA crossover as ``simulate_nb`` would, without risk limits.

    The averages cover the whole frame; bar ``b`` of the traded window is row ``first + b``
    of the frame. The signal at frame row ``g`` is the crossing of the two averages between
    rows ``g - 1`` and ``g`` (an entry when the fast one goes from at or below the slow one
    to above it, an exit for the mirror) and counts from row ``signal_start`` on (the
    warm-up mask of ``prepare_signals``; at least 1). Every rule (fills, fees, sizing,
    stops, max hold, the order within a bar) is that of ``simulate_nb`` with ``allow_short``
    off, no risk limits, no per-signal size and no tags.

    Writes the equity statistics into ``out`` (the ``STAT_*`` columns up to the trade
    counts) and each trade's P&L and P&L percent into the first ``num_trades`` values of
    ``trade_pnl`` and ``trade_pnl_pct`` (capacity n + 1). Returns ``num_trades``.
    """
    n = open_.shape[0]
    fee_rate = settings.fee_rate
    slippage_rate = settings.slippage_rate
    cash = settings.initial_cash
    position = FLAT
    units = 0.0
    entry_price = 0.0
    entry_fee = 0.0
    entry_bar = 0
    extreme = 0.0
    stop_level = math.nan
    target_level = math.nan
    num_trades = 0
    exposed_bars = 0
    total_fees = 0.0
    hold_bars = 0.0
    value = cash
    state = equity_stats_start_nb(cash)  # bar 0 cannot trade: its equity is the cash
    exit_rules_on = not (
        math.isnan(settings.stop_loss)
        and math.isnan(settings.take_profit)
        and math.isnan(settings.trailing_stop)
        and settings.max_hold_ns <= 0
    )

    bar = 1
    while bar < n:
        bar_open = open_[bar]
        row = first + bar - 1
        entry_long = False
        exit_long = False
        if row >= signal_start:
            entry_long, exit_long = _crossings_nb(fast_mean, slow_mean, row)
        # Conflicting signals on one bar cancel the entry; the exit stands.
        if entry_long and exit_long:
            entry_long = False
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
            reason = gap_exit_reason_nb(position, bar_open, stop_level, target_level, trail_level)
            if reason == EXIT_NONE and max_hold_reached_nb(
                times_ns[entry_bar], times_ns[bar], settings.max_hold_ns
            ):
                reason = EXIT_MAX_HOLD
            if reason == EXIT_NONE and exit_long:
                reason = EXIT_SIGNAL
            if reason != EXIT_NONE:
                exit_fill = fill_price_nb(bar_open, -position, slippage_rate)
                exit_fee = fee_nb(units, exit_fill, fee_rate)
                cash += position * units * exit_fill - exit_fee
                total_fees += exit_fee
                _record_trade_nb(
                    num_trades, trade_pnl, trade_pnl_pct, position, units, entry_price,
                    exit_fill, entry_fee, exit_fee,
                )  # fmt: skip
                hold_bars += bar - entry_bar
                num_trades += 1
                position = FLAT

        # (1) at the open: the entry, acted on against the position the signal saw.
        direction = FLAT
        if entry_long and position_at_signal != LONG:
            direction = LONG
        if direction != FLAT and position == FLAT:
            entry_fill = fill_price_nb(bar_open, direction, slippage_rate)
            new_units = position_units_nb(
                cash, entry_fill, fee_rate, settings.sizing_mode, settings.sizing_value, math.nan
            )
            if new_units > 0.0:
                position = direction
                units = new_units
                entry_price = entry_fill
                entry_fee = fee_nb(units, entry_fill, fee_rate)
                cash += -direction * units * entry_fill - entry_fee
                total_fees += entry_fee
                entry_bar = bar
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
                    num_trades, trade_pnl, trade_pnl_pct, position, units, entry_price,
                    exit_fill, entry_fee, exit_fee,
                )  # fmt: skip
                hold_bars += bar - entry_bar
                num_trades += 1
                position = FLAT

        # (3) at the close: raise the trailing extreme after the check, mark the equity.
        if position == LONG:
            extreme = max(extreme, high[bar])
        value = cash + position * units * close[bar]
        state = equity_stats_mark_nb(state, bar, value)
        bar += 1

        if position == FLAT and bar < n:
            # Flat: the equity stays the cash until the next entry signal fills.
            next_entry = _next_entry_bar_nb(fast_mean, slow_mean, signal_start, first, bar, n)
            state = equity_stats_unchanged_nb(state, bar, next_entry - 1)
            bar = next_entry
        elif position == LONG and not exit_rules_on and bar < n:
            # Long without exit rules: nothing but an exit signal can change the account.
            held, value, state = _hold_until_exit_signal_nb(
                close, fast_mean, slow_mean, signal_start, first, bar, cash, position, units,
                value, state,
            )  # fmt: skip
            exposed_bars += held
            bar += held

    if position != FLAT and n > 0:
        # Still open after the last bar: valued at the last close, without exit costs.
        _record_trade_nb(
            num_trades, trade_pnl, trade_pnl_pct, position, units, entry_price, close[n - 1],
            entry_fee, 0.0,
        )  # fmt: skip
        hold_bars += n - 1 - entry_bar
        num_trades += 1

    finite, mean, std, downside, depth, longest = equity_stats_finish_nb(state, n)
    out[STAT_FINAL_EQUITY] = value
    out[STAT_FINITE] = 1.0 if finite else 0.0
    out[STAT_RETURN_MEAN] = mean
    out[STAT_RETURN_STD] = std
    out[STAT_DOWNSIDE] = downside
    out[STAT_MAX_DEPTH] = depth
    out[STAT_LONGEST_DRAWDOWN] = longest
    out[STAT_EXPOSED_BARS] = exposed_bars
    out[STAT_TOTAL_FEES] = total_fees
    out[STAT_NUM_TRADES] = num_trades
    # Hold bars are whole numbers summing to at most n: exact in any order.
    out[STAT_HOLD_MEAN] = hold_bars / num_trades if num_trades > 0 else 0.0
    return num_trades


@njit(cache=True, inline="always")
def _record_trade_nb(
    index: int,
    trade_pnl: np.ndarray,
    trade_pnl_pct: np.ndarray,
    direction: int,
    units: float,
    entry_price: float,
    exit_price: float,
    entry_fee: float,
    exit_fee: float,
) -> None:
    """A trade's P&L and P&L percent, computed as ``kernel._record_trade_nb`` does."""
    pnl = direction * units * (exit_price - entry_price) - entry_fee - exit_fee
    trade_pnl[index] = pnl
    trade_pnl_pct[index] = 100.0 * pnl / (units * entry_price)


@njit(parallel=True, cache=True)
def crossover_grid_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    times_ns: np.ndarray,
    means: np.ndarray,
    fast_rows: np.ndarray,
    slow_rows: np.ndarray,
    signal_starts: np.ndarray,
    first: int,
    settings: KernelSettings,
    trade_buffers: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Simulate every combination and write its statistics (one ``STAT_*`` row each).

    Combination ``k`` crosses ``means[fast_rows[k]]`` with ``means[slow_rows[k]]`` from
    frame row ``signal_starts[k]``. Worker ``w`` (one per entry of ``trade_buffers``) takes
    combinations ``w, w + workers, ...`` and reuses its own trade buffers
    (``trade_buffers[w]``: 3 rows of n + 1, P&L, P&L percent and scratch).
    """
    workers = trade_buffers.shape[0]
    count = fast_rows.shape[0]
    for worker in prange(workers):
        trade_pnl = trade_buffers[worker, 0]
        trade_pnl_pct = trade_buffers[worker, 1]
        scratch = trade_buffers[worker, 2]
        for k in range(worker, count, workers):
            out = stats[k]
            num_trades = simulate_crossover_nb(
                open_, high, low, close, times_ns, means[fast_rows[k]], means[slow_rows[k]],
                signal_starts[k], first, settings, trade_pnl, trade_pnl_pct, out,
            )  # fmt: skip
            trade_sums_nb(trade_pnl, trade_pnl_pct, num_trades, scratch, out)
