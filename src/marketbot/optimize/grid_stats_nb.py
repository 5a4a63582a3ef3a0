"""The fast grid's per-combination statistics row, from the shared metric reductions.

The fast grid keeps neither the equity curve nor the trades of a combination. It feeds
``core.metrics_nb``'s equity state one bar at a time (re-exported here for it) and reduces its
reused trade buffers with ``core.metrics_nb.trade_sums_nb``: the very functions
``compute_metrics`` calls, so the grid's metrics equal the engine's by construction.

The statistics of one combination are a row of ``NUM_STATS`` floats; the ``STAT_*`` names
are its columns.

For the overfitting diagnostics the grid also keeps each combination's *daily* returns
(the equity at each UTC day's last bar over the previous day's, as
``optimize.diagnostics.daily_returns``), reduced to a second row: ``DAILY_*`` columns plus
two per CSCV block. While it simulates, the equity at each day end goes into a buffer of
the worker (:func:`daily_start_nb`, :func:`daily_mark_nb` per bar, :func:`daily_unchanged_nb`
per run of bars with one equity, :func:`daily_held_nb` after a run of held bars: a store per
day, no arithmetic in the bar loop); then
:func:`daily_sums_nb` reduces the returns r: per block the sum of r and of r^2 (what the
PBO reads), over all returns the sums of r^3 and r^4 (the DSR's skewness and kurtosis, with
the blocks' sums), the lowest and highest r, and whether every r is finite: a few floats
per block per combination, whatever the number of bars. The sums are of the returns
themselves (no per-combination shift), so two combinations with the same returns on a block
have bit-identical sums there, and the PBO's ties stay ties.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
from numba import njit

from marketbot.core.metrics_nb import (
    EquityState,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
)
from marketbot.core.metrics_nb import trade_sums_nb as sums_of_trades_nb

__all__ = [
    "DAILY_BLOCKS",
    "NUM_STATS",
    "DailyLayout",
    "DailyState",
    "EquityState",
    "daily_held_nb",
    "daily_mark_nb",
    "daily_start_nb",
    "daily_sums_nb",
    "daily_unchanged_nb",
    "equity_stats_finish_nb",
    "equity_stats_mark_nb",
    "equity_stats_start_nb",
    "equity_stats_unchanged_nb",
    "trade_sums_nb",
]

STAT_FINAL_EQUITY: Final = 0
STAT_FINITE: Final = 1
STAT_RETURN_MEAN: Final = 2
STAT_RETURN_STD: Final = 3
STAT_DOWNSIDE: Final = 4
STAT_MAX_DEPTH: Final = 5
STAT_LONGEST_DRAWDOWN: Final = 6
STAT_EXPOSED_BARS: Final = 7
STAT_TOTAL_FEES: Final = 8
STAT_NUM_TRADES: Final = 9
STAT_WINS: Final = 10
STAT_GROSS_PROFIT: Final = 11
STAT_GROSS_LOSS: Final = 12
STAT_PNL_MEAN: Final = 13
STAT_PNL_STD: Final = 14
STAT_PNL_PCT_MEAN: Final = 15
STAT_PNL_PCT_MAX: Final = 16
STAT_PNL_PCT_MIN: Final = 17
STAT_HOLD_MEAN: Final = 18
NUM_STATS: Final = 19

DAILY_CUBES: Final = 0  # sum of r^3
DAILY_FOURTHS: Final = 1  # sum of r^4
DAILY_LOWEST: Final = 2  # the lowest r
DAILY_HIGHEST: Final = 3  # the highest r
DAILY_FINITE: Final = 4  # 1.0 when every r is finite
DAILY_BLOCKS: Final = 5  # block b's sum of r at 5 + b, its sum of squares at 5 + B + b


class DailyLayout(NamedTuple):
    """Where the daily returns fall in the traded bars, shared by every combination.

    Attributes:
        day_ends: The bars that end a UTC day, ascending (the last bar always), then -1;
            return ``j`` is the equity at ``day_ends[j + 1]`` over the equity at
            ``day_ends[j]``. Only the -1: no daily returns are kept.
        block_starts: The first return of each CSCV block, then the number of returns
            (``num_blocks + 1`` entries, ascending).
        num_blocks: B, the blocks of the row (at least 1).
    """

    day_ends: np.ndarray
    block_starts: np.ndarray
    num_blocks: int


# (the next bar that ends a day (-1: none), the day ends marked so far)
DailyState = tuple[int, int]


@njit(cache=True, nogil=True)
def trade_sums_nb(pnl: np.ndarray, pnl_pct: np.ndarray, count: int, out: np.ndarray) -> None:
    """Write the trade sums of the first ``count`` trades into the ``STAT_*`` columns of ``out``.

    Wins, gross profit and loss, the P&L's mean and std (-1 where the SQN stays 0), the
    P&L percent's mean, best and worst; clears ``STAT_FINITE`` when a P&L is not finite.
    """
    finite, wins, gross_profit, gross_loss, mean, std, pct_mean, best, worst = sums_of_trades_nb(
        pnl, pnl_pct, count
    )
    out[STAT_WINS] = wins
    out[STAT_GROSS_PROFIT] = gross_profit
    out[STAT_GROSS_LOSS] = gross_loss
    out[STAT_PNL_MEAN] = mean
    out[STAT_PNL_STD] = std
    out[STAT_PNL_PCT_MEAN] = pct_mean
    out[STAT_PNL_PCT_MAX] = best
    out[STAT_PNL_PCT_MIN] = worst
    if not finite:
        out[STAT_FINITE] = 0.0


@njit(cache=True, inline="always")
def daily_start_nb(layout: DailyLayout, value: float, day_values: np.ndarray) -> DailyState:
    """The state after bar 0, whose equity is ``value``."""
    return daily_mark_nb((layout.day_ends[0], 0), 0, value, layout, day_values)


@njit(cache=True, inline="always")
def daily_mark_nb(
    state: DailyState, bar: int, value: float, layout: DailyLayout, day_values: np.ndarray
) -> DailyState:
    """Bar ``bar`` closed with equity ``value``: keep it if the bar ends a day."""
    next_bar, seen = state
    if bar != next_bar:
        return state
    day_values[seen] = value
    return layout.day_ends[seen + 1], seen + 1


@njit(cache=True, inline="always")
def daily_unchanged_nb(
    state: DailyState, last_bar: int, value: float, layout: DailyLayout, day_values: np.ndarray
) -> DailyState:
    """Bars up to ``last_bar`` (after the last marked) all closed with equity ``value``."""
    next_bar, seen = state
    while next_bar >= 0 and next_bar <= last_bar:
        day_values[seen] = value
        seen += 1
        next_bar = layout.day_ends[seen]
    return next_bar, seen


@njit(cache=True, inline="always")
def daily_held_nb(
    state: DailyState,
    last_bar: int,
    cash: float,
    held: float,
    close: np.ndarray,
    layout: DailyLayout,
    day_values: np.ndarray,
) -> DailyState:
    """Bars up to ``last_bar`` (after the last marked) closed with ``cash + held * close``.

    The equity of a held position between two decisions, recomputed at the day ends only
    (the same expression, so the same value as the bar loop's).
    """
    next_bar, seen = state
    while next_bar >= 0 and next_bar <= last_bar:
        day_values[seen] = cash + held * close[next_bar]
        seen += 1
        next_bar = layout.day_ends[seen]
    return next_bar, seen


@njit(cache=True, nogil=True)
def daily_sums_nb(day_values: np.ndarray, seen: int, layout: DailyLayout, row: np.ndarray) -> None:
    """Write the daily row from the equity at the first ``seen`` day ends.

    Return j is ``day_values[j + 1] / day_values[j] - 1``, as ``daily_returns`` computes it;
    the sums run in return order, block by block.
    """
    blocks = layout.num_blocks
    count = seen - 1
    cubes = 0.0
    fourths = 0.0
    lowest = np.inf
    highest = -np.inf
    finite = True
    for block in range(blocks):
        total = 0.0
        squares = 0.0
        for j in range(layout.block_starts[block], min(layout.block_starts[block + 1], count)):
            ret = day_values[j + 1] / day_values[j] - 1.0
            square = ret * ret
            total += ret
            squares += square
            cubes += square * ret
            fourths += square * square
            lowest = min(lowest, ret)
            highest = max(highest, ret)
            finite &= math.isfinite(ret)
        row[DAILY_BLOCKS + block] = total
        row[DAILY_BLOCKS + blocks + block] = squares
    row[DAILY_CUBES] = cubes
    row[DAILY_FOURTHS] = fourths
    row[DAILY_LOWEST] = lowest
    row[DAILY_HIGHEST] = highest
    row[DAILY_FINITE] = 1.0 if finite else 0.0
