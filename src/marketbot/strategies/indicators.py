"""Causal indicators as compiled loops: the value at bar t uses bars 0..t only.

Each leaves NaN where its window is not yet full, so comparisons there are False and the
strategies need no special cases at the start of the data.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def rolling_mean_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (NaN for the first ``window - 1``).

    A compensated running sum keeps it as accurate as a fresh sum over each window, so long
    series do not drift.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    total = 0.0
    compensation = 0.0
    for i in range(n):
        # Kahan summation of +values[i] and -values[i - window].
        y = values[i] - compensation
        t = total + y
        compensation = (t - total) - y
        total = t
        if i >= window:
            y = -values[i - window] - compensation
            t = total + y
            compensation = (t - total) - y
            total = t
        if i >= window - 1:
            out[i] = total / window
    return out


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
        fast_total, fast_comp = _kahan_add_nb(fast_total, fast_comp, values[i])
        slow_total, slow_comp = _kahan_add_nb(slow_total, slow_comp, values[i])
        if i >= fast_window:
            fast_total, fast_comp = _kahan_add_nb(fast_total, fast_comp, -values[i - fast_window])
        if i >= slow_window:
            slow_total, slow_comp = _kahan_add_nb(slow_total, slow_comp, -values[i - slow_window])
        fast = fast_total / fast_window if i >= fast_window - 1 else np.nan
        slow = slow_total / slow_window if i >= slow_window - 1 else np.nan
        up[i] = previous_fast <= previous_slow and fast > slow
        down[i] = previous_slow <= previous_fast and slow > fast
        previous_fast = fast
        previous_slow = slow
    return up, down


@njit(cache=True, inline="always")
def _kahan_add_nb(total: float, compensation: float, value: float) -> tuple[float, float]:
    y = value - compensation
    t = total + y
    return t, (t - total) - y


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


def crossed_below(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True where ``a`` goes from at or above ``b`` to below it."""
    return crossed_above_nb(b, a)
