"""Sensitivity analysis: how the metric moves when one parameter leaves the best point.

``sensitivity(optimizer_or_evaluation, best_params, param_ranges, metric)`` varies each
parameter over its values with every other parameter held at the best point, and reports one
table per parameter (value, the metric, every metric) and a plateau score, so a user can tell
a broad plateau (neighbours nearly as good: robust) from a spike (one lucky value).

Points the optimisation already evaluated are read from its results table instead of being
backtested again. When some points do need a backtest, the best point is re-run too and must
reproduce its recorded metric; if it does not, the data or settings differ from the
optimisation's and a ConfigError says so (mixing the two would compare unlike numbers).

Plateau score of a parameter: with m* the metric at the best value and m_n at each neighbour
(the ``neighbours`` values either side in the table's order, numbers sorted ascending), the
relative drop is (m* - m_n) / |m*| (for a minimised metric, (m_n - m*) / |m*|);
``worst_neighbour_drop`` is the largest one and ``plateau_score = clip(1 - drop, 0, 1)``.
1 is a flat plateau, 0 means the metric loses all of its value (or more) one step away. It is
NaN when m* is 0 or not finite, a neighbour's metric is not finite, or the parameter has one
value. The result's plateau score is the lowest over the parameters (the most fragile one).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.optimize.grid import expand_grid, is_minimised
from marketbot.optimize.optimizer import Evaluation, OptimizationResult, StrategyOptimizer
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import StrategySpec, load_strategy

__all__ = ["ParameterSensitivity", "SensitivityResult", "sensitivity"]

_Key = tuple[tuple[str, object], ...]
_Metrics = dict[str, float | int]
_FORCED_OPTIONS: Final = {"method": "grid", "min_trades": 0, "save": False, "diagnostics": False}


@dataclass(frozen=True)
class ParameterSensitivity:
    """How the metric moves along one parameter, the others held at the best point.

    Attributes:
        parameter: The parameter varied.
        best_value: Its value at the best point.
        table: One row per value: ``value``, ``metric`` (the analysed metric), ``is_best``,
            ``reused`` (read from the optimisation, not re-run), then every metric.
        worst_neighbour_drop: The largest relative drop of the metric at a neighbour.
        plateau_score: ``clip(1 - worst_neighbour_drop, 0, 1)``; NaN when undefined.
        skipped: Values the strategy rejected with the other parameters at the best point.
    """

    parameter: str
    best_value: Any
    table: pd.DataFrame
    worst_neighbour_drop: float
    plateau_score: float
    skipped: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Chart-ready: the values and, per metric, its series (inf and NaN as null)."""
        return {
            "parameter": self.parameter,
            "best_value": _json(self.best_value),
            "values": [_json(value) for value in self.table["value"]],
            "metric": [_json(value) for value in self.table["metric"]],
            "reused": [bool(flag) for flag in self.table["reused"]],
            "metrics": {key: [_json(v) for v in self.table[key]] for key in METRIC_KEYS},
            "worst_neighbour_drop": _json(self.worst_neighbour_drop),
            "plateau_score": _json(self.plateau_score),
            "skipped": [_json(value) for value in self.skipped],
        }


