"""The compiled reductions behind every metric: equity statistics and trade sums.

One set of functions for every caller: ``core.metrics.compute_metrics`` reduces a whole
equity curve and trade list with them, and the optimiser's fast grid feeds them one bar and
one trade at a time while it simulates. Both therefore get the same numbers by construction,
in the same order of additions, with no emulation of anyone else's summation.

The equity statistics are a running state (:data:`EquityState`) advanced bar by bar
(:func:`equity_stats_mark_nb`), with a shortcut for a run of bars whose equity does not move
(:func:`equity_stats_unchanged_nb`, the same additions), finished by
:func:`equity_stats_finish_nb`. The trade sums are :func:`trade_sums_nb`. Only numpy and
numba here.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# The running state of the equity statistics: (all finite, previous equity, running peak,
# index of the last bar at the peak, lowest equity / peak, longest drawdown so far, shift,
# shifted sum, shifted sum of squares, downside sum of squares, lowest return, highest).
EquityState = tuple[bool, float, float, int, float, int, float, float, float, float, float, float]

# (all finite, mean return, std of returns (ddof 1; 0 when undefined), downside deviation,
# max drawdown as a fraction, longest drawdown in bars)
EquityStats = tuple[bool, float, float, float, float, int]

# (all finite, wins, gross profit, gross loss, mean P&L, std of P&L (ddof 1; -1 when fewer
# than 2 trades or all equal), mean P&L %, best P&L %, worst P&L %)
TradeSums = tuple[bool, int, float, float, float, float, float, float, float]


@njit(cache=True, inline="always")
def bar_return_nb(previous: float, value: float) -> float:
    """Return of one bar; -1 on the bar equity reaches 0 or below, 0 on every bar after."""
    if previous <= 0.0:
        return 0.0
    ret = value / previous - 1.0
    return max(ret, -1.0)


@njit(cache=True, inline="always")
def equity_stats_start_nb(value: float) -> EquityState:
    """The state after bar 0, whose equity is ``value``."""
    return (np.isfinite(value), value, value, 0, 1.0, 0, 0.0, 0.0, 0.0, 0.0, np.inf, -np.inf)


@njit(cache=True, inline="always")
def equity_stats_mark_nb(state: EquityState, t: int, value: float) -> EquityState:
    """Add bar ``t >= 1`` with equity ``value``.

    The loop body has no data-dependent branch (selects, min and max instead): a return's
    sign is a coin flip, and mispredicting it cost more than the rest of the pass.
    """
    (
        finite, previous, peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    ) = state  # fmt: skip
    ret = bar_return_nb(previous, value)
    # Sums of returns shifted by the first return: stable even when returns barely differ.
    shift = ret if t == 1 else shift
    finite &= np.isfinite(value)
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
    per-bar updates of :func:`equity_stats_mark_nb` reduce to two running sums, still added
    one bar at a time (the same rounding), and to closed forms for the rest: min and max with
    the same value are idempotent, and the drawdown only lengthens.
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
def equity_stats_finish_nb(state: EquityState, n: int) -> EquityStats:
    """The statistics of the ``n`` bars marked (see :data:`EquityStats`)."""
    (
        finite, _previous, _peak, peak_index, lowest_ratio, longest, shift, shifted_sum,
        shifted_squares, downside_squares, lowest, highest,
    ) = state  # fmt: skip
    # t - peak_index >= 2 means bar t-1 was below the peak: a drawdown at least that long
    # (regained at t, or still open). A gap of 1 is a drawdown only if it is the open one at
    # the last bar; otherwise the curve never fell.
    if longest < 2:
        longest = 1 if peak_index < n - 1 else 0
    count = n - 1
    if count <= 0:
        return finite, 0.0, 0.0, 0.0, 0.0, 0
    mean = shift + shifted_sum / count
    std = 0.0
    # Equal returns have std 0 exactly; the formula would leave their rounding residue.
    if count >= 2 and highest > lowest:
        variance = (shifted_squares - shifted_sum * shifted_sum / count) / (count - 1)
        std = math.sqrt(max(variance, 0.0))
    downside = math.sqrt(downside_squares / count)
    return finite, mean, std, downside, 1.0 - lowest_ratio, longest


@njit(cache=True, nogil=True)
def equity_stats_nb(equity: np.ndarray) -> EquityStats:
    """The statistics of a whole equity curve (n >= 1), one pass, nothing allocated."""
    n = equity.shape[0]
    state = equity_stats_start_nb(equity[0])
    for t in range(1, n):
        state = equity_stats_mark_nb(state, t, equity[t])
    return equity_stats_finish_nb(state, n)


@njit(cache=True, nogil=True)
def trade_sums_nb(pnl: np.ndarray, pnl_pct: np.ndarray, count: int) -> TradeSums:
    """The sums behind the trade statistics of the first ``count`` trades (:data:`TradeSums`).

    Plain running sums in trade order; the P&L's standard deviation from a second pass over
    the deviations from the mean (numerically safe for P&Ls of any size).
    """
    finite = True
    wins = 0
    gross_profit = 0.0
    gross_loss = 0.0
    pnl_total = 0.0
    pct_total = 0.0
    highest = -np.inf
    lowest = np.inf
    best = -np.inf
    worst = np.inf
    for i in range(count):
        value = pnl[i]
        percent = pnl_pct[i]
        finite &= np.isfinite(value) and np.isfinite(percent)
        wins += value > 0.0
        gross_profit += max(value, 0.0)
        gross_loss -= min(value, 0.0)
        pnl_total += value
        pct_total += percent
        highest = max(highest, value)
        lowest = min(lowest, value)
        best = max(best, percent)
        worst = min(worst, percent)
    if count == 0:
        return finite, 0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0
    mean = pnl_total / count
    std = -1.0
    # Equal P&Ls have std 0 exactly: the SQN stays 0 rather than divide by a residue.
    if count >= 2 and highest > lowest:
        squares = 0.0
        for i in range(count):
            deviation = pnl[i] - mean
            squares += deviation * deviation
        std = math.sqrt(squares / (count - 1))
    return finite, wins, gross_profit, gross_loss, mean, std, pct_total / count, best, worst
