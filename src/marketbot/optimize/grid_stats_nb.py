"""Metric statistics of the fast grid, bit-identical to what ``core.metrics`` computes.

``compute_metrics`` reduces an equity curve with ``_equity_stats_nb`` and the trades with
NumPy. The fast grid keeps neither the curve nor the trades of a combination, so it needs
the same numbers from a stream and from reused buffers:

- the equity statistics are ``_equity_stats_nb``'s loop, fed one bar at a time
  (:func:`equity_stats_mark_nb`), plus a shortcut for a run of bars whose equity does not
  change (a flat account: every return is exactly 0), which applies the same updates;
- the trade statistics are NumPy's reductions, and NumPy adds float64 values pairwise
  (:func:`pairwise_sum_nb`), so a plain running sum would differ in the last bits.

The statistics of one combination are a row of ``NUM_STATS`` floats; the ``STAT_*`` names
are its columns.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numba import njit

from marketbot.core.metrics import bar_return_nb, equity_stats_from_sums_nb

# NumPy's pairwise summation: runs of at most 128 values, eight accumulators each.
_PAIRWISE_BLOCK: Final = 128
# Halvings of a run before it fits a block: 2**64 values need fewer than 64.
_MAX_DEPTH: Final = 64

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

# The running state of the equity statistics: (all finite, previous equity, running peak,
# index of the last bar at the peak, lowest equity / peak, longest drawdown so far, shift,
# shifted sum, shifted sum of squares, downside sum of squares, lowest return, highest).
EquityState = tuple[bool, float, float, int, float, int, float, float, float, float, float, float]


@njit(cache=True, inline="always")
def equity_stats_start_nb(value: float) -> EquityState:
    """The state after bar 0 (its equity ``value``), as ``_equity_stats_nb`` starts."""
    return (np.isfinite(value), value, value, 0, 1.0, 0, 0.0, 0.0, 0.0, 0.0, np.inf, -np.inf)


@njit(cache=True, inline="always")
def equity_stats_mark_nb(state: EquityState, t: int, value: float) -> EquityState:
    """Add bar ``t >= 1`` with equity ``value``: one iteration of ``_equity_stats_nb``."""
    (
        finite, previous, peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    ) = state  # fmt: skip
    if t == 1:
        # Sums of returns are shifted by the first return, as in _equity_stats_nb.
        shift = bar_return_nb(previous, value)
    finite &= np.isfinite(value)
    ret = bar_return_nb(previous, value)
    shifted_sum += ret - shift
    shifted_squares += (ret - shift) * (ret - shift)
    negative = min(ret, 0.0)
    downside_squares += negative * negative
    lowest = min(lowest, ret)
    highest = max(highest, ret)
    longest = max(longest, t - peak_index)
    peak_index = t if value >= peak else peak_index
    peak = max(peak, value)
    lowest_ratio = min(lowest_ratio, value / peak if peak > 0.0 else 1.0)
    return (
        finite, value, peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    )  # fmt: skip


@njit(cache=True, inline="always")
def equity_stats_unchanged_nb(state: EquityState, t_first: int, t_last: int) -> EquityState:
    """Add bars ``t_first..t_last`` (``t_first >= 2``) whose equity equals the previous bar's.

    Each such bar has the return 0 exactly (``x / x - 1``, or 0 after a wipe-out), so the
    per-bar updates of :func:`equity_stats_mark_nb` reduce to two running sums, which are
    still added one bar at a time (the same rounding), and to closed forms for the rest:
    min and max with the same value are idempotent, and the drawdown only lengthens.
    """
    (
        finite, previous, peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    ) = state  # fmt: skip
    if t_last < t_first:
        return state
    deviation = 0.0 - shift
    square = deviation * deviation
    for _ in range(t_first, t_last + 1):
        shifted_sum += deviation
        shifted_squares += square
    # min(0, 0) squared adds 0.0 to a sum of squares, which leaves it as it is.
    lowest = min(lowest, 0.0)
    highest = max(highest, 0.0)
    longest = max(longest, t_first - peak_index)
    if previous >= peak:
        # Every bar is at the peak: each later one is 1 bar after the last peak.
        if t_last > t_first:
            longest = max(longest, 1)
        peak_index = t_last
    else:
        longest = max(longest, t_last - peak_index)
    peak = max(peak, previous)
    lowest_ratio = min(lowest_ratio, previous / peak if peak > 0.0 else 1.0)
    return (
        finite, previous, peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    )  # fmt: skip


@njit(cache=True, inline="always")
def equity_stats_finish_nb(
    state: EquityState, n: int
) -> tuple[bool, float, float, float, float, int]:
    """``_equity_stats_nb``'s result for the ``n`` bars marked.

    Returns:
        (all finite, mean return, std of returns, downside deviation, max drawdown as a
        fraction, longest drawdown in bars).
    """
    (
        finite, _previous, _peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    ) = state  # fmt: skip
    return equity_stats_from_sums_nb(
        n, finite, peak_index, lowest_ratio, longest, shift, shifted_sum, shifted_squares,
        downside_squares, lowest, highest,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def pairwise_sum_nb(values: np.ndarray, start: int, count: int) -> float:
    """Sum of ``values[start:start + count]`` added in exactly NumPy's pairwise order.

    NumPy's float64 ``add.reduce`` (``ndarray.sum``, ``mean``, ``std``) sums runs of up to
    128 values with eight interleaved accumulators (:func:`_block_sum_nb`) and splits a
    longer run in two halves, the first a multiple of 8 long, adding the halves' sums. The
    halving is walked with an explicit stack: numba's cache cannot reload a recursive
    function (the reloaded code crashes).
    """
    starts = np.empty(_MAX_DEPTH, dtype=np.int64)
    counts = np.empty(_MAX_DEPTH, dtype=np.int64)
    left_done = np.zeros(_MAX_DEPTH, dtype=np.bool_)
    left_sums = np.empty(_MAX_DEPTH, dtype=np.float64)
    depth = 0
    starts[0] = start
    counts[0] = count
    while True:
        if counts[depth] > _PAIRWISE_BLOCK:
            # Descend into the left half first.
            left_done[depth] = False
            starts[depth + 1] = starts[depth]
            counts[depth + 1] = _left_half_nb(counts[depth])
            depth += 1
            continue
        total = _block_sum_nb(values, starts[depth], counts[depth])
        # Climb while the finished run is a right half; at a left half, turn to the right.
        while depth > 0:
            depth -= 1
            if left_done[depth]:
                total = left_sums[depth] + total
                continue
            left_done[depth] = True
            left_sums[depth] = total
            half = _left_half_nb(counts[depth])
            starts[depth + 1] = starts[depth] + half
            counts[depth + 1] = counts[depth] - half
            depth += 1
            break
        else:
            return total


@njit(cache=True, inline="always")
def _left_half_nb(count: int) -> int:
    half = count // 2
    return half - half % 8


@njit(cache=True, nogil=True)
def _block_sum_nb(values: np.ndarray, start: int, count: int) -> float:
    """NumPy's sum of a run of at most 128 values: eight accumulators, then the rest."""
    if count < 8:
        total = 0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    r0 = values[start]
    r1 = values[start + 1]
    r2 = values[start + 2]
    r3 = values[start + 3]
    r4 = values[start + 4]
    r5 = values[start + 5]
    r6 = values[start + 6]
    r7 = values[start + 7]
    unrolled_end = start + count - count % 8
    i = start + 8
    while i < unrolled_end:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + count:
        total += values[i]
        i += 1
    return float(total)