@dataclass(frozen=True)
class SensitivityResult:
    """Sensitivity of the metric to each parameter around the best point.

    Attributes:
        strategy: The strategy's name.
        metric: The metric analysed.
        minimise: True for drawdown metrics (smaller is better).
        best_params: The best point (every parameter, defaults filled in).
        best_metric: The metric there.
        parameters: One analysis per parameter varied, in the order given.
        evaluated: Backtests run (the best point's check included).
        reused: Points read from the optimisation's results instead.
    """

    strategy: str
    metric: str
    minimise: bool
    best_params: dict[str, Any]
    best_metric: float
    parameters: dict[str, ParameterSensitivity]
    evaluated: int
    reused: int

    @property
    def plateau_score(self) -> float:
        """The lowest plateau score over the parameters; NaN when none is defined."""
        scores = [p.plateau_score for p in self.parameters.values()]
        defined = [score for score in scores if not math.isnan(score)]
        return min(defined) if defined else math.nan

    def table(self, parameter: str) -> pd.DataFrame:
        """The table of one parameter (KeyError names the parameters analysed)."""
        if parameter not in self.parameters:
            raise KeyError(
                f"{parameter!r} was not analysed (analysed: {', '.join(self.parameters)})"
            )
        return self.parameters[parameter].table

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary for the report: one chart series per parameter."""
        return {
            "strategy": self.strategy,
            "metric": self.metric,
            "minimise": self.minimise,
            "best_params": {key: _json(value) for key, value in self.best_params.items()},
            "best_metric": _json(self.best_metric),
            "plateau_score": _json(self.plateau_score),
            "evaluated": self.evaluated,
            "reused": self.reused,
            "parameters": [analysis.to_dict() for analysis in self.parameters.values()],
        }


def sensitivity(
    evaluator: StrategyOptimizer | Evaluation,
    best_params: Mapping[str, Any] | OptimizationResult,
    param_ranges: Mapping[str, Sequence[object]] | None = None,
    metric: str | None = None,
    *,
    strategy: StrategySpec | None = None,
    known: OptimizationResult | pd.DataFrame | None = None,
    neighbours: int = 1,
    **options: Any,
) -> SensitivityResult:
    """Vary each parameter around the best point, the others fixed, and measure the metric.

    Args:
        evaluator: An Evaluation (strategy, data and settings in one), or a StrategyOptimizer
            with ``options`` saying what to run on, as for ``optimize_strategy``.
        best_params: The best point, or the OptimizationResult it came from (its rows are
            then reused, and its metric and strategy are the defaults).
        param_ranges: Values per parameter to vary; default: the optimisation grid's values.
        metric: The metric to analyse (default: the optimisation's, else ``sharpe``).
        strategy: The strategy, with a StrategyOptimizer (default: the optimisation's).
        known: Evaluated rows to reuse: an OptimizationResult or its ``results`` table
            (default: ``best_params`` when it is an OptimizationResult).
        neighbours: How many values either side of the best count as its neighbours.
        **options: With a StrategyOptimizer, the data and settings of the optimisation
            (``data=`` or ``symbol=``, dates, costs, exits...), passed to ``optimize_strategy``.

    Raises:
        ConfigError: an unknown metric or parameter, a bad value, a best point the strategy
            rejects, no ranges to vary, or results that the re-run best point contradicts;
            all but the last before any backtest runs.
    """
    result = best_params if isinstance(best_params, OptimizationResult) else None
    point = best_params if not isinstance(best_params, OptimizationResult) else None
    metric = metric or (result.metric if result is not None else "sharpe")
    if metric not in METRIC_KEYS:
        raise ConfigError(f"unknown metric {metric!r} (metrics: {', '.join(METRIC_KEYS)})")
    if neighbours < 1:
        raise ConfigError(f"neighbours={neighbours}: must be at least 1")
    known = known if known is not None else result
    known_table = known.results if isinstance(known, OptimizationResult) else known
    instance = _strategy_of(evaluator, strategy, result, options)
    best = instance.resolve_params(result.best_params if result is not None else point)
    ranges = param_ranges if param_ranges is not None else _grid_axes(instance, known_table)
    slices = {name: _slice(instance, best, name, values) for name, values in ranges.items()}
    lookup = _reusable_rows(instance, known_table)
    points = {_key(c): c for combos, _ in slices.values() for c in combos}
    to_run = [c for key, c in points.items() if key not in lookup]
    if to_run and _key(best) in lookup:
        to_run.append(best)  # to check that the settings match the optimisation's
    ran = dict(
        zip(map(_key, to_run), _run(evaluator, instance, best, to_run, options), strict=True)
    )
    _check_best(best, lookup, ran, metric)
    measured = {**lookup, **ran}
    analyses = {
        name: _analyse(name, best, parameter_slice, measured, set(lookup), metric, neighbours)
        for name, parameter_slice in slices.items()
    }
    return SensitivityResult(
        strategy=instance.name,
        metric=metric,
        minimise=is_minimised(metric),
        best_params=best,
        best_metric=float(measured[_key(best)][metric]),
        parameters=analyses,
        evaluated=len(ran),
        reused=sum(1 for key in points if key in lookup),
    )


def _strategy_of(
    evaluator: StrategyOptimizer | Evaluation,
    strategy: StrategySpec | None,
    result: OptimizationResult | None,
    options: Mapping[str, Any],
) -> Strategy:
    if isinstance(evaluator, Evaluation):
        if strategy is not None or options:
            extra = ", ".join(["strategy"] * (strategy is not None) + sorted(options))
            raise ConfigError(
                f"an Evaluation holds the strategy, data and settings already: drop {extra}"
            )
        return evaluator.strategy
    if strategy is not None:
        return load_strategy(strategy)
    if result is not None:
        return load_strategy(result.strategy)
    raise ConfigError("give strategy= (or the OptimizationResult as best_params)")


def _grid_axes(strategy: Strategy, table: pd.DataFrame | None) -> dict[str, list[object]]:
    """The grid's values per parameter, in grid order, from an optimisation's results."""
    names = [p.name for p in strategy.parameters]
    axes = {
        name: list(dict.fromkeys(_plain(v) for v in table[name]))
        for name in names
        if table is not None and name in table.columns
    }
    if not axes:
        raise ConfigError("give param_ranges: there are no optimisation results to take them from")
    return {name: values for name, values in axes.items() if len(values) > 1} or axes


def _slice(
    strategy: Strategy, best: Mapping[str, Any], name: str, values: Sequence[object]
) -> tuple[tuple[dict[str, Any], ...], tuple[object, ...]]:
    """The valid points along ``name`` (others at ``best``) and the values the strategy rejects."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise ConfigError(f"range of {name!r} must be a list of values, got {values!r}")
    ranges = {key: [value] for key, value in best.items()}
    ranges[name] = [*values, best[name]] if name in best else [*values]
    combinations = expand_grid(strategy, ranges).combinations  # checks the name and values
    declared = {p.name: p for p in strategy.parameters}[name]
    kept = {_plain(point[name]) for point in combinations}
    return combinations, tuple(v for v in values if declared.coerce(v) not in kept)


def _reusable_rows(strategy: Strategy, table: pd.DataFrame | None) -> dict[_Key, _Metrics]:
    """Metrics of each already evaluated point, keyed by its full parameter set."""
    if table is None:
        return {}
    missing = [key for key in METRIC_KEYS if key not in table.columns]
    if missing:
        raise ConfigError(f"known results lack the metrics {', '.join(missing)}")
    names = [p.name for p in strategy.parameters if p.name in table.columns]
    rows: dict[_Key, _Metrics] = {}
    for record in table.to_dict("records"):
        try:
            params = strategy.resolve_params({name: _plain(record[name]) for name in names})
        except ConfigError:
            continue  # not a point this strategy accepts, so never one we look up
        rows.setdefault(_key(params), {key: _plain(record[key]) for key in METRIC_KEYS})
    return rows


def _run(
    evaluator: StrategyOptimizer | Evaluation,
    strategy: Strategy,
    best: Mapping[str, Any],
    points: Sequence[dict[str, Any]],
    options: Mapping[str, Any],
) -> list[_Metrics]:
    """Backtest ``points``: one by one on an Evaluation, one grid per parameter otherwise."""
    if isinstance(evaluator, Evaluation):
        return [evaluator.metrics(point) for point in points]
    groups: dict[str, list[dict[str, Any]]] = {}
    for point in points:
        changed = [name for name, value in point.items() if value != best[name]]
        groups.setdefault(changed[0] if changed else "", []).append(point)
    measured: dict[_Key, _Metrics] = {}
    for name, group in groups.items():
        ranges: dict[str, list[object]] = {key: [value] for key, value in best.items()}
        if name:
            ranges[name] = [point[name] for point in group]
        result = evaluator.optimize_strategy(
            strategy, ranges, "sharpe", **{**options, **_FORCED_OPTIONS}
        )
        measured.update(_reusable_rows(strategy, result.results))
    return [measured[_key(point)] for point in points]


def _check_best(
    best: Mapping[str, Any],
    lookup: Mapping[_Key, _Metrics],
    ran: Mapping[_Key, _Metrics],
    metric: str,
) -> None:
    """Raise ConfigError when the re-run best point disagrees with the recorded one."""
    key = _key(best)
    if key not in lookup or key not in ran:
        return
    for name in (metric, "num_trades"):
        recorded, now = float(lookup[key][name]), float(ran[key][name])
        if not (recorded == now or math.isclose(recorded, now, rel_tol=1e-9, abs_tol=1e-12)):
            raise ConfigError(
                f"the best point re-run gives {name}={now:.6g} but the optimisation recorded "
                f"{recorded:.6g}: run the sensitivity on the same data and settings (dates, "
                "fee, slippage, exits, risk) as the optimisation"
            )


def _analyse(
    name: str,
    best: Mapping[str, Any],
    parameter_slice: tuple[Sequence[Mapping[str, Any]], tuple[object, ...]],
    measured: Mapping[_Key, _Metrics],
    reused: set[_Key],
    metric: str,
    neighbours: int,
) -> ParameterSensitivity:
    """The table and plateau score of one parameter, from its slice (points, skipped values)."""
    combinations, skipped = parameter_slice
    rows = [
        {
            "value": point[name],
            "metric": measured[_key(point)][metric],
            "is_best": point[name] == best[name],
            "reused": _key(point) in reused,
            **measured[_key(point)],
        }
        for point in combinations
    ]
    table = pd.DataFrame(rows)
    if all(_is_number(value) for value in table["value"]):
        table = table.sort_values("value", kind="stable", ignore_index=True)
    position = int(np.flatnonzero(table["is_best"].to_numpy())[0])
    drop = _worst_drop(table["metric"].to_numpy(dtype=np.float64), position, neighbours, metric)
    return ParameterSensitivity(
        parameter=name,
        best_value=best[name],
        table=table,
        worst_neighbour_drop=drop,
        plateau_score=math.nan if math.isnan(drop) else min(1.0, max(0.0, 1.0 - drop)),
        skipped=skipped,
    )


def _worst_drop(values: np.ndarray, position: int, neighbours: int, metric: str) -> float:
    """The largest relative drop of the metric from ``position`` to a neighbour; NaN if none."""
    best = float(values[position])
    near = [
        float(values[i])
        for i in range(position - neighbours, position + neighbours + 1)
        if i != position and 0 <= i < len(values)
    ]
    if not near or best == 0 or not all(math.isfinite(v) for v in (best, *near)):
        return math.nan
    sign = -1.0 if is_minimised(metric) else 1.0
    return max(sign * (best - value) / abs(best) for value in near)


def _key(params: Mapping[str, Any]) -> _Key:
    return tuple(sorted((name, _plain(value)) for name, value in params.items()))


def _plain(value: object) -> Any:
    """A numpy scalar as the Python value it holds; anything else unchanged."""
    return value.item() if isinstance(value, np.generic) else value


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_)


def _json(value: object) -> object:
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
