"""The built-ins' indicators over a (bars x symbols) panel, one compiled pass for all symbols.

Each is column by column the same arithmetic, in the same order, as its one-symbol version in
``strategies.indicators``, so each column is bit-identical to that function on the column:
the loops walk the panel a row at a time (the order it is stored in) and keep one running
state per symbol. NaN padding below a shorter symbol's last bar only yields NaN (and False)
there.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from marketbot.strategies.indicators_nb import SMA_BLOCK_BARS, block_origin_nb, kahan_add_nb


@njit(cache=True, nogil=True)
def sma_crossover_panel_nb(
    values: np.ndarray, fast_window: int, slow_window: int
) -> tuple[np.ndarray, np.ndarray]:
    """``indicators.sma_crossover_signals_nb`` on every column of ``values`` (bars x symbols)."""
    n, k = values.shape
    up = np.zeros((n, k), dtype=np.bool_)
    down = np.zeros((n, k), dtype=np.bool_)
    # Per symbol: fast total and compensation, slow total and compensation, previous averages.
    state = np.zeros((6, k))
    state[4:] = np.nan
    for start in range(0, n, SMA_BLOCK_BARS):
        stop = min(n, start + SMA_BLOCK_BARS)
        # Each block restarts the sums a window before it, as rolling_mean_nb does.
        fast_origin = block_origin_nb(start, fast_window)
        slow_origin = block_origin_nb(start, slow_window)
        _restart_sums_nb(values, fast_origin, start, state[0], state[1])
        _restart_sums_nb(values, slow_origin, start, state[2], state[3])
        block = (fast_window, slow_window, fast_origin, slow_origin)
        full = min(max(start, fast_origin + fast_window, slow_origin + slow_window), stop)
        for i in range(start, full):
            # Filling the windows: which sums drop a bar and which averages exist varies by row.
            _cross_row_nb(values, i, block, False, state, up[i], down[i])
        for i in range(full, stop):
            # Both windows full: the same steps without a branch, which the compiler vectorises.
            _cross_row_nb(values, i, block, True, state, up[i], down[i])
    return up, down


@njit(cache=True, inline="always")
def _restart_sums_nb(
    values: np.ndarray, origin: int, start: int, total: np.ndarray, compensation: np.ndarray
) -> None:
    """Every symbol's running sum over rows ``origin..start-1`` (all filling the window)."""
    total[:] = 0.0
    compensation[:] = 0.0
    for i in range(origin, start):
        row = values[i]
        for s in range(row.shape[0]):
            total[s], compensation[s] = kahan_add_nb(total[s], compensation[s], row[s])


@njit(cache=True, inline="always")
def _cross_row_nb(
    values: np.ndarray,
    i: int,
    block: tuple[int, int, int, int],
    full: bool,
    state: np.ndarray,
    up_row: np.ndarray,
    down_row: np.ndarray,
) -> None:
    """Row ``i`` of every symbol: the steps of ``sma_crossover_signals_nb`` at bar ``i``.

    ``block`` holds the two windows and the rows the block's sums start from; ``full`` (a
    constant where it is inlined) says both windows are full at row ``i``.
    """
    fast_window, slow_window, fast_origin, slow_origin = block
    drop_fast = full or i - fast_origin >= fast_window
    drop_slow = full or i - slow_origin >= slow_window
    fast_ready = full or i - fast_origin >= fast_window - 1
    slow_ready = full or i - slow_origin >= slow_window - 1
    row = values[i]
    leaving_fast = values[i - fast_window] if drop_fast else row
    leaving_slow = values[i - slow_window] if drop_slow else row
    fast_total, fast_comp, slow_total, slow_comp = state[0], state[1], state[2], state[3]
    previous_fast, previous_slow = state[4], state[5]
    for s in range(row.shape[0]):
        # rolling_sum_step_nb's one addition: the entering value less the leaving one.
        fast_change = row[s] - leaving_fast[s] if drop_fast else row[s]
        slow_change = row[s] - leaving_slow[s] if drop_slow else row[s]
        ft, fc = kahan_add_nb(fast_total[s], fast_comp[s], fast_change)
        st, sc = kahan_add_nb(slow_total[s], slow_comp[s], slow_change)
        fast = ft / fast_window if fast_ready else np.nan
        slow = st / slow_window if slow_ready else np.nan
        up_row[s] = (previous_fast[s] <= previous_slow[s]) & (fast > slow)
        down_row[s] = (previous_slow[s] <= previous_fast[s]) & (slow > fast)
        fast_total[s] = ft
        fast_comp[s] = fc
        slow_total[s] = st
        slow_comp[s] = sc
        previous_fast[s] = fast
        previous_slow[s] = slow


@njit(cache=True, nogil=True)
def rolling_mean_panel_nb(values: np.ndarray, window: int) -> np.ndarray:
    """``indicators.rolling_mean_nb`` on every column of ``values`` (bars x symbols)."""
    n, k = values.shape
    out = np.full((n, k), np.nan)
    total = np.zeros(k)
    compensation = np.zeros(k)
    for start in range(0, n, SMA_BLOCK_BARS):
        origin = block_origin_nb(start, window)
        _restart_sums_nb(values, origin, start, total, compensation)
        for i in range(start, min(n, start + SMA_BLOCK_BARS)):
            drop = i - origin >= window
            for s in range(k):
                # rolling_sum_step_nb's one addition: the entering value less the leaving one.
                change = values[i, s] - values[i - window, s] if drop else values[i, s]
                t, c = kahan_add_nb(total[s], compensation[s], change)
                total[s] = t
                compensation[s] = c
                if i - origin >= window - 1:
                    out[i, s] = t / window
    return out


@njit(cache=True, nogil=True)
def rolling_std_panel_nb(values: np.ndarray, window: int) -> np.ndarray:
    """``indicators.rolling_std_nb`` (ddof 1, two passes per window) on every column."""
    n, k = values.shape
    out = np.full((n, k), np.nan)
    mean = np.empty(k)
    squares = np.empty(k)
    for i in range(window - 1, n):
        mean[:] = 0.0
        for j in range(i - window + 1, i + 1):
            for s in range(k):
                mean[s] += values[j, s]
        for s in range(k):
            mean[s] /= window
        squares[:] = 0.0
        for j in range(i - window + 1, i + 1):
            for s in range(k):
                squares[s] += (values[j, s] - mean[s]) ** 2
        for s in range(k):
            out[i, s] = math.sqrt(squares[s] / (window - 1)) if window > 1 else 0.0
    return out


@njit(cache=True, nogil=True)
def rate_of_change_panel_nb(values: np.ndarray, lookback: int) -> np.ndarray:
    """``indicators.rate_of_change_nb`` on every column: 100 x (v[t] / v[t - lookback] - 1)."""
    n, k = values.shape
    out = np.full((n, k), np.nan)
    for i in range(lookback, n):
        for s in range(k):
            out[i, s] = 100.0 * (values[i, s] / values[i - lookback, s] - 1.0)
    return out
