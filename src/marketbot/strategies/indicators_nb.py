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


SMA_BLOCK_BARS: Final = 16_384
"""Every simple moving average restarts its running sum at each multiple of this many bars.

See :func:`rolling_mean_nb`. A window of ``w`` bars costs ``(w - 1) / 16,384`` more additions:
0.3 % for the benchmark's 50 bars, 12 % for 2,000.
"""


@njit(cache=True, inline="always")
def block_origin_nb(start: int, window: int) -> int:
    """The bar a running sum starts from for the block that begins at bar ``start``.

    A window's worth of bars before the block (``window - 1`` of them, then the block's
    first), or bar 0 when the series is not that long yet.
    """
    return max(0, start - window + 1)


@njit(cache=True, inline="always")
def rolling_sum_step_nb(
    values: np.ndarray, i: int, origin: int, window: int, total: float, compensation: float
) -> tuple[float, float]:
    """Bar ``i``'s update of a compensated running sum over ``window`` bars from ``origin``.

    One Kahan addition of the value that enters less the one that leaves (``values[i]``
    alone while the window fills, in its first ``window`` bars from ``origin``). The
    subtraction is exact for prices that stay within a factor of two over a window
    (Sterbenz), so one compensated addition per bar keeps the sum as accurate as adding the
    two values separately did, at half the dependent additions: the running sum waits on
    their latency, not on the arithmetic. Every SMA in marketbot (single series, many
    windows, the panel, the fused crossover) takes exactly this step, so their averages
    agree bit for bit.
    """
    change = values[i] - values[i - window] if i - origin >= window else values[i]
    return kahan_add_nb(total, compensation, change)


@njit(cache=True, inline="always")
def _filled_sum_nb(values: np.ndarray, origin: int, start: int) -> tuple[float, float]:
    """The running sum over bars ``origin..start-1``, which all still fill the window."""
    total = 0.0
    compensation = 0.0
    for i in range(origin, start):
        total, compensation = kahan_add_nb(total, compensation, values[i])
    return total, compensation


