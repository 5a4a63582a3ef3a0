"""The PBO's splits in one compiled, parallel pass, for the per-period Sharpe ratio and the mean.

:func:`evaluate_splits_nb` does what ``pbo_splits.evaluate_splits`` does with numpy, with the same
operations in the same order (so the same numbers), for the two built-in metrics: a
split's in-sample performance is its complement's out-of-sample performance, so each
complementary pair of splits costs one evaluation of each half, and nothing of size
splits x columns is ever allocated.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
from numba import njit, prange

METRIC_SHARPE: Final = 0  # pbo.sharpe: mean / sqrt(variance), 0 where the variance is 0
METRIC_MEAN_RETURN: Final = 1  # pbo.mean_return: the mean
GROUP_BITS: Final = 8  # blocks per subset-sum table, as pbo_splits._GROUP_BITS


@njit(cache=True, inline="always")
def _performance_nb(
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    shift: np.ndarray,
    bits: int,
    metric: int,
    tolerance: float,
    scratch: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Each column's metric on the blocks ``bits`` selects, into ``out``; False if not finite.

    The steps of ``pbo_splits._metric_on``, in its order: the groups' subset sums added left to
    right, then mean (times the reciprocal of the count), centred sum of squares, variance
    (times the reciprocal of count - 1; 0 when numerically constant), the shift added back
    and the metric. ``scratch`` holds three rows of the column count (the
    last all zeros): up to two groups (16 blocks) are read straight from the tables.
    """
    sum_tables, square_tables, count_tables = tables
    groups = sum_tables.shape[0]
    low_bits = (1 << GROUP_BITS) - 1
    index = bits & low_bits
    count = count_tables[0, index]
    first_sums = sum_tables[0, index]
    first_squares = square_tables[0, index]
    zeros = scratch[2]
    second_sums = zeros
    second_squares = zeros
    if groups == 2:
        index = (bits >> GROUP_BITS) & low_bits
        count += count_tables[1, index]
        second_sums = sum_tables[1, index]
        second_squares = square_tables[1, index]
    elif groups > 2:
        # Left to right into the scratch rows, as numpy adds them; then + 0.0 below.
        first_sums = scratch[0]
        first_squares = scratch[1]
        first_sums[:] = sum_tables[0, index]
        first_squares[:] = square_tables[0, index]
        for group in range(1, groups):
            index = (bits >> (GROUP_BITS * group)) & low_bits
            count += count_tables[group, index]
            first_sums += sum_tables[group, index]
            first_squares += square_tables[group, index]
    per_row = 1.0 / count
    per_degree = 1.0 / max(count - 1.0, 1.0)
    finite = True
    for column in range(out.shape[0]):
        total = first_sums[column] + second_sums[column]
        squares = first_squares[column] + second_squares[column]
        mean = total * per_row
        centred = squares - total * mean
        variance = centred * per_degree
        variance = 0.0 if centred <= tolerance * squares else variance
        mean += shift[column]
        value = mean
        if metric == METRIC_SHARPE:
            deviation = math.sqrt(variance)
            value = mean / deviation if deviation > 0 else 0.0
        out[column] = value
        finite &= math.isfinite(value)
    return finite


@njit(cache=True, inline="always")
def _pick_nb(in_sample: np.ndarray, out_of_sample: np.ndarray) -> tuple[int, float, float]:
    """The in-sample best column (ties: the worst out-of-sample), and its omega.

    Returns:
        (the column, its out-of-sample value, omega = (columns below + (tied + 1) / 2) /
        (N + 1)), as ``pbo_splits.evaluate_splits`` computes them.
    """
    columns = in_sample.shape[0]
    best = in_sample[0]
    pick = 0
    picked = out_of_sample[0]
    for column in range(1, columns):
        value = in_sample[column]
        if value > best or (value == best and out_of_sample[column] < picked):
            best = value
            pick = column
            picked = out_of_sample[column]
    below = 0
    tied = 0
    for column in range(columns):
        below += out_of_sample[column] < picked
        tied += out_of_sample[column] == picked
    return pick, picked, (below + (tied + 1) / 2.0) / (columns + 1)


