"""The CSCV splits of the PBO: which blocks each split holds in-sample, and its pick.

A metric (:class:`PerformanceMetric`) sees each column's mean and variance on a set of
blocks, read from per-block sums (:class:`BlockSums`) through subset-sum tables;
:func:`evaluate_splits` gives every split's in-sample best column, its metric in and out of
sample and its relative rank, which :mod:`marketbot.optimize.pbo` turns into the PBO.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from itertools import combinations
from typing import Final, Protocol

import numba
import numpy as np
import numpy.typing as npt

from marketbot.core.errors import ConfigError
from marketbot.optimize import pbo_nb

FloatArray = npt.NDArray[np.float64]

_CHUNK_ELEMENTS: Final = 1 << 17  # splits x columns per pass: bounds the temporaries (~1 MB)
_GROUP_BITS: Final = 8  # blocks per subset-sum table (2^8 rows each)
_CONSTANT_TOLERANCE: Final = 1e-12  # variance below this share of the raw second moment is 0
# Splits x columns from which the compiled splits run on every numba thread (about 2.5 ms of
# work on one core: the optimiser's 12,870 splits x 100 columns and up). Below, one thread:
# waking the others costs more than it saves (and on a busy machine a parallel region waits
# for its slowest thread).
_PARALLEL_EVALUATIONS: Final = 1 << 20


class PerformanceMetric(Protocol):
    """A per-column performance measure that depends only on the mean and the variance.

    The PBO's fast path sums each block once and gets every split's mean and variance from
    those sums, so a metric sees moments, not rows (path-dependent measures such as drawdown
    are out of reach). Arrays are shaped (splits, columns); ``count`` is (splits, 1).
    """

    def __call__(self, mean: FloatArray, variance: FloatArray, count: FloatArray) -> FloatArray:
        """Performance of each column on each split; higher is better; finite."""
        ...


def sharpe(mean: FloatArray, variance: FloatArray, count: FloatArray) -> FloatArray:
    """Per-period Sharpe ratio mean / sqrt(variance) (ddof 1), 0.0 where the variance is 0."""
    deviation = np.sqrt(variance)
    return np.divide(mean, deviation, out=np.zeros_like(mean), where=deviation > 0)


def mean_return(mean: FloatArray, variance: FloatArray, count: FloatArray) -> FloatArray:
    """Mean per-period return."""
    return mean


@dataclass(frozen=True, eq=False)
class BlockSums:
    """A T x N returns matrix as the PBO reads it: per CSCV block and column, two sums.

    The T rows are cut into S contiguous blocks (block b starts at row b * T // S). Any
    shift near a column's returns keeps the sums exact enough; the mean adds it back.

    Attributes:
        sums: (S, N): per block and column, the sum of (return - shift).
        squares: (S, N): per block and column, the sum of (return - shift)^2.
        counts: (S,): the rows of each block.
        shift: (N,): each column's shift (0 from ``block_sums`` and the optimiser's grid).
    """

    sums: FloatArray
    squares: FloatArray
    counts: FloatArray
    shift: FloatArray


def _split_bits(num_splits: int, max_combinations: int, seed: int) -> npt.NDArray[np.int64]:
    """In-sample block sets as bit masks (bit b = block b), all of them or a symmetric sample.

    Read-only, and cached: the same arguments give the same splits (12,870 of them take
    5 ms to list).
    """
    bits = _listed_split_bits(num_splits, max_combinations, seed)
    bits.flags.writeable = False
    return bits


@functools.lru_cache(maxsize=16)
def _split_partners(num_splits: int, max_combinations: int, seed: int) -> npt.NDArray[np.int64]:
    """Each split's complementary split, by position in :func:`_split_bits` (read-only).

    Every split's complement is a split too: all of them, or sampled complementary pairs.
    """
    bits = _split_bits(num_splits, max_combinations, seed)
    order = np.argsort(bits, kind="stable")
    complement = ((1 << num_splits) - 1) ^ bits
    found = np.searchsorted(bits[order], complement)
    partner = order[np.minimum(found, len(bits) - 1)].astype(np.int64)
    if not np.array_equal(bits[partner], complement):
        raise RuntimeError("PBO splits without their complements (a bug)")
    partner.flags.writeable = False
    return partner


def _listed_split_bits(num_splits: int, max_combinations: int, seed: int) -> npt.NDArray[np.int64]:
    half = num_splits // 2
    if math.comb(num_splits, half) <= max_combinations:
        members = np.array(list(combinations(range(num_splits), half)), dtype=np.int64)
        return np.asarray((np.int64(1) << members).sum(axis=1), dtype=np.int64)
    num_pairs = max_combinations // 2
    rng = np.random.default_rng(seed)
    drawn: dict[int, None] = {}  # an insertion-ordered set of in-sample sets holding block 0
    while len(drawn) < num_pairs:
        noise = rng.random((num_pairs, num_splits - 1))
        others = np.argsort(noise, axis=1)[:, : half - 1] + 1
        for bits in ((np.int64(1) << others).sum(axis=1) | 1).tolist():
            if len(drawn) < num_pairs:
                drawn.setdefault(bits)
    canonical = np.array(list(drawn), dtype=np.int64)
    complement = ((1 << num_splits) - 1) ^ canonical
    return np.column_stack([canonical, complement]).ravel()


def _subset_tables(block_values: FloatArray) -> FloatArray:
    """Per group of 8 blocks, the sum over every subset of them, indexed by the subset's bits.

    One (groups x 256 (x columns)) array; a last group of fewer blocks leaves its higher rows
    unused (they are zero). Lookups, not a product with 0/1 masks: BLAS's thread pool is 10x
    slower on a busy machine, and a split's in-sample sum is then bit-for-bit the
    out-of-sample sum of its complement.
    """
    groups = (len(block_values) + _GROUP_BITS - 1) // _GROUP_BITS
    tables = np.zeros((groups, 1 << _GROUP_BITS, *block_values.shape[1:]), dtype=np.float64)
    for group, table in enumerate(tables):
        for bit, row in enumerate(block_values[group * _GROUP_BITS : (group + 1) * _GROUP_BITS]):
            np.add(table[: 1 << bit], row, out=table[1 << bit : 2 << bit])
    return tables


def _subset_sum(tables: FloatArray, bits: npt.NDArray[np.int64]) -> FloatArray:
    """Sum over the blocks each bit mask selects, from :func:`_subset_tables`."""
    low_bits = (1 << _GROUP_BITS) - 1
    total: FloatArray = tables[0][bits & low_bits]
    for group, table in enumerate(tables[1:], start=1):
        total += table[(bits >> (_GROUP_BITS * group)) & low_bits]
    return total


def evaluate_splits(
    blocks: BlockSums, splits: tuple[int, int, int], metric: PerformanceMetric
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
    """Per split: the in-sample best column, its in/out-of-sample metric, and its omega.

    ``splits`` is (S, max_combinations, seed), the arguments of :func:`_split_bits`.
    """
    num_columns = len(blocks.shift)
    bits = _split_bits(*splits)
    tables = (
        _subset_tables(blocks.sums),
        _subset_tables(blocks.squares),
        _subset_tables(blocks.counts),
    )
    if metric is sharpe or metric is mean_return:
        partner = _split_partners(*splits)
        return _evaluate_splits_compiled(tables, blocks.shift, bits, partner, metric)
    all_blocks = (1 << len(blocks.counts)) - 1
    chosen = np.empty(len(bits), dtype=np.int64)
    in_sample = np.empty(len(bits), dtype=np.float64)
    out_of_sample = np.empty(len(bits), dtype=np.float64)
    omega = np.empty(len(bits), dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // num_columns)
    for start in range(0, len(bits), step):
        part = slice(start, start + step)
        is_perf = _metric_on(bits[part], tables, blocks.shift, metric)
        oos_perf = _metric_on(all_blocks ^ bits[part], tables, blocks.shift, metric)
        best = is_perf.max(axis=1, keepdims=True)
        pick = np.argmin(np.where(is_perf == best, oos_perf, np.inf), axis=1)
        rows = np.arange(len(pick))
        picked_oos = oos_perf[rows, pick][:, None]
        below = np.count_nonzero(oos_perf < picked_oos, axis=1)
        tied = np.count_nonzero(oos_perf == picked_oos, axis=1)
        chosen[part] = pick
        in_sample[part] = is_perf[rows, pick]
        out_of_sample[part] = picked_oos[:, 0]
        omega[part] = (below + (tied + 1) / 2.0) / (num_columns + 1)
    return chosen, in_sample, out_of_sample, omega


def _evaluate_splits_compiled(
    tables: tuple[FloatArray, FloatArray, FloatArray],
    shift: FloatArray,
    bits: npt.NDArray[np.int64],
    partner: npt.NDArray[np.int64],
    metric: PerformanceMetric,
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]:
    """:func:`evaluate_splits` of a built-in metric by ``pbo_nb``: the same numbers."""
    sum_tables, square_tables, count_tables = tables
    out = (
        np.empty(len(bits), dtype=np.int64),
        np.empty(len(bits), dtype=np.float64),
        np.empty(len(bits), dtype=np.float64),
        np.empty(len(bits), dtype=np.float64),
    )
    code = pbo_nb.METRIC_SHARPE if metric is sharpe else pbo_nb.METRIC_MEAN_RETURN
    arguments = ((sum_tables, square_tables, count_tables), np.ascontiguousarray(shift), bits)
    if len(bits) * len(shift) < _PARALLEL_EVALUATIONS or numba.get_num_threads() == 1:
        finite = pbo_nb.evaluate_splits_serial_nb(
            *arguments, partner, code, _CONSTANT_TOLERANCE, out
        )
    else:
        workers = min(numba.get_num_threads(), len(bits) // 2)
        finite = pbo_nb.evaluate_splits_nb(
            *arguments, partner, code, _CONSTANT_TOLERANCE, workers, out
        )
    if not finite:
        raise ConfigError("metric returned a value that is not finite")
    return out


def _metric_on(
    bits: npt.NDArray[np.int64],
    tables: tuple[FloatArray, FloatArray, FloatArray],
    shift: FloatArray,
    metric: PerformanceMetric,
) -> FloatArray:
    """The metric of every column on the blocks each bit mask selects."""
    sum_tables, square_tables, count_tables = tables
    sums = _subset_sum(sum_tables, bits)
    squares = _subset_sum(square_tables, bits)
    count = _subset_sum(count_tables, bits)[:, None]
    # Reciprocals once per split, then products (pbo_nb makes the same operations).
    mean = sums * (1.0 / count)
    centred = squares - sums * mean  # the sum of squared deviations, up to cancellation
    numerically_constant = centred <= _CONSTANT_TOLERANCE * squares
    variance = np.multiply(centred, 1.0 / np.maximum(count - 1.0, 1.0), out=centred)
    variance[numerically_constant] = 0.0
    mean += shift
    performance = np.asarray(metric(mean, variance, count), dtype=np.float64)
    if performance.shape != sums.shape:
        raise ConfigError(f"metric must return shape {sums.shape}, got {performance.shape}")
    if not np.all(np.isfinite(performance)):
        raise ConfigError("metric returned a value that is not finite")
    return performance