@njit(cache=True, nogil=True)
def rolling_mean_nb(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over ``window`` bars (NaN for the first ``window - 1``).

    A compensated running sum (:func:`rolling_sum_step_nb`) keeps it as accurate as a fresh
    sum over each window, so long series do not drift. The sum restarts at every block of
    :data:`SMA_BLOCK_BARS` bars: the average at a bar of the block that begins at ``start``
    is that of the running sum from ``block_origin_nb(start, window)``, as if the series
    began there. A bar's average therefore depends on the bars from a window before its
    block only, never on the length of the series, and blocks are independent chains of
    additions, which the fused crossover runs side by side.
    """
    n = values.shape[0]
    out = np.full(n, np.nan)
    for start in range(0, n, SMA_BLOCK_BARS):
        origin = block_origin_nb(start, window)
        total, compensation = _filled_sum_nb(values, origin, start)
        for i in range(start, min(n, start + SMA_BLOCK_BARS)):
            total, compensation = rolling_sum_step_nb(
                values, i, origin, window, total, compensation
            )
            if i - origin >= window - 1:
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

    Block by block, each sum restarted as ``rolling_mean_nb`` restarts it. Once every window
    is full (in the first block, from the longest one on) each bar adds its change to every
    sum with no branch, and the sums become averages in a pass of their own: four scalar
    divisions a bar would bind that loop, and this pass the compiler vectorises (the same
    quotients).
    """
    n = values.shape[0]
    for start in range(0, n, SMA_BLOCK_BARS):
        stop = min(n, start + SMA_BLOCK_BARS)
        o0 = block_origin_nb(start, w0)
        o1 = block_origin_nb(start, w1)
        o2 = block_origin_nb(start, w2)
        o3 = block_origin_nb(start, w3)
        t0, c0 = _filled_sum_nb(values, o0, start)
        t1, c1 = _filled_sum_nb(values, o1, start)
        t2, c2 = _filled_sum_nb(values, o2, start)
        t3, c3 = _filled_sum_nb(values, o3, start)
        full_from = min(max(start, o0 + w0, o1 + w1, o2 + w2, o3 + w3), stop)
        for i in range(start, full_from):
            t0, c0 = rolling_sum_step_nb(values, i, o0, w0, t0, c0)
            t1, c1 = rolling_sum_step_nb(values, i, o1, w1, t1, c1)
            t2, c2 = rolling_sum_step_nb(values, i, o2, w2, t2, c2)
            t3, c3 = rolling_sum_step_nb(values, i, o3, w3, t3, c3)
            out[0, i] = t0 / w0 if i - o0 >= w0 - 1 else np.nan
            out[1, i] = t1 / w1 if i - o1 >= w1 - 1 else np.nan
            out[2, i] = t2 / w2 if i - o2 >= w2 - 1 else np.nan
            out[3, i] = t3 / w3 if i - o3 >= w3 - 1 else np.nan
        out0 = out[0]
        out1 = out[1]
        out2 = out[2]
        out3 = out[3]
        for i in range(full_from, stop):
            value = values[i]
            t0, c0 = kahan_add_nb(t0, c0, value - values[i - w0])
            t1, c1 = kahan_add_nb(t1, c1, value - values[i - w1])
            t2, c2 = kahan_add_nb(t2, c2, value - values[i - w2])
            t3, c3 = kahan_add_nb(t3, c3, value - values[i - w3])
            out0[i] = t0
            out1[i] = t1
            out2[i] = t2
            out3[i] = t3
        for row, window in ((out0, w0), (out1, w1), (out2, w2), (out3, w3)):
            _divide_nb(row[full_from:stop], window)


@njit(cache=True, inline="always")
def _divide_nb(sums: np.ndarray, window: int) -> None:
    """Sums over ``window`` bars into averages, in place (a loop the compiler vectorises)."""
    for i in range(sums.shape[0]):
        sums[i] = sums[i] / window


@njit(cache=True, nogil=True)
def sma_crossover_signals_nb(
    values: np.ndarray, fast_window: int, slow_window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Crosses of the fast SMA above and below the slow SMA.

    Bit-identical to ``crossed_above_nb(rolling_mean_nb(v, fast), rolling_mean_nb(v, slow))``
    and its mirror: the same running sums, block by block, two blocks at a time side by
    side (:func:`_block_pair_averages_nb`), so the CPU overlaps four chains of additions
    instead of waiting on two; the averages live in four block-sized buffers only.
    """
    n = values.shape[0]
    up = np.zeros(n, dtype=np.bool_)
    down = np.zeros(n, dtype=np.bool_)
    size = SMA_BLOCK_BARS
    blocks = (n + size - 1) // size
    fast_a = np.empty(size)
    slow_a = np.empty(size)
    fast_b = np.empty(size)
    slow_b = np.empty(size)
    # Each block's first and last averages: its first bar's crossing needs the block before.
    edges = np.full((4, max(blocks, 1)), np.nan)
    windows = (fast_window, slow_window)
    full = n // size  # blocks of a whole block's bars
    paired = 0
    if max(fast_window, slow_window) <= size and full >= 3:
        # Blocks 1..full-1 start a whole window in: no filling steps, so two can share a loop.
        half = (full - 1) // 2
        for k in range(1, 1 + half):
            a, b = k * size, (k + half) * size
            _block_pair_averages_nb(values, windows, a, b, fast_a, slow_a, fast_b, slow_b)
            _block_crossings_nb(fast_a, slow_a, size, k, edges, up[a:], down[a:])
            _block_crossings_nb(fast_b, slow_b, size, k + half, edges, up[b:], down[b:])
        paired = 2 * half
    for k in range(blocks):
        if 1 <= k <= paired:
            continue
        start = k * size
        count = min(size, n - start)
        _block_averages_nb(values, windows, start, count, fast_a, slow_a)
        _block_crossings_nb(fast_a, slow_a, count, k, edges, up[start:], down[start:])
    for k in range(1, blocks):
        # The first bar of each block against the last of the block before.
        start = k * size
        up[start] = (edges[2, k - 1] <= edges[3, k - 1]) & (edges[0, k] > edges[1, k])
        down[start] = (edges[3, k - 1] <= edges[2, k - 1]) & (edges[1, k] > edges[0, k])
    return up, down


@njit(cache=True, nogil=True)
def _block_averages_nb(
    values: np.ndarray,
    windows: tuple[int, int],
    start: int,
    count: int,
    fast: np.ndarray,
    slow: np.ndarray,
) -> None:
    """Both averages of the block of ``count`` bars from ``start``, as ``rolling_mean_nb``'s.

    Into ``fast[:count]`` and ``slow[:count]``, NaN where a window is not yet full.
    """
    fast_window, slow_window = windows
    fast_origin = block_origin_nb(start, fast_window)
    slow_origin = block_origin_nb(start, slow_window)
    fast_total, fast_comp = _filled_sum_nb(values, fast_origin, start)
    slow_total, slow_comp = _filled_sum_nb(values, slow_origin, start)
    for j in range(count):
        i = start + j
        fast_total, fast_comp = rolling_sum_step_nb(
            values, i, fast_origin, fast_window, fast_total, fast_comp
        )
        slow_total, slow_comp = rolling_sum_step_nb(
            values, i, slow_origin, slow_window, slow_total, slow_comp
        )
        fast[j] = fast_total / fast_window if i - fast_origin >= fast_window - 1 else np.nan
        slow[j] = slow_total / slow_window if i - slow_origin >= slow_window - 1 else np.nan


@njit(cache=True, nogil=True)
def _block_pair_averages_nb(
    values: np.ndarray,
    windows: tuple[int, int],
    a: int,
    b: int,
    fast_a: np.ndarray,
    slow_a: np.ndarray,
    fast_b: np.ndarray,
    slow_b: np.ndarray,
) -> None:
    """``_block_averages_nb`` of two whole blocks, at bars ``a`` and ``b``, side by side.

    Both start at least a window from bar 0, so no bar of theirs fills a window: four
    independent chains of additions in one branch-free loop.
    """
    fast_window, slow_window = windows
    # From a whole window before the block, its first bar too only fills the window.
    fa, fca = _filled_sum_nb(values, a - fast_window + 1, a + 1)
    sa, sca = _filled_sum_nb(values, a - slow_window + 1, a + 1)
    fb, fcb = _filled_sum_nb(values, b - fast_window + 1, b + 1)
    sb, scb = _filled_sum_nb(values, b - slow_window + 1, b + 1)
    fast_a[0], slow_a[0], fast_b[0], slow_b[0] = fa, sa, fb, sb
    for j in range(1, fast_a.shape[0]):
        i = a + j
        k = b + j
        fa, fca = kahan_add_nb(fa, fca, values[i] - values[i - fast_window])
        sa, sca = kahan_add_nb(sa, sca, values[i] - values[i - slow_window])
        fb, fcb = kahan_add_nb(fb, fcb, values[k] - values[k - fast_window])
        sb, scb = kahan_add_nb(sb, scb, values[k] - values[k - slow_window])
        fast_a[j], slow_a[j], fast_b[j], slow_b[j] = fa, sa, fb, sb
    _divide_nb(fast_a, fast_window)
    _divide_nb(slow_a, slow_window)
    _divide_nb(fast_b, fast_window)
    _divide_nb(slow_b, slow_window)


@njit(cache=True, inline="always")
def _block_crossings_nb(
    fast: np.ndarray,
    slow: np.ndarray,
    count: int,
    block: int,
    edges: np.ndarray,
    up: np.ndarray,
    down: np.ndarray,
) -> None:
    """The crossings at bars 1..count-1 of a block, its first and last averages to ``edges``.

    Its bar 0 waits for the block before it.
    """
    for j in range(1, count):
        up[j] = (fast[j - 1] <= slow[j - 1]) & (fast[j] > slow[j])
        down[j] = (slow[j - 1] <= fast[j - 1]) & (slow[j] > fast[j])
    edges[0, block] = fast[0]
    edges[1, block] = slow[0]
    edges[2, block] = fast[count - 1]
    edges[3, block] = slow[count - 1]


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
