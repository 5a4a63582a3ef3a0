"""Compiled kernel of the fast grid: every combination of a strategy's grid hook, in parallel.

:func:`grid_nb` runs the combinations on all cores. Per combination, the strategy's signal
kernel (``Strategy.grid_signals``: a compiled function of
``strategies.indicators_nb.GRID_SIGNALS_SIGNATURE``, passed in as a first-class function so
that this loop compiles once for every strategy) fills the worker's entry and exit
buffers from indicator rows computed once per distinct parameter value; then
:func:`simulate_long_nb` simulates the long-only account with the backtest kernel's rules
(the bar steps of ``backtest.step_nb`` that the single and portfolio kernels call, for a
long-only strategy without risk limits) and streams each bar's equity into the statistics
that ``core.metrics.compute_metrics`` is defined on (``grid_stats_nb``), and each day's
equity into the daily-return sums of the overfitting diagnostics. The trade records go
into a buffer that the worker thread reuses. No equity curve is stored.

Two shortcuts skip work that cannot change the result. While the account is flat nothing
happens until the next entry signal and the equity stays the cash, so the loop jumps to
that signal and adds the flat bars' zero returns in a tight loop. While it holds a long with
no stop, target, trailing stop or max hold, only an exit signal can act, so each bar just
marks its equity. The tests compare every metric with one-by-one backtests, bit for bit.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from marketbot.backtest.step_nb import (
    Account,
    Book,
    KernelSettings,
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
    DailyLayout,
    DailyState,
    EquityState,
    daily_held_nb,
    daily_mark_nb,
    daily_start_nb,
    daily_sums_nb,
    daily_unchanged_nb,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
    trade_sums_nb,
)


class GridBars(NamedTuple):
    """The traded bars (bar ``b`` is row ``first + b`` of the frame)."""

    open_: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    times_ns: np.ndarray


class GridInputs(NamedTuple):
    """What the signal kernel reads, per combination of one launch.

    Attributes:
        tables: Indicator rows over the whole frame (row x frame bar), C-contiguous.
        rows: Per combination, the table row of each slot (-1: unused).
        values: Per combination, its numbers.
        signal_starts: Per combination, the first frame row whose signals count (the
            warm-up mask of ``prepare_signals``).
        first: The frame row of the first traded bar.
    """

    tables: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    signal_starts: np.ndarray
    first: int


class GridBuffers(NamedTuple):
    """One row per worker thread, reused from combination to combination.

    Attributes:
        entries: Long entries by frame row (bool).
        exits: Long exits by frame row (bool).
        trades: Trade records (``TRADE_DTYPE``), n + 1 per worker.
        day_values: The equity at each day end (one per day end of the layout).
    """

    entries: np.ndarray
    exits: np.ndarray
    trades: np.ndarray
    day_values: np.ndarray


@njit(cache=True, inline="always")
def _next_entry_bar_nb(entries: np.ndarray, first: int, bar: int, n: int) -> int:
    """The first bar from ``bar`` on whose open has an entry signal pending; n if none."""
    row = first + bar - 1
    last_row = first + n - 2  # the signal of the last bar never fills
    while row <= last_row and not entries[row]:
        row += 1
    return row - first + 1 if row <= last_row else n


@njit(cache=True, inline="always")
def _hold_until_exit_signal_nb(
    close: np.ndarray,
    exits: np.ndarray,
    first: int,
    bar: int,
    held: float,
    cash: float,
    value: float,
    state: EquityState,
    daily: DailyState,
    layout: DailyLayout,
    day_values: np.ndarray,
) -> tuple[int, float, EquityState, DailyState]:
    """Hold a long from ``bar`` on, when no stop, target, trailing stop or max hold is set.

    Then a held bar only marks its equity (the exit rules' levels are NaN and never
    trigger, and the trailing extreme is never read), up to the bar whose open has an exit
    signal pending, which the caller simulates in full.

    Returns:
        (bars held, the last equity marked (``value`` if none), the statistics' states).
    """
    n = close.shape[0]
    start = bar
    while bar < n and not exits[first + bar - 1]:
        value = cash + held * close[bar]
        state = equity_stats_mark_nb(state, bar, value)
        bar += 1
    # The day ends among the held bars, after the loop: a check per bar costs more.
    daily = daily_held_nb(daily, bar - 1, cash, held, close, layout, day_values)
    return bar - start, value, state, daily


@njit(cache=True, nogil=True)
def simulate_long_nb(
    bars: GridBars,
    entries: np.ndarray,
    exits: np.ndarray,
    first: int,
    settings: KernelSettings,
    trades: np.ndarray,
    layout: DailyLayout,
    day_values: np.ndarray,
    daily_row: np.ndarray,
    out: np.ndarray,
) -> int:
    """Simulate long-only signals as ``simulate_nb`` would, without risk limits.

    ``entries`` and ``exits`` are indexed by frame row: the orders at the open of bar ``b``
    come from row ``first + b - 1``. Every step of a bar is the one ``simulate_nb`` calls
    (``backtest.step_nb``), with ``allow_short`` off, no risk limits, no per-signal size and
    no tags.

    Writes the equity statistics into ``out`` (the ``STAT_*`` columns up to the trade
    counts and the mean hold), the daily-return sums into ``daily_row`` (``DAILY_*``, from
    the equity at each day end, kept in ``day_values``; none when the layout has no day
    end) and the trade records into ``trades`` (``TRADE_DTYPE``, capacity n + 1). Returns
    the number of trades.
    """
    open_, high, low, close, times_ns = bars
    n = open_.shape[0]
    account = Account(settings.initial_cash, 0.0, 0)
    position = flat_position_nb()
    no_risk = RiskState(math.nan, math.nan, math.nan, 0, False, False)
    exposed_bars = 0
    value = account.cash
    state = equity_stats_start_nb(value)  # bar 0 cannot trade: its equity is the cash
    daily = daily_start_nb(layout, value, day_values)
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
        orders = bar_orders_nb(entries[row], exits[row], False, False, False)
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
        daily = daily_mark_nb(daily, bar, value, layout, day_values)
        bar += 1

        if position.direction == FLAT and bar < n:
            # Flat: the equity stays the cash until the next entry signal fills.
            next_entry = _next_entry_bar_nb(entries, first, bar, n)
            state = equity_stats_unchanged_nb(state, bar, next_entry - 1)
            daily = daily_unchanged_nb(daily, next_entry - 1, value, layout, day_values)
            bar = next_entry
        elif position.direction == LONG and not exit_rules_on and bar < n:
            # Long without exit rules: nothing but an exit signal can change the account.
            held, value, state, daily = _hold_until_exit_signal_nb(
                close, exits, first, bar, position.direction * position.units, account.cash,
                value, state, daily, layout, day_values,
            )  # fmt: skip
            exposed_bars += held
            bar += held

    if position.direction != FLAT and n > 0:
        account, position = end_of_data_nb(account, position, n - 1, close[n - 1], 0, trades)

    _write_statistics_nb(out, state, n, value, exposed_bars, account, trades)
    daily_sums_nb(day_values, daily[1], layout, daily_row)
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
def grid_nb(
    signal_kernel: object,
    bars: GridBars,
    inputs: GridInputs,
    settings: KernelSettings,
    buffers: GridBuffers,
    layout: DailyLayout,
    stats: np.ndarray,
    daily: np.ndarray,
) -> None:
    """Simulate every combination: its ``STAT_*`` row in ``stats``, its daily sums in ``daily``.

    Worker ``w`` (one per row of the buffers) takes combinations ``w, w + workers, ...``:
    ``signal_kernel`` fills its entry and exit buffers over the traded rows from the
    combination's signal start on (the rows before are cleared: the warm-up mask), then
    :func:`simulate_long_nb` runs it and the trade sums finish its row.
    """
    workers = buffers.trades.shape[0]
    count = inputs.rows.shape[0]
    first = inputs.first
    stop = first + bars.close.shape[0] - 1  # one past the last row whose signal can fill
    for worker in prange(workers):
        entries = buffers.entries[worker]
        exits = buffers.exits[worker]
        trades = buffers.trades[worker]
        day_values = buffers.day_values[worker]
        for k in range(worker, count, workers):
            start = min(max(first, inputs.signal_starts[k]), stop)
            entries[first:start] = False
            exits[first:start] = False
            if start < stop:
                signal_kernel(  # type: ignore[operator]  # a numba first-class function
                    np.int64(k), inputs.tables, inputs.rows, inputs.values, np.int64(start),
                    np.int64(stop), entries, exits,
                )  # fmt: skip
            out = stats[k]
            num_trades = simulate_long_nb(
                bars, entries, exits, first, settings, trades, layout, day_values, daily[k], out
            )
            trade_sums_nb(trades["pnl"], trades["pnl_pct"], num_trades, out)