@njit(parallel=True, cache=True)
def evaluate_splits_nb(
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    shift: np.ndarray,
    bits: np.ndarray,
    partner: np.ndarray,
    metric: int,
    tolerance: float,
    workers: int,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> bool:
    """Every split's pick and omega; False if the metric gave a value that is not finite.

    Args:
        tables: The subset sums of the blocks' sums, sums of squares and counts, per group
            of 8 blocks (group x 256 (x column)).
        shift: Each column's shift, added back to its mean.
        bits: Each split's in-sample blocks as a bit mask.
        partner: Each split's complementary split (its in-sample set is this one's
            out-of-sample set).
        metric: ``METRIC_SHARPE`` or ``METRIC_MEAN_RETURN``.
        tolerance: A variance below this share of the raw second moment counts as 0.
        workers: Threads to share the pairs of splits between (1: see
            :func:`evaluate_splits_serial_nb`, which launches no parallel region).
        out: (chosen column, in-sample value, out-of-sample value, omega) per split.
    """
    firsts = np.flatnonzero(partner > np.arange(bits.shape[0]))  # one split of each pair
    finite = np.ones(workers, dtype=np.bool_)
    for worker in prange(workers):
        finite[worker] = _evaluate_pairs_nb(
            tables, shift, bits, partner, firsts[worker::workers], metric, tolerance, out
        )
    return bool(finite.all())


@njit(cache=True, nogil=True)
def evaluate_splits_serial_nb(
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    shift: np.ndarray,
    bits: np.ndarray,
    partner: np.ndarray,
    metric: int,
    tolerance: float,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> bool:
    """:func:`evaluate_splits_nb` on this thread: small PBOs, where waking threads costs more."""
    firsts = np.flatnonzero(partner > np.arange(bits.shape[0]))
    return _evaluate_pairs_nb(tables, shift, bits, partner, firsts, metric, tolerance, out)


@njit(cache=True, inline="always")
def _evaluate_pairs_nb(
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    shift: np.ndarray,
    bits: np.ndarray,
    partner: np.ndarray,
    firsts: np.ndarray,
    metric: int,
    tolerance: float,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> bool:
    """The splits ``firsts`` and their partners: each half evaluated once, picked twice."""
    chosen, in_sample, out_of_sample, omega = out
    columns = shift.shape[0]
    scratch = np.zeros((3, columns))
    half = np.empty(columns)
    rest = np.empty(columns)
    finite = True
    for split in firsts:
        other = partner[split]
        finite &= _performance_nb(tables, shift, bits[split], metric, tolerance, scratch, half)
        finite &= _performance_nb(tables, shift, bits[other], metric, tolerance, scratch, rest)
        pick, picked, value = _pick_nb(half, rest)
        chosen[split] = pick
        in_sample[split] = half[pick]
        out_of_sample[split] = picked
        omega[split] = value
        pick, picked, value = _pick_nb(rest, half)
        chosen[other] = pick
        in_sample[other] = rest[pick]
        out_of_sample[other] = picked
        omega[other] = value
    return finite


@njit(cache=True, nogil=True)
def block_sums_nb(matrix: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per block and column, the sum of the returns and of their squares, row by row.

    ``starts`` holds each block's first row, then the number of rows. Each column's sums are
    the plain additions in row order that ``grid_stats_nb.daily_sums_nb`` makes.
    """
    blocks = starts.shape[0] - 1
    columns = matrix.shape[1]
    sums = np.zeros((blocks, columns))
    squares = np.zeros((blocks, columns))
    for block in range(blocks):
        total = sums[block]
        square_total = squares[block]
        for row in range(starts[block], starts[block + 1]):
            values = matrix[row]
            for column in range(columns):
                value = values[column]
                total[column] += value
                square_total[column] += value * value
    return sums, squares
