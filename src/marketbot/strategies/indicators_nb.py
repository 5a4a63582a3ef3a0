"""Compiled indicators and the built-ins' grid signal kernels: numpy and numba only.

Causal indicators (the value at bar t uses bars 0..t only) that leave NaN where their
window is not yet full, so comparisons there are False and the strategies need no special
cases at the start of the data; :func:`rolling_means_nb` and :func:`rolling_stds_nb`
compute many windows of one series at once, bit for bit :func:`rolling_mean_nb` and
:func:`rolling_std_nb` per window.

The ``*_grid_nb`` functions are the built-ins' per-combination signal kernels for the
optimiser's fast grid (``Strategy.grid_signals``): each has the signature
:data:`GRID_SIGNALS_SIGNATURE` and fills one combination's long entries and exits from
indicator rows the grid computed once per distinct parameter value, with the comparisons
of the strategy's ``signals()``, so the two agree bit for bit.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numba import njit, prange, types

GRID_SIGNALS_SIGNATURE: Final = types.void(
    types.int64,  # combination: its row of ``rows`` and ``values``
    types.Array(types.float64, 2, "C"),  # tables: indicator rows (row x frame bar)
    types.Array(types.int64, 2, "C"),  # rows: per combination, the table row of each slot
    types.Array(types.float64, 2, "C"),  # values: per combination, its numbers
    types.int64,  # start: the first frame row to fill
    types.int64,  # stop: one past the last frame row to fill
    types.Array(types.boolean, 1, "C"),  # entries: long entries, indexed by frame row
    types.Array(types.boolean, 1, "C"),  # exits: long exits, indexed by frame row
)
"""The signature of a grid signal kernel (``Strategy.grid_signals``' ``kernel``).

``kernel(k, tables, rows, values, start, stop, entries, exits)`` writes
``entries[g]`` and ``exits[g]`` for every frame row ``start <= g < stop``: what the
strategy's ``signals()`` gives at row ``g`` for combination ``k``, reading the indicator of
slot ``s`` at ``tables[rows[k, s]]`` (a row of the whole frame; -1: the slot is unused) and
its numbers at ``values[k]``. It reads any row of a table but writes no other element.
"""


@njit(cache=True, inline="always")
def kahan_add_nb(total: float, compensation: float, value: float) -> tuple[float, float]:
    """One compensated (Kahan) addition: the new total and compensation."""
    y = value - compensation
    t = total + y
    return t, (t - total) - y


@njit(cache=True, inline="always")
def rolling_sum_step_nb(
    values: np.ndarray, i: int, window: int, total: float, compensation: float
) -> tuple[float, float]:
    """Bar ``i``'s update of a compensated running sum over ``window`` bars: the new state.

    One Kahan addition of the value that enters less the one that leaves (``values[i]``
    alone while the window fills). The subtraction is exact for prices that stay within a
    factor of two over a window (Sterbenz), so one compensated addition per bar keeps the
    sum as accurate as adding the two values separately did, at half the dependent
    additions: the running sum waits on their latency, not on the arithmetic. Every SMA in
    marketbot (single series, many windows, the panel, the fused crossover) takes exactly
    this step, so their averages agree bit for bit.
    """
    change = values[i] - values[i - window] if i >= window else values[i]
    return kahan_add_nb(total, compensation, change)


@njit(cache=True, nogil=True)
def rolling_mean_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (NaN for the first ``window - 1``).

    A compensated running sum (:func:`rolling_sum_step_nb`) keeps it as accurate as a fresh
    sum over each window, so long series do not drift.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    compensation = 0.0
    for i in range(n):
        total, compensation = rolling_sum_step_nb(values, i, window, total, compensation)
        if i >= window - 1:
            out[i] = total / window
    return out


@njit(parallel=True, cache=True)
def rolling_means_nb(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One row per window: ``rolling_mean_nb(values, window)``, bit for bit, on all cores.

    The windows go four to a pass (:func:`_four_rolling_means_nb`), written straight into
    their rows: each average is a chain of dependent compensated additions that waits on
    latency, and four side by side overlap (a pass costs about what one average alone did).
    The result is C-contiguous.
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

    Once every window is full (from the longest one on) each bar adds its change to every
    sum (:func:`rolling_sum_step_nb` without its branch), which is faster than the first loop.
    """
    t0 = c0 = t1 = c1 = t2 = c2 = t3 = c3 = 0.0
    n = values.shape[0]
    full_from = min(max(w0, w1, w2, w3), n)
    for i in range(full_from):
        t0, c0 = rolling_sum_step_nb(values, i, w0, t0, c0)
        t1, c1 = rolling_sum_step_nb(values, i, w1, t1, c1)
        t2, c2 = rolling_sum_step_nb(values, i, w2, t2, c2)
        t3, c3 = rolling_sum_step_nb(values, i, w3, t3, c3)
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
        t0, c0 = kahan_add_nb(t0, c0, value - values[i - w0])
        t1, c1 = kahan_add_nb(t1, c1, value - values[i - w1])
        t2, c2 = kahan_add_nb(t2, c2, value - values[i - w2])
        t3, c3 = kahan_add_nb(t3, c3, value - values[i - w3])
        out0[i] = t0
        out1[i] = t1
        out2[i] = t2
        out3[i] = t3
    # The sums become averages in a pass of their own: four scalar divisions a bar would
    # bind the loop above, and this one the compiler vectorises (the same quotients).
    for row, window in ((out0, w0), (out1, w1), (out2, w2), (out3, w3)):
        sums = row[full_from:]
        for i in range(sums.shape[0]):
            sums[i] = sums[i] / window


@njit(cache=True, nogil=True)
def sma_crossover_signals_nb(
    values: np.ndarray, fast_window: int, slow_window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crosses of the fast SMA above and below the slow SMA, in one pass.

    Bit-identical to ``crossed_above_nb(rolling_mean_nb(v, fast), rolling_mean_nb(v, slow))``
    and its mirror: the two compensated running sums are the same updates, kept side by
    side so the CPU overlaps them, and the averages are never stored.
    """
    n = values.shape[0]
    up = np.zeros(n, dtype=np.bool_)
    down = np.zeros(n, dtype=np.bool_)
    fast_total = 0.0
    fast_comp = 0.0
    slow_total = 0.0
    slow_comp = 0.0
    previous_fast = np.nan
    previous_slow = np.nan
    for i in range(n):
        fast_total, fast_comp = rolling_sum_step_nb(values, i, fast_window, fast_total, fast_comp)
        slow_total, slow_comp = rolling_sum_step_nb(values, i, slow_window, slow_total, slow_comp)
        fast = fast_total / fast_window if i >= fast_window - 1 else np.nan
        slow = slow_total / slow_window if i >= slow_window - 1 else np.nan
        up[i] = previous_fast <= previous_slow and fast > slow
        down[i] = previous_slow <= previous_fast and slow > fast
        previous_fast = fast
        previous_slow = slow
    return up, down


@njit(cache=True, nogil=True)
def rolling_std_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Sample standard deviation (ddof 1) over ``window`` bars, two passes per window."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    for i in range(window - 1, n):
        mean = 0.0
        for j in range(i - window + 1, i + 1):
            mean += values[j]
        mean /= window
        squares = 0.0
        for j in range(i - window + 1, i + 1):
            squares += (values[j] - mean) ** 2
        out[i] = math.sqrt(squares / (window - 1)) if window > 1 else 0.0
    return out


@njit(parallel=True, cache=True)
def rolling_stds_nb(values: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """One row per window: ``rolling_std_nb(values, window)``, bit for bit, on all cores."""
    out = np.empty((windows.shape[0], values.shape[0]), dtype=np.float64)
    for row in prange(windows.shape[0]):
        out[row] = rolling_std_nb(values, windows[row])
    return out


@njit(cache=True, nogil=True)
def rate_of_change_nb(values: np.ndarray, lookback: int) -> np.ndarray:
    """Percent change over ``lookback`` bars: 100 x (v[t] / v[t - lookback] - 1)."""
    n = values.shape[0]
    out = np.full(n, np.nan)
    for i in range(lookback, n):
        out[i] = 100.0 * (values[i] / values[i - lookback] - 1.0)
    return out


@njit(cache=True, nogil=True)
def crossed_above_nb(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` goes from at or below ``b`` to above it (False where NaN is involved)."""
    n = a.shape[0]
    out = np.zeros(n, dtype=np.bool_)
    for i in range(1, n):
        out[i] = a[i - 1] <= b[i - 1] and a[i] > b[i]
    return out


# -- the built-ins' grid signal kernels (GRID_SIGNALS_SIGNATURE) ------------------------------


@njit(cache=True, nogil=True)
def sma_crossover_grid_nb(
    k: int,
    tables: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    start: int,
    stop: int,
    entries: np.ndarray,
    exits: np.ndarray,
) -> None:
    """``sma_crossover``, long only: slot 0 the fast SMA, slot 1 the slow one; no numbers.

    The crossings of :func:`sma_crossover_signals_nb` (``crossed_above_nb`` and its mirror)
    from the two averages of :func:`rolling_means_nb`. The four values are loaded and
    compared without short-circuiting: a branch on whether the fast average was below is as
    unpredictable as the data.
    """
    fast = tables[rows[k, 0]]
    slow = tables[rows[k, 1]]
    if start == 0 and stop > 0:  # the first row has no row before it: never a cross
        entries[0] = False
        exits[0] = False
        start = 1
    # Slices indexed from 0: no negative-index wrap-around, so the loop vectorises.
    fast_before = fast[start - 1 : stop - 1]
    slow_before = slow[start - 1 : stop - 1]
    fast_now = fast[start:stop]
    slow_now = slow[start:stop]
    up = entries[start:stop]
    down = exits[start:stop]
    for i in range(stop - start):
        up[i] = (fast_before[i] <= slow_before[i]) & (fast_now[i] > slow_now[i])
        down[i] = (slow_before[i] <= fast_before[i]) & (slow_now[i] > fast_now[i])


@njit(cache=True, nogil=True)
def mean_reversion_grid_nb(
    k: int,
    tables: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    start: int,
    stop: int,
    entries: np.ndarray,
    exits: np.ndarray,
) -> None:
    """``mean_reversion``'s signals for one combination of the grid.

    Slots 0, 1, 2: the rolling mean, the rolling std, the close; numbers ``num_std`` and
    ``exit_std``. ``close < mean - num_std * std`` enters and
    ``close > mean + exit_std * std`` exits: the operations of the strategy's numpy
    expressions, in the same order.
    """
    mean = tables[rows[k, 0]][start:stop]
    std = tables[rows[k, 1]][start:stop]
    close = tables[rows[k, 2]][start:stop]
    num_std = values[k, 0]
    exit_std = values[k, 1]
    below = entries[start:stop]
    above = exits[start:stop]
    for i in range(stop - start):
        below[i] = close[i] < mean[i] - num_std * std[i]
        above[i] = close[i] > mean[i] + exit_std * std[i]


@njit(cache=True, nogil=True)
def momentum_grid_nb(
    k: int,
    tables: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    start: int,
    stop: int,
    entries: np.ndarray,
    exits: np.ndarray,
) -> None:
    """``momentum``'s signals for one combination of the grid.

    Slot 0: the rate of change; with a breakout, slot 1 the highest close of the previous
    ``lookback`` bars and slot 2 the close (else -1); numbers ``entry_pct``, ``exit_pct``.
    ``roc > entry_pct`` (and, with a breakout, ``close > prior high``) enters and
    ``roc < exit_pct`` exits, as the strategy's numpy comparisons.
    """
    roc = tables[rows[k, 0]][start:stop]
    entry_pct = values[k, 0]
    exit_pct = values[k, 1]
    up = entries[start:stop]
    down = exits[start:stop]
    if rows[k, 1] < 0:
        for i in range(stop - start):
            up[i] = roc[i] > entry_pct
            down[i] = roc[i] < exit_pct
        return
    prior_high = tables[rows[k, 1]][start:stop]
    close = tables[rows[k, 2]][start:stop]
    for i in range(stop - start):
        up[i] = (roc[i] > entry_pct) & (close[i] > prior_high[i])
        down[i] = roc[i] < exit_pct
