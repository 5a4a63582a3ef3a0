"""The probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

:func:`probability_of_backtest_overfitting` (Bailey, Borwein, Lopez de Prado and Zhu 2017) is
how often the in-sample best combination ranks in the bottom half out-of-sample. Degenerate
input gives ``valid=False`` and the worst value (1.0), so a gate that forgets ``valid`` fails
closed. docs/overfitting.md explains how to read it.

The PBO reads the returns only through per-block sums (:class:`BlockSums`), so
:func:`pbo_from_block_sums` computes it from sums kept while the returns streamed by (the
optimiser's fast grid keeps them per combination) as :func:`block_sums` reduces a matrix.
The splits of the built-in metrics run compiled (``pbo_nb``); any other metric with numpy.
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

PBO_TOP_COMBINATIONS: Final = 200
"""How many columns the optimiser passes to the PBO: its K best combinations by the metric."""

DEFAULT_MAX_COMBINATIONS: Final = 20_000
"""Split cap: C(16, 8) = 12,870 splits are all evaluated; beyond the cap they are sampled."""

_MAX_SPLITS: Final = 62  # a split is stored as a bit mask in an int64
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
class PBOResult:
    """Probability of backtest overfitting by CSCV, with the per-split detail.

    The arrays have one entry per evaluated split, in split order (lexicographic over the
    in-sample block sets, or sampled complementary pairs), and are read-only.

    Attributes:
        pbo: The share of splits whose logit is <= 0, in [0, 1]; 1.0 when invalid.
        logits: lambda = ln(omega / (1 - omega)), per split.
        out_of_sample_relative_ranks: omega = out-of-sample rank / (N + 1) of the in-sample
            best column (rank 1 = worst of the N; ties take the average rank), per split.
        best_in_sample_columns: The column chosen in-sample, per split.
        in_sample_performance: Its metric in-sample, per split.
        out_of_sample_performance: Its metric out-of-sample, per split (plot it against
            ``in_sample_performance`` to see the degradation).
        degradation_slope: Least-squares slope of out-of-sample on in-sample performance.
        degradation_intercept: The intercept of that line (the slope is 0.0 and the intercept
            the mean when the in-sample values do not vary).
        probability_of_loss: The share of splits whose out-of-sample metric is below 0.
        num_overfit: The number of splits whose logit is <= 0.
        num_combinations: The number of splits evaluated.
        total_combinations: C(S, S/2); more than ``num_combinations`` when ``sampled``.
        sampled: True when the splits were a random sample.
        num_splits: S, the number of contiguous row blocks.
        num_rows: T, the periods (rows) of the returns matrix.
        num_columns: N, the combinations (columns) of the returns matrix.
        valid: False when the PBO is undefined for this input.
        note: Why it is invalid; "" otherwise.
    """

    pbo: float
    logits: FloatArray
    out_of_sample_relative_ranks: FloatArray
    best_in_sample_columns: npt.NDArray[np.int64]
    in_sample_performance: FloatArray
    out_of_sample_performance: FloatArray
    degradation_slope: float
    degradation_intercept: float
    probability_of_loss: float
    num_overfit: int
    num_combinations: int
    total_combinations: int
    sampled: bool
    num_splits: int
    num_rows: int
    num_columns: int
    valid: bool
    note: str

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-safe dict: arrays become lists, every float is finite."""
        return {
            name: value.tolist() if isinstance(value, np.ndarray) else value
            for name, value in self.__dict__.items()
        }


