"""Compiled kernels of the fast SMA-crossover grid: shared averages, one pass per combination.

The grid computes each distinct moving average once (:func:`rolling_means_nb`: the
strategy's ``rolling_mean_nb``, bit for bit, with its own compensated add), then
:func:`crossover_grid_nb` runs every combination on all cores. Per combination,
:func:`simulate_crossover_nb` derives the crossings from the two cached averages (the rule
of ``crossed_above_nb``), simulates the long-only account with the backtest kernel's rules
(the bar steps of ``backtest.step_nb`` that the single and portfolio kernels call, for a
long-only strategy without risk limits) and streams each bar's equity into the statistics
that ``core.metrics.compute_metrics`` is defined on (``grid_stats_nb``); the trade records
go into a buffer that the worker thread reuses. No equity curve is stored.

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
from marketbot.backtest.step_nb import (
    Account,
    Book,
    Position,
    RiskState,
    bar_orders_nb,
    close_step_nb,
    end_of_data_nb,
    enter_position_nb,
    entry_direction_nb,
    exit_position_nb,
    flat_position_nb,
    intrabar_step_nb,
    open_exit_reason_nb,
    size_entry_nb,
)
from marketbot.core.codes import EXIT_NONE, FLAT, LONG
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
    position: Position,
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
    held = position.direction * position.units
    while bar < n:
        row = first + bar - 1
        if row >= signal_start:
            _, exit_long = _crossings_nb(fast_mean, slow_mean, row)
            if exit_long:
                break
        value = cash + held * close[bar]
        state = equity_stats_mark_nb(state, bar, value)
        bar += 1
    return bar - start, value, state


@njit(cache=True, nogil=True)
def simulate_crossover_nb(
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
    trades: np.ndarray,
    out: np.ndarray,
) -> int:
    """Simulate a long-only SMA crossover as ``simulate_nb`` would, without risk limits.

    The averages cover the whole frame; bar ``b`` of the traded window is row ``first + b``
    of the frame. The signal at frame row ``g`` is the crossing of the two averages between
    rows ``g - 1`` and ``g`` (an entry when the fast one goes from at or below the slow one
    to above it, an exit for the mirror) and counts from row ``signal_start`` on (the
    warm-up mask of ``prepare_signals``; at least 1). Every step of a bar is the one
    ``simulate_nb`` calls (``backtest.step_nb``), with ``allow_short`` off, no risk limits,
    no per-signal size and no tags.

    Writes the equity statistics into ``out`` (the ``STAT_*`` columns up to the trade
    counts and the mean hold) and the trade records into ``trades`` (``TRADE_DTYPE``,
    capacity n + 1). Returns the number of trades.
    """
    n = open_.shape[0]
    account = Account(settings.initial_cash, 0.0, 0)
    position = flat_position_nb()
    no_risk = RiskState(math.nan, math.nan, math.nan, 0, False, False)
    exposed_bars = 0
    value = account.cash
    state = equity_stats_start_nb(value)  # bar 0 cannot trade: its equity is the cash
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
        orders = bar_orders_nb(entry_long, exit_long, False, False, False)
        position_at_signal = position.direction
        # (1) at the open: gapped stops, max hold, the signal exit, then the entry.
        if position.direction != FLAT:
            reason = open_exit_reason_nb(position, bar_open, times_ns[bar], orders, settings)
            if reason != EXIT_NONE:
                account, position = exit_position_nb(
                    account, position, bar_open, bar, reason, 0, trades, settings
                )
        direction = entry_direction_nb(orders, position_at_signal)
        if direction != FLAT and position.direction == FLAT:
            book = Book(account.cash, account.cash, 0.0, 0)
            fill, units, _ = size_entry_nb(
                direction, bar_open, math.nan, book, no_risk, math.nan, False, settings
            )
            if units > 0.0:
                account, position = enter_position_nb(
                    account, direction, fill, units, bar, times_ns[bar], -1, settings
                )
        # (2) intrabar: stop-loss, trailing stop, take-profit at their levels.
        if position.direction != FLAT:
            exposed_bars += 1
            account, position = intrabar_step_nb(
                account, position, bar_open, high[bar], low[bar], bar, 0, trades, settings
            )
        # (3) at the close: raise the trailing extreme after the check, mark the equity.
        position, held_value = close_step_nb(position, high[bar], low[bar], close[bar], settings)
        value = account.cash + held_value
        state = equity_stats_mark_nb(state, bar, value)
        bar += 1

        if position.direction == FLAT and bar < n:
            # Flat: the equity stays the cash until the next entry signal fills.
            next_entry = _next_entry_bar_nb(fast_mean, slow_mean, signal_start, first, bar, n)
            state = equity_stats_unchanged_nb(state, bar, next_entry - 1)
            bar = next_entry
        elif position.direction == LONG and not exit_rules_on and bar < n:
            # Long without exit rules: nothing but an exit signal can change the account.
            held, value, state = _hold_until_exit_signal_nb(
                close, fast_mean, slow_mean, signal_start, first, bar, account.cash, position,
                value, state,
            )  # fmt: skip
            exposed_bars += held
            bar += held

    if position.direction != FLAT and n > 0:
        account, position = end_of_data_nb(account, position, n - 1, close[n - 1], 0, trades)

    _write_statistics_nb(out, state, n, value, exposed_bars, account, trades)
    return account.num_trades


@njit(cache=True, inline="always")
def _write_statistics_nb(
    out: np.ndarray,
    state: EquityState,
    n: int,
    final_equity: float,
    exposed_bars: int,
    account: Account,
    trades: np.ndarray,
) -> None:
    """The ``STAT_*`` columns up to the trade counts, and the mean hold of the trades."""
    finite, mean, std, downside, depth, longest = equity_stats_finish_nb(state, n)
    out[STAT_FINAL_EQUITY] = final_equity
    out[STAT_FINITE] = 1.0 if finite else 0.0
    out[STAT_RETURN_MEAN] = mean
    out[STAT_RETURN_STD] = std
    out[STAT_DOWNSIDE] = downside
    out[STAT_MAX_DEPTH] = depth
    out[STAT_LONGEST_DRAWDOWN] = longest
    out[STAT_EXPOSED_BARS] = exposed_bars
    out[STAT_TOTAL_FEES] = account.total_fees
    num_trades = account.num_trades
    out[STAT_NUM_TRADES] = num_trades
    # Hold bars are whole numbers summing to at most n: exact in any order.
    hold_bars = 0
    for i in range(num_trades):
        hold_bars += trades[i]["exit_bar"] - trades[i]["entry_bar"]
    out[STAT_HOLD_MEAN] = hold_bars / num_trades if num_trades > 0 else 0.0


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
    scratch_buffers: np.ndarray,
    stats: np.ndarray,
) -> None:
    """Simulate every combination and write its statistics (one ``STAT_*`` row each).

    Combination ``k`` crosses ``means[fast_rows[k]]`` with ``means[slow_rows[k]]`` from
    frame row ``signal_starts[k]``. Worker ``w`` (one per row of ``trade_buffers``) takes
    combinations ``w, w + workers, ...`` and reuses its own buffers: ``trade_buffers[w]``
    (n + 1 ``TRADE_DTYPE`` records) and ``scratch_buffers[w]`` (n + 1 floats).
    """
    workers = trade_buffers.shape[0]
    count = fast_rows.shape[0]
    for worker in prange(workers):
        trades = trade_buffers[worker]
        scratch = scratch_buffers[worker]
        for k in range(worker, count, workers):
            out = stats[k]
            num_trades = simulate_crossover_nb(
                open_, high, low, close, times_ns, means[fast_rows[k]], means[slow_rows[k]],
                signal_starts[k], first, settings, trades, out,
            )  # fmt: skip
            trade_sums_nb(trades["pnl"], trades["pnl_pct"], num_trades, scratch, out)
