"""Overfitting diagnostics of a finished grid: deflated Sharpe ratio and PBO.

Both are computed on *daily* returns (the equity at each UTC day's last close), so hourly
and daily data give comparable figures, and on the best K combinations by the optimised
metric (K = 200 by default), which are re-run to get their equity curves: the grid itself
keeps no curves, so memory stays bounded by K x days.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.optimize.overfitting import (
    PBO_TOP_COMBINATIONS,
    deflated_sharpe_from_returns,
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
    days = times // _NANOSECONDS_PER_DAY
    # The last bar of each day: where the day number changes, and the final bar.
    last = np.flatnonzero(np.r_[days[1:] != days[:-1], True])
    closes = equity.to_numpy()[last]
    index = pd.DatetimeIndex(days[last][1:] * _NANOSECONDS_PER_DAY, tz="UTC")
    return pd.Series(closes[1:] / closes[:-1] - 1.0, index=index)


def overfitting_diagnostics(
    results: pd.DataFrame,
    combinations: Sequence[Mapping[str, Any]],
    metric: str,
    equity_of: EquityOf,
    *,
    minimise: bool = False,
    top_k: int = PBO_TOP_COMBINATIONS,
) -> dict[str, Any]:
    """DSR of the best combination and PBO across the top ``top_k``, as a JSON-ready dict.

    Args:
        results: The optimiser's table (one row per combination, ``sharpe`` and ``eligible``
            columns), in the order of ``combinations``.
        combinations: The full parameter dicts, in the table's order.
        metric: The metric the grid was ranked by.
        equity_of: Runs one combination and returns its equity curve.
        minimise: Whether smaller ``metric`` is better.
        top_k: How many of the best eligible combinations feed the PBO.
    """
    eligible = results[results["eligible"]]
    order = eligible[metric].to_numpy().argsort(kind="stable")
    if not minimise:
        order = order[::-1]
    chosen = [int(eligible.index[i]) for i in order[:top_k]]
    curves = {position: daily_returns(equity_of(combinations[position])) for position in chosen}
    matrix = pd.DataFrame(curves).dropna()
    # Every trial's annualised Sharpe, in per-day units like the daily returns.
    trial_sharpes = eligible["sharpe"].to_numpy() / math.sqrt(DAYS_PER_YEAR)
    best = chosen[0] if chosen else None
    diagnostics: dict[str, Any] = {"top_k": len(chosen), "days": len(matrix)}
    if best is not None and len(matrix) >= 2:
        deflated = deflated_sharpe_from_returns(
            matrix[best].to_numpy(), trial_sharpes, num_trials=len(results)
        )
        diagnostics["deflated_sharpe"] = deflated.to_dict()
    splits = _splits_for(len(matrix))
    if len(chosen) >= 2 and splits >= 2:
        pbo = probability_of_backtest_overfitting(matrix.to_numpy(), num_splits=splits)
        diagnostics["pbo"] = {
            key: value for key, value in pbo.to_dict().items() if not isinstance(value, list)
        }
    return diagnostics


def _splits_for(days: int) -> int:
    """The largest even block count up to 16 that leaves each block enough days."""
    splits = min(16, days // _MIN_DAYS_PER_BLOCK)
    return splits - splits % 2