@njit(cache=True, nogil=True)
def numpy_sum_nb(values: np.ndarray, count: int) -> float:
    """``values[:count].sum()`` as NumPy computes it (a float64 reduction starting at 0)."""
    return 0.0 + pairwise_sum_nb(values, 0, count)


@njit(cache=True, nogil=True)
def trade_sums_nb(
    pnl: np.ndarray, pnl_pct: np.ndarray, count: int, scratch: np.ndarray, out: np.ndarray
) -> None:
    """The reductions of ``core.metrics._trade_stats`` over the first ``count`` trades.

    Writes, at the ``STAT_*`` columns of ``out``: wins, gross profit
    (``pnl[pnl > 0].sum()``), gross loss (``-pnl[pnl < 0].sum()``), ``pnl.mean()``,
    ``pnl.std(ddof=1)`` (-1 where ``_trade_stats`` does not compute it: fewer than 2 trades
    or all P&Ls equal), ``pnl_pct.mean()``, ``.max()`` and ``.min()`` (0 without trades);
    and clears ``STAT_FINITE`` when a P&L is not finite. ``scratch`` holds ``count`` values.
    """
    finite = True
    highest = -np.inf
    lowest = np.inf
    wins = 0
    for i in range(count):
        value = pnl[i]
        finite &= np.isfinite(value) and np.isfinite(pnl_pct[i])
        highest = max(highest, value)
        lowest = min(lowest, value)
        if value > 0.0:
            scratch[wins] = value
            wins += 1
    out[STAT_WINS] = wins
    out[STAT_GROSS_PROFIT] = numpy_sum_nb(scratch, wins)
    losses = 0
    for i in range(count):
        if pnl[i] < 0.0:
            scratch[losses] = pnl[i]
            losses += 1
    out[STAT_GROSS_LOSS] = -numpy_sum_nb(scratch, losses)
    if not finite:
        out[STAT_FINITE] = 0.0
    if count == 0:
        out[STAT_PNL_MEAN] = 0.0
        out[STAT_PNL_STD] = -1.0
        out[STAT_PNL_PCT_MEAN] = 0.0
        out[STAT_PNL_PCT_MAX] = 0.0
        out[STAT_PNL_PCT_MIN] = 0.0
        return
    # ndarray.mean and .std(ddof=1): a pairwise sum divided by the count; the deviations
    # from that mean squared, summed pairwise and divided by count - 1.
    mean = numpy_sum_nb(pnl, count) / count
    std = -1.0
    if count >= 2 and highest > lowest:
        for i in range(count):
            deviation = pnl[i] - mean
            scratch[i] = deviation * deviation
        std = math.sqrt(numpy_sum_nb(scratch, count) / (count - 1))
    best = -np.inf
    worst = np.inf
    for i in range(count):
        best = max(best, pnl_pct[i])
        worst = min(worst, pnl_pct[i])
    out[STAT_PNL_MEAN] = mean
    out[STAT_PNL_STD] = std
    out[STAT_PNL_PCT_MEAN] = numpy_sum_nb(pnl_pct, count) / count
    out[STAT_PNL_PCT_MAX] = best
    out[STAT_PNL_PCT_MIN] = worst
