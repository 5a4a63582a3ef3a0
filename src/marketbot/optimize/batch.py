"""Multi-strategy batch: optimise several strategies on the same data in one call, ranked.

``optimize_many(optimizer, {'sma_crossover': {...}, 'momentum': {...}}, metric, **common)``
validates every strategy and grid before any backtest runs, optimises each one with the same
data and settings (``common`` goes to ``optimize_strategy`` unchanged), and ranks them by the
best metric each reached. A strategy whose optimisation fails with a DataError (no
combination made ``min_trades`` trades, say) is reported, ranked last, with the reason,
instead of stopping the batch; when every strategy fails, that is an error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.recommendation import recommend
from marketbot.optimize.grid import expand_grid, is_minimised
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
from marketbot.strategies.loader import load_strategy

__all__ = ["SUMMARY_COLUMNS", "BatchResult", "optimize_many"]

SUMMARY_COLUMNS: Final = (
    "rank",
    "strategy",
    "best_params",
    "best_metric",
    "num_trades",
    "return_pct",
    "sharpe",
    "max_drawdown_pct",
    "recommendation",
    "deflated_sharpe",
    "combinations",
    "error",
)
"""The columns of :attr:`BatchResult.summary`, in order."""


@dataclass(frozen=True)
class BatchResult:
    """Several strategies optimised on the same data, ranked.

    Attributes:
        metric: The metric every strategy was optimised by.
        minimise: True for drawdown metrics (smaller ranks higher).
        summary: One row per strategy, best first (ties keep the order given; failures
            last), with the columns of :data:`SUMMARY_COLUMNS`: the winning parameters and
            metric, its trades, return, Sharpe and drawdown, the recommendation of that run,
            the deflated Sharpe ratio when the optimisation computed it (else NaN), how many
            combinations were evaluated, and why a strategy failed (else missing).
        results: Each successful strategy's optimisation, by name.
        failures: Each failed strategy's reason, by name.
    """

    metric: str
    minimise: bool
    summary: pd.DataFrame
    results: dict[str, OptimizationResult]
    failures: dict[str, str]

    @property
    def best(self) -> str:
        """The name of the top-ranked strategy."""
        return str(self.summary["strategy"].iloc[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the ranked summary (inf and NaN as null) and each optimisation."""
        rows = [
            {str(key): _json(value) for key, value in row.items()}
            for row in self.summary.to_dict("records")
        ]
        return {
            "metric": self.metric,
            "minimise": self.minimise,
            "summary": rows,
            "results": {name: result.to_dict() for name, result in self.results.items()},
            "failures": dict(self.failures),
        }


def optimize_many(
    optimizer: StrategyOptimizer,
    strategies: Mapping[str, Mapping[str, Sequence[object]]],
    metric: str = "sharpe",
    **common: Any,
) -> BatchResult:
    """Optimise each strategy over its grid with the same data and settings; rank them.

    Args:
        optimizer: Runs each optimisation; its engine's thresholds give the recommendations.
        strategies: Per strategy (a built-in name or ``file.py:Class``), its param_ranges.
        metric: The metric to optimise and rank by; drawdowns are minimised.
        **common: Everything else ``optimize_strategy`` takes (``data=`` or ``symbol=``,
            dates, ``min_trades``, costs, exits...), the same for every strategy.

    Raises:
        ConfigError: no strategies, an unknown metric, an unknown strategy or a bad grid
            (lists of values are checked before any backtest runs; other range forms when
            their strategy's turn comes).
        StrategyError: a strategy cannot be loaded.
        DataError: every strategy failed (the message gives each reason).
    """
    if not strategies:
        raise ConfigError("strategies is empty: give at least one {name: param_ranges}")
    if metric not in METRIC_KEYS:
        raise ConfigError(f"unknown metric {metric!r} (metrics: {', '.join(METRIC_KEYS)})")
    for name, ranges in strategies.items():
        strategy = load_strategy(name)
        if all(_is_value_list(values) for values in ranges.values()):
            try:
                expand_grid(strategy, ranges)
            except ConfigError as exc:
                raise ConfigError(f"strategy {name!r}: {exc}") from exc
    results: dict[str, OptimizationResult] = {}
    failures: dict[str, str] = {}
    for name, ranges in strategies.items():
        try:
            result = optimizer.optimize_strategy(name, ranges, metric, **common)
            result.winner  # noqa: B018 - no eligible combination fails this strategy
            results[name] = result
        except DataError as exc:
            failures[name] = str(exc)
    if not results:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
        raise DataError(f"no strategy produced a result ({reasons})")
    minimise = is_minimised(metric)
    rows = [_summary_row(name, result, optimizer) for name, result in results.items()]
    rows.sort(key=lambda row: float(row["best_metric"]), reverse=not minimise)  # stable
    rows += [_failure_row(name, reason) for name, reason in failures.items()]
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS[1:]))
    summary.insert(0, "rank", np.arange(1, len(summary) + 1))
    return BatchResult(metric, minimise, summary, results, failures)


def _summary_row(
    name: str, result: OptimizationResult, optimizer: StrategyOptimizer
) -> dict[str, Any]:
    best = result.ranked().iloc[0]
    metrics = {key: _plain(best[key]) for key in METRIC_KEYS}
    return {
        "strategy": name,
        "best_params": dict(result.winner),
        "best_metric": result.best_metric,
        "num_trades": int(metrics["num_trades"]),
        "return_pct": float(metrics["return_pct"]),
        "sharpe": float(metrics["sharpe"]),
        "max_drawdown_pct": float(metrics["max_drawdown_pct"]),
        "recommendation": recommend(metrics, optimizer.engine.thresholds).value,
        "deflated_sharpe": _deflated_sharpe(result.diagnostics),
        "combinations": len(result.results),
        "error": None,
    }


def _failure_row(name: str, reason: str) -> dict[str, Any]:
    row: dict[str, Any] = {column: math.nan for column in SUMMARY_COLUMNS[1:]}
    row |= {"strategy": name, "best_params": None, "recommendation": None, "error": reason}
    return row


def _deflated_sharpe(diagnostics: Mapping[str, Any]) -> float:
    """The DSR from an optimisation's diagnostics (a DeflatedSharpe dict or a number)."""
    value = diagnostics.get("deflated_sharpe")
    if isinstance(value, Mapping):
        value = value.get("deflated_sharpe")
    return float(value) if isinstance(value, int | float) else math.nan


def _is_value_list(values: object) -> bool:
    return isinstance(values, Sequence) and not isinstance(values, str | bytes)


def _plain(value: object) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json(value: object) -> object:
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
