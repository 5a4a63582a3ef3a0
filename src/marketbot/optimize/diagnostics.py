"""Overfitting diagnostics of a finished grid: deflated Sharpe ratio and PBO.

Both are computed on *daily* returns (the equity at each UTC day's last close over the
previous day's), so hourly and daily data give comparable figures: the DSR of the best
combination against every combination's Sharpe ratio, and the PBO across the best K
combinations by the optimised metric (K = 200 by default).

Two ways to get the returns' sums:

- from the grid pass (:func:`diagnostics_from_daily_sums`): the fast grid streams each
  combination's daily returns into per-block sums while it simulates (:class:`DailySums`;
  a few floats per CSCV block per combination), and the diagnostics are finished from
  them, with no backtest run again;
- by re-running (:func:`overfitting_diagnostics`): for evaluations the fast grid does not
  serve (another executor, a strategy without a grid hook, Optuna trials, portfolios),
  the best K combinations are backtested again one by one for their equity curves.

Both give the same figures to floating-point rounding (the sums are taken in another
order; tests/unit/optimize/test_diagnostics.py compares them).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketbot.optimize import grid_stats_nb as nb
from marketbot.optimize.overfitting import (
    PBO_TOP_COMBINATIONS,
    BlockSums,
    PBOResult,
    ReturnMoments,
    deflated_sharpe_from_moments,
    deflated_sharpe_from_returns,
    pbo_from_block_sums,
    probability_of_backtest_overfitting,
)

DAYS_PER_YEAR: Final = 365.0
_NANOSECONDS_PER_DAY: Final = 86_400_000_000_000
# CSCV needs S even blocks with enough days each; fewer days use fewer splits.
_MIN_DAYS_PER_BLOCK: Final = 5

EquityOf = Callable[[Mapping[str, Any]], pd.Series]


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns of the equity at each UTC day's last bar close."""
    times = pd.DatetimeIndex(equity.index).as_unit("ns").asi8
    last = day_end_bars(times)
    closes = equity.to_numpy()[last]
    days = times[last] // _NANOSECONDS_PER_DAY
    index = pd.DatetimeIndex(days[1:] * _NANOSECONDS_PER_DAY, tz="UTC")
    return pd.Series(closes[1:] / closes[:-1] - 1.0, index=index)


