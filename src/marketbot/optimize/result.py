"""What an optimisation returns: the table of every combination and the best one.

:func:`select_best` assembles the table from each combination's metrics and picks the best
eligible row; :class:`OptimizationResult` holds it, ranks it and turns it into JSON.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from marketbot.core.errors import DataError
from marketbot.optimize.grid import ParameterGrid, is_minimised


@dataclass(frozen=True)
class OptimizationResult:
    """The outcome of an optimisation.

    Attributes:
        strategy: The strategy's name.
        metric: The metric optimised.
        minimise: True for drawdown metrics (smaller is better).
        best_params: The winning combination (ties go to the first in grid or trial order);
            None when no combination was eligible.
        best_metric: Its metric value (NaN without a winner).
        results: One row per combination, in grid order: its parameters, every metric, and
            ``eligible`` (False when it had fewer trades than ``min_trades``). Optuna's
            table has one row per evaluated trial, in trial order, led by a ``trial`` column.
        skipped: Combinations (or trials) the strategy rejected (constraints such as
            fast >= slow); they have no row.
        symbol: What was optimised on (a symbol, ``a,b`` for a universe, or ``data``).
        method: ``grid`` or ``optuna``.
        diagnostics: Overfitting checks and other extras (deflated Sharpe, PBO...).
        message: Why there is no winner (e.g. ``no combination made at least 1 trade (most:
            0) on 18 markets``); None when there is one.
    """

    strategy: str
    metric: str
    minimise: bool
    best_params: dict[str, Any] | None
    best_metric: float
    results: pd.DataFrame
    skipped: int = 0
    symbol: str = "data"
    method: str = "grid"
    diagnostics: dict[str, Any] = field(default_factory=dict)
    message: str | None = None

    @property
    def winner(self) -> dict[str, Any]:
        """The best parameters.

        Raises:
            DataError: no combination was eligible (the message says why); walk-forward and
                batch optimisation treat that as a failure.
        """
        if self.best_params is None:
            raise DataError(self.message or "no eligible combination")
        return self.best_params

    def ranked(self) -> pd.DataFrame:
        """Eligible combinations, best first (ties keep grid order)."""
        eligible = self.results[self.results["eligible"]]
        return eligible.sort_values(self.metric, ascending=self.minimise, kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: best parameters, metric, and every row (inf as null)."""
        rows = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in self.results.to_dict("records")
        ]
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "method": self.method,
            "metric": self.metric,
            "minimise": self.minimise,
            "best_params": self.best_params,
            "best_metric": _json_value(self.best_metric),
            "skipped": self.skipped,
            "message": self.message,
            "diagnostics": {k: _json_value(v) for k, v in self.diagnostics.items()},
            "results": rows,
        }


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return value


def select_best(  # noqa: PLR0913 - keywords that label the table
    strategy: str,
    grid: ParameterGrid,
    rows: Iterable[Mapping[str, float | int]],
    metric: str,
    *,
    min_trades: int = 0,
    symbol: str = "data",
    trial_numbers: Sequence[int] | None = None,
    data_description: str | None = None,
) -> OptimizationResult:
    """Assemble the results table and pick the best eligible row (first in row order on ties).

    A combination is eligible with at least ``max(min_trades, 1)`` trades: a run without a
    trade measures nothing. Without an eligible one the result has the whole table,
    ``best_params=None``, ``best_metric=nan`` and a ``message`` naming the data.

    Args:
        strategy: The strategy's name.
        grid: The rows' combinations (for Optuna: the evaluated trials' parameters).
        rows: Each combination's metrics, in the same order.
        metric: The metric to optimise.
        min_trades: Rows with fewer trades are ineligible.
        symbol: What was optimised on.
        trial_numbers: Each row's Optuna trial number, put in a leading ``trial`` column;
            given for an Optuna search (method ``optuna``), None for a grid.
        data_description: How the message names the data (default: ``symbol``).
    """
    table = pd.DataFrame(
        [
            {**{name: params[name] for name in grid.names}, **row}
            for params, row in zip(grid.combinations, rows, strict=True)
        ]
    )
    if trial_numbers is not None:
        table.insert(0, "trial", list(trial_numbers))
    needed = max(min_trades, 1)
    table["eligible"] = table["num_trades"] >= needed
    minimise = is_minimised(metric)
    method = "grid" if trial_numbers is None else "optuna"
    eligible = table[table["eligible"]]
    if eligible.empty:
        return OptimizationResult(
            strategy=strategy, metric=metric, minimise=minimise, best_params=None,
            best_metric=math.nan, results=table, skipped=grid.skipped, symbol=symbol,
            method=method,
            message=f"no combination made at least {needed} trade{'s' if needed > 1 else ''} "
            f"(most: {int(table['num_trades'].max())}) on {data_description or symbol}",
        )  # fmt: skip
    values = eligible[metric]
    best_position = int(values.to_numpy().argmin() if minimise else values.to_numpy().argmax())
    best_position = int(eligible.index[best_position])
    return OptimizationResult(
        strategy=strategy,
        metric=metric,
        minimise=minimise,
        best_params=dict(grid.combinations[best_position]),
        best_metric=float(table[metric].to_numpy()[best_position]),
        results=table,
        skipped=grid.skipped,
        symbol=symbol,
        method=method,
    )
