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

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from marketbot.core.errors import ConfigError
from marketbot.optimize import pbo_nb
from marketbot.optimize.pbo_splits import (
    BlockSums,
    FloatArray,
    PerformanceMetric,
    evaluate_splits,
    mean_return,
    sharpe,
)

__all__ = [
    "DEFAULT_MAX_COMBINATIONS",
    "PBO_TOP_COMBINATIONS",
    "BlockSums",
    "PBOResult",
    "PerformanceMetric",
    "block_sums",
    "mean_return",
    "pbo_from_block_sums",
    "probability_of_backtest_overfitting",
    "sharpe",
]

PBO_TOP_COMBINATIONS: Final = 200
"""How many columns the optimiser passes to the PBO: its K best combinations by the metric."""

DEFAULT_MAX_COMBINATIONS: Final = 20_000
"""Split cap: C(16, 8) = 12,870 splits are all evaluated; beyond the cap they are sampled."""

_MAX_SPLITS: Final = 62  # a split is stored as a bit mask in an int64


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
    return _pbo_result(shape, evaluate_splits(blocks, splits, metric), "")


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
    return _pbo_result(shape, evaluate_splits(checked, splits, metric), "")


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


def _least_squares_line(x: FloatArray, y: FloatArray) -> tuple[float, float]:
    """Slope and intercept of y on x; slope 0 and the mean of y when x does not vary."""
    x_mean, y_mean = float(np.mean(x)), float(np.mean(y))
    spread = float(np.sum((x - x_mean) ** 2))
    if spread == 0:
        return 0.0, y_mean
    slope = float(np.sum((x - x_mean) * (y - y_mean))) / spread
    return slope, y_mean - slope * x_mean