def day_end_bars(times_ns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The bars that end a UTC day: where the day number changes, and the final bar."""
    days = times_ns // _NANOSECONDS_PER_DAY
    return np.flatnonzero(np.r_[days[1:] != days[:-1], True]).astype(np.int64)


@dataclass(frozen=True, slots=True)
class DailySums:
    """Each combination's daily returns reduced to the sums the diagnostics read.

    Attributes:
        rows: One ``grid_stats_nb`` daily row per combination, in grid order.
        block_counts: The returns of each CSCV block (at least one block).
        num_returns: T, the daily returns of every combination.
        num_splits: S, the CSCV blocks of the PBO (0 when there are too few days).
    """

    rows: npt.NDArray[np.float64]
    block_counts: npt.NDArray[np.float64]
    num_returns: int
    num_splits: int


def daily_layout(
    times_ns: npt.NDArray[np.int64] | None,
) -> tuple[nb.DailyLayout, DailySums]:
    """Where the daily returns of these bars fall, and empty sums to fill for them.

    Args:
        times_ns: The traded bars' times; None for a layout that keeps no daily return.

    Returns:
        The layout the grid streams by, and a :class:`DailySums` whose ``rows`` has no
        combination yet (the grid allocates its rows with that width).
    """
    if times_ns is None or len(times_ns) == 0:
        layout = nb.DailyLayout(np.full(1, -1, dtype=np.int64), np.zeros(2, dtype=np.int64), 1)
        return layout, DailySums(np.empty((0, nb.DAILY_BLOCKS + 2)), np.zeros(1), 0, 0)
    day_ends = day_end_bars(times_ns)
    num_returns = len(day_ends) - 1
    num_splits = _splits_for(num_returns)
    blocks = max(num_splits, 1)
    # As the PBO cuts T rows into S blocks: block b starts at row b * T // S.
    starts = np.append((np.arange(blocks) * num_returns) // blocks, num_returns)
    layout = nb.DailyLayout(np.append(day_ends, -1), starts.astype(np.int64), blocks)
    width = nb.DAILY_BLOCKS + 2 * blocks
    counts = np.diff(starts).astype(np.float64)
    return layout, DailySums(np.empty((0, width)), counts, num_returns, num_splits)


def overfitting_diagnostics(
    results: pd.DataFrame,
    combinations: Sequence[Mapping[str, Any]],
    metric: str,
    equity_of: EquityOf,
    *,
    minimise: bool = False,
    top_k: int = PBO_TOP_COMBINATIONS,
) -> dict[str, Any]:
    """DSR of the best combination and PBO across the top ``top_k``, by re-running them.

    Args:
        results: The optimiser's table (one row per combination, ``sharpe`` and ``eligible``
            columns), in the order of ``combinations``.
        combinations: The full parameter dicts, in the table's order.
        metric: The metric the grid was ranked by.
        equity_of: Runs one combination and returns its equity curve.
        minimise: Whether smaller ``metric`` is better.
        top_k: How many of the best eligible combinations feed the PBO.
    """
    chosen = _chosen(results, metric, minimise, top_k)
    curves = {position: daily_returns(equity_of(combinations[position])) for position in chosen}
    matrix = pd.DataFrame(curves).dropna()
    diagnostics: dict[str, Any] = {"top_k": len(chosen), "days": len(matrix)}
    if chosen and len(matrix) >= 2:
        deflated = deflated_sharpe_from_returns(
            matrix[chosen[0]].to_numpy(), _trial_sharpes(results), num_trials=len(results)
        )
        diagnostics["deflated_sharpe"] = deflated.to_dict()
    splits = _splits_for(len(matrix))
    if len(chosen) >= 2 and splits >= 2:
        pbo = probability_of_backtest_overfitting(matrix.to_numpy(), num_splits=splits)
        diagnostics["pbo"] = _summary(pbo)
    return diagnostics


def diagnostics_from_daily_sums(
    results: pd.DataFrame,
    sums: DailySums,
    metric: str,
    *,
    minimise: bool = False,
    top_k: int = PBO_TOP_COMBINATIONS,
) -> dict[str, Any] | None:
    """What :func:`overfitting_diagnostics` gives, from the grid pass's daily sums.

    Args:
        results: The optimiser's table, in the order of ``sums.rows``.
        sums: Every combination's daily sums, kept by the fast grid.
        metric: The metric the grid was ranked by.
        minimise: Whether smaller ``metric`` is better.
        top_k: How many of the best eligible combinations feed the PBO.

    Returns:
        The diagnostics; None when a chosen combination has a daily return that is not
        finite (re-run them then: the returns matrix drops such days, which sums cannot).
    """
    chosen = _chosen(results, metric, minimise, top_k)
    rows = sums.rows[chosen]
    if not np.all(rows[:, nb.DAILY_FINITE] == 1.0):
        return None
    days = sums.num_returns if chosen else 0
    diagnostics: dict[str, Any] = {"top_k": len(chosen), "days": days}
    blocks = len(sums.block_counts)
    block_sums = rows[:, nb.DAILY_BLOCKS : nb.DAILY_BLOCKS + blocks]
    block_squares = rows[:, nb.DAILY_BLOCKS + blocks : nb.DAILY_BLOCKS + 2 * blocks]
    if chosen and days >= 2:
        moments = _moments(rows[0], block_sums[0].sum(), block_squares[0].sum(), days)
        deflated = deflated_sharpe_from_moments(
            moments, _trial_sharpes(results), num_trials=len(results)
        )
        diagnostics["deflated_sharpe"] = deflated.to_dict()
    if len(chosen) >= 2 and sums.num_splits >= 2:
        blocks_of_chosen = BlockSums(
            sums=np.ascontiguousarray(block_sums.T),
            squares=np.ascontiguousarray(block_squares.T),
            counts=sums.block_counts,
            shift=np.zeros(len(chosen)),  # the grid sums the returns themselves
        )
        diagnostics["pbo"] = _summary(pbo_from_block_sums(blocks_of_chosen))
    return diagnostics


def _moments(
    row: npt.NDArray[np.float64], total: float, squares: float, count: int
) -> ReturnMoments:
    """The moments of one combination's daily returns from their power sums."""
    mean = total / count
    second = squares / count
    third = float(row[nb.DAILY_CUBES]) / count
    fourth = float(row[nb.DAILY_FOURTHS]) / count
    m2 = second - mean * mean
    m3 = third - 3.0 * mean * second + 2.0 * mean**3
    m4 = fourth - 4.0 * mean * third + 6.0 * mean * mean * second - 3.0 * mean**4
    constant = bool(row[nb.DAILY_LOWEST] == row[nb.DAILY_HIGHEST])
    return ReturnMoments(count, mean, max(m2, 0.0), m3, m4, constant, True)


def _chosen(results: pd.DataFrame, metric: str, minimise: bool, top_k: int) -> list[int]:
    """The best ``top_k`` eligible rows by ``metric``, best first.

    Ties: later rows first when maximising, earlier ones when minimising.
    """
    eligible = results[results["eligible"]]
    order = eligible[metric].to_numpy().argsort(kind="stable")
    if not minimise:
        order = order[::-1]
    return [int(eligible.index[i]) for i in order[:top_k]]


def _trial_sharpes(results: pd.DataFrame) -> npt.NDArray[np.float64]:
    """Every eligible trial's annualised Sharpe, in per-day units like the daily returns."""
    eligible = results[results["eligible"]]
    return np.asarray(eligible["sharpe"].to_numpy() / math.sqrt(DAYS_PER_YEAR), dtype=np.float64)


def _summary(pbo: PBOResult) -> dict[str, object]:
    """The PBO's scalar fields, as ``to_dict`` gives them (the per-split arrays stay out)."""
    return {
        field.name: getattr(pbo, field.name)
        for field in dataclasses.fields(pbo)
        if not isinstance(getattr(pbo, field.name), np.ndarray)
    }


def _splits_for(days: int) -> int:
    """The largest even block count up to 16 that leaves each block enough days."""
    splits = min(16, days // _MIN_DAYS_PER_BLOCK)
    return splits - splits % 2