def probability_of_backtest_overfitting(
    returns: npt.ArrayLike,
    num_splits: int = 16,
    metric: PerformanceMetric = sharpe,
    *,
    max_combinations: int = DEFAULT_MAX_COMBINATIONS,
    seed: int = 0,
) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, Lopez de Prado and Zhu (2017), "The Probability of Backtest Overfitting",
    J. Computational Finance 20(4). The T x N matrix M holds the per-period returns
    of N combinations. Its rows are cut into S contiguous blocks (sizes differ by at most one
    row). For each of the C(S, S/2) ways to pick S/2 blocks as in-sample J (the rest, J', is
    out-of-sample):

    1. n* = argmax over columns of metric(J); ties go to the tied column that does worst
       out-of-sample (conservative, and independent of column order);
    2. omega = rank of n* among metric(J') / (N + 1), rank 1 the worst, ties averaged;
    3. lambda = ln(omega / (1 - omega)).

    PBO = #{lambda <= 0} / #splits: how often the in-sample winner is at or below the median
    out-of-sample. Pure noise gives about 0.5; real skill gives near 0.

    Each block's per-column sum and sum of squares (of the returns, in row order, so that
    columns equal on a block tie exactly: :func:`block_sums`) are summed once
    over every subset of each group of 8 blocks: a split costs one lookup per group. The
    built-in metrics run compiled (``pbo_nb``: each complementary pair of splits evaluates
    each half once), 12,870 splits x 100 columns in about 3 ms on one core; any other metric
    with numpy (about 0.15 s for 200 columns). A variance below 1e-12 of the raw second
    moment counts as 0 (constant).
    When C(S, S/2) > ``max_combinations``, floor(max_combinations / 2) distinct in-sample sets
    holding block 0 are drawn with ``numpy.random.default_rng(seed)``, each with its
    complement, keeping the sample symmetric. The optimiser passes its
    ``PBO_TOP_COMBINATIONS`` (200) best combinations, not every trial, to bound the memory.

    Args:
        returns: T x N per-period returns, one column per combination.
        num_splits: S, even, 2..62; T must be at least S. 16 gives 12,870 splits.
        metric: Performance from each column's mean and variance; :func:`sharpe` (per period)
            or :func:`mean_return`.
        max_combinations: The most splits to evaluate, >= 2.
        seed: Seed of the sampling RNG, used only when splits are sampled.

    Returns:
        The PBO with every split's logit and performance pair; invalid (PBO 1.0, no splits)
        with fewer than 2 columns, fewer rows than blocks, or a value that is not finite.

    Raises:
        ConfigError: When ``returns`` is not 2-D, S is odd or out of range,
            ``max_combinations`` < 2, or the metric's result has the wrong shape or NaN.
    """
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim != 2:
        raise ConfigError(
            f"returns must be a 2-D (periods x combinations) array, got {matrix.ndim}-D"
        )
    if num_splits % 2 or not 2 <= num_splits <= _MAX_SPLITS:
        raise ConfigError(f"num_splits must be even and in 2..{_MAX_SPLITS}, got {num_splits}")
    if max_combinations < 2:
        raise ConfigError(f"max_combinations must be at least 2, got {max_combinations}")
    num_rows, num_columns = matrix.shape
    shape = (num_splits, num_rows, num_columns)
    if num_columns < 2:
        return _pbo_result(shape, _NO_SPLITS, f"PBO needs at least 2 columns, got {num_columns}")
    if num_rows < num_splits:
        return _pbo_result(shape, _NO_SPLITS, f"{num_rows} rows cannot fill {num_splits} blocks")
    if not np.all(np.isfinite(matrix)):
        return _pbo_result(shape, _NO_SPLITS, "returns hold a value that is not finite")
    blocks = block_sums(matrix, num_splits)
    splits = (num_splits, max_combinations, seed)
    return _pbo_result(shape, _evaluate_splits(blocks, splits, metric), "")


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


def block_sums(returns: npt.ArrayLike, num_splits: int) -> BlockSums:
    """The block sums of a T x N returns matrix (T >= S): of the returns themselves (shift 0).

    Each column's sums run down its rows in order (``pbo_nb.block_sums_nb``), the additions
    the optimiser's grid makes as it streams a combination's daily returns, so the same
    returns give the same sums either way, bit for bit; and two columns with the same
    returns on a block have the same sums there, so they tie exactly in-sample.
    """
    matrix = np.ascontiguousarray(returns, dtype=np.float64)
    num_rows, num_columns = matrix.shape
    starts = np.append((np.arange(num_splits) * num_rows) // num_splits, num_rows)
    sums, squares = pbo_nb.block_sums_nb(matrix, starts.astype(np.int64))
    return BlockSums(
        sums=sums,
        squares=squares,
        counts=np.diff(starts).astype(np.float64),
        shift=np.zeros(num_columns),
    )


def pbo_from_block_sums(
    blocks: BlockSums,
    metric: PerformanceMetric = sharpe,
    *,
    max_combinations: int = DEFAULT_MAX_COMBINATIONS,
    seed: int = 0,
) -> PBOResult:
    """The PBO of the returns behind ``blocks``, as :func:`probability_of_backtest_overfitting`.

    S is the number of blocks and T the sum of their counts; the result is the one the
    matrix gives, up to the rounding of sums taken about other shifts or in another order.

    Raises:
        ConfigError: When the arrays' shapes disagree, S is odd or out of range,
            ``max_combinations`` < 2, or the metric's result has the wrong shape or NaN.
    """
    sums = np.asarray(blocks.sums, dtype=np.float64)
    squares = np.asarray(blocks.squares, dtype=np.float64)
    counts = np.asarray(blocks.counts, dtype=np.float64)
    shift = np.asarray(blocks.shift, dtype=np.float64)
    num_splits = len(counts)
    if sums.ndim != 2 or sums.shape != squares.shape or sums.shape != (num_splits, len(shift)):
        raise ConfigError(
            f"block sums of shape {sums.shape} and {squares.shape} do not match "
            f"{num_splits} blocks x {len(shift)} columns"
        )
    if num_splits % 2 or not 2 <= num_splits <= _MAX_SPLITS:
        raise ConfigError(f"num_splits must be even and in 2..{_MAX_SPLITS}, got {num_splits}")
    if max_combinations < 2:
        raise ConfigError(f"max_combinations must be at least 2, got {max_combinations}")
    num_rows, num_columns = int(counts.sum()), len(shift)
    shape = (num_splits, num_rows, num_columns)
    if num_columns < 2:
        return _pbo_result(shape, _NO_SPLITS, f"PBO needs at least 2 columns, got {num_columns}")
    if not np.all(counts >= 1):
        return _pbo_result(shape, _NO_SPLITS, f"{num_rows} rows cannot fill {num_splits} blocks")
    if not all(np.all(np.isfinite(array)) for array in (sums, squares, shift)):
        return _pbo_result(shape, _NO_SPLITS, "returns hold a value that is not finite")
    checked = BlockSums(sums, squares, counts, shift)
    splits = (num_splits, max_combinations, seed)
    return _pbo_result(shape, _evaluate_splits(checked, splits, metric), "")


_Splits = tuple[npt.NDArray[np.int64], FloatArray, FloatArray, FloatArray]
_NO_SPLITS: Final[_Splits] = (np.zeros(0, np.int64), *(np.zeros(0, np.float64),) * 3)


def _pbo_result(shape: tuple[int, int, int], splits: _Splits, note: str) -> PBOResult:
    """The PBO and its summaries from the per-split picks; fail-closed when there are none."""
    num_splits, num_rows, num_columns = shape
    chosen, in_sample, out_of_sample, omega = splits
    logits = np.log(omega / (1.0 - omega))
    evaluated = len(logits)
    valid = evaluated > 0
    num_overfit = int(np.count_nonzero(logits <= 0))
    slope, intercept = _least_squares_line(in_sample, out_of_sample) if valid else (0.0, 0.0)
    losses = int(np.count_nonzero(out_of_sample < 0))
    for array in (chosen, in_sample, out_of_sample, omega, logits):
        array.flags.writeable = False
    total = math.comb(num_splits, num_splits // 2)
    return PBOResult(
        pbo=num_overfit / evaluated if valid else 1.0,
        logits=logits,
        out_of_sample_relative_ranks=omega,
        best_in_sample_columns=chosen,
        in_sample_performance=in_sample,
        out_of_sample_performance=out_of_sample,
        degradation_slope=slope,
        degradation_intercept=intercept,
        probability_of_loss=losses / evaluated if valid else 1.0,
        num_overfit=num_overfit,
        num_combinations=evaluated,
        total_combinations=total,
        sampled=0 < evaluated < total,
        num_splits=num_splits,
        num_rows=num_rows,
        num_columns=num_columns,
        valid=valid,
        note=note,
    )


@functools.lru_cache(maxsize=16)
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


def _evaluate_splits(
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
    """:func:`_evaluate_splits` of a built-in metric by ``pbo_nb``: the same numbers."""
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


def _least_squares_line(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    """Slope and intercept of y on x; slope 0 and the mean of y when x does not vary."""
    x_mean, y_mean = float(np.mean(x)), float(np.mean(y))
    spread = float(np.sum((x - x_mean) ** 2))
    if spread == 0:
        return 0.0, y_mean
    slope = float(np.sum((x - x_mean) * (y - y_mean))) / spread
    return slope, y_mean - slope * x_mean
