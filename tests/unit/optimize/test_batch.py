"""Multi-strategy batch: one call, every strategy optimised alike, a ranked summary."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import pytest

from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.recommendation import recommend
from marketbot.optimize.batch import SUMMARY_COLUMNS, optimize_many
from marketbot.optimize.grid import expand_grid
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer, select_best
from marketbot.strategies.loader import load_strategy
from tests.support.frames import random_walk_frame

STRATEGIES = {
    "sma_crossover": {"fast": [5, 10], "slow": [40, 80]},
    "momentum": {"lookback": [10, 30]},
    "mean_reversion": {"window": [10, 30]},
}
ONE_POINT = {
    "sma_crossover": {"fast": [5]},
    "momentum": {"lookback": [10]},
    "mean_reversion": {"window": [10]},
}


def one_point(*names: str) -> dict[str, dict[str, list[int]]]:
    return {name: ONE_POINT[name] for name in names}


class ScriptedOptimizer(StrategyOptimizer):
    """Returns a made-up best Sharpe ratio per strategy, or fails; records each call."""

    def __init__(self, sharpe: Mapping[str, float], failing: Sequence[str] = ()) -> None:
        super().__init__(jobs=1)
        self.sharpe = sharpe
        self.failing = failing
        self.calls: list[str] = []

    def optimize_strategy(
        self, strategy_name: Any, param_ranges: Any, metric: str = "sharpe", **kwargs: Any
    ) -> OptimizationResult:
        self.calls.append(strategy_name)
        if strategy_name in self.failing:
            raise DataError("no combination made at least 30 trades (most: 4)")
        strategy = load_strategy(strategy_name)
        grid = expand_grid(strategy, param_ranges)
        row = dict.fromkeys(METRIC_KEYS, 1.0) | {"sharpe": self.sharpe[strategy_name]}
        return select_best(strategy.name, grid, [row] * len(grid), metric)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return random_walk_frame(1_200, seed=11)


@pytest.mark.parametrize("metric", ["sharpe", "max_drawdown_pct"])
def test_optimize_many_when_run_ranks_strategies_by_their_best_metric(
    frame: pd.DataFrame, metric: str
) -> None:
    batch = optimize_many(StrategyOptimizer(jobs=1), STRATEGIES, metric, data=frame)
    summary = batch.summary
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    assert summary["rank"].tolist() == [1, 2, 3]
    assert sorted(summary["strategy"]) == sorted(STRATEGIES)
    values = summary["best_metric"].tolist()
    assert values == sorted(values, reverse=metric == "sharpe")
    assert batch.best == summary["strategy"].iloc[0]
    for row in summary.to_dict("records"):
        result = batch.results[row["strategy"]]
        assert row["best_metric"] == result.best_metric
        assert row["best_params"] == result.best_params
        assert row["combinations"] == len(result.results)
        best_row = result.ranked().iloc[0]
        assert row["num_trades"] == best_row["num_trades"]
        metrics = {key: best_row[key] for key in METRIC_KEYS}
        assert row["recommendation"] == recommend(metrics).value
        assert pd.isna(row["error"])
    json.dumps(batch.to_dict(), allow_nan=False)


def test_optimize_many_when_metrics_tie_keeps_the_order_given() -> None:
    optimizer = ScriptedOptimizer({"momentum": 1.0, "sma_crossover": 2.0, "mean_reversion": 1.0})
    batch = optimize_many(optimizer, one_point(*optimizer.sharpe))
    assert batch.summary["strategy"].tolist() == ["sma_crossover", "momentum", "mean_reversion"]


def test_optimize_many_when_one_strategy_fails_ranks_it_last_with_the_reason() -> None:
    optimizer = ScriptedOptimizer(
        {"momentum": 0.5, "mean_reversion": 0.1}, failing=["sma_crossover"]
    )
    batch = optimize_many(optimizer, one_point("sma_crossover", "momentum", "mean_reversion"))
    summary = batch.summary
    assert summary["strategy"].tolist() == ["momentum", "mean_reversion", "sma_crossover"]
    last = summary.iloc[-1]
    assert "no combination made at least 30 trades" in last["error"]
    assert math.isnan(last["best_metric"]) and pd.isna(last["recommendation"])
    assert summary["error"].iloc[:2].isna().all()
    assert batch.failures == {"sma_crossover": last["error"]}
    assert set(batch.results) == {"momentum", "mean_reversion"}


def test_optimize_many_when_every_strategy_fails_raises_data_error() -> None:
    optimizer = ScriptedOptimizer({}, failing=["sma_crossover", "momentum"])
    with pytest.raises(DataError, match=r"no strategy produced a result .*sma_crossover: no comb"):
        optimize_many(optimizer, one_point("sma_crossover", "momentum"))


@pytest.mark.parametrize(
    ("strategies", "metric", "message"),
    [
        ({}, "sharpe", "strategies is empty"),
        (one_point("sma_crossover"), "alpha", "unknown metric 'alpha'"),
        (
            one_point("sma_crossover") | {"momentum": {"speed": [1]}},
            "sharpe",
            "'momentum': .*'speed'",
        ),
        ({"sma_crossover": {}}, "sharpe", "param_ranges is empty"),
        ({"sma_crossover": {"fast": []}}, "sharpe", "range of 'fast' is empty"),
    ],
)
def test_optimize_many_when_input_is_bad_raises_config_error_before_any_backtest(
    strategies: dict[str, Any], metric: str, message: str
) -> None:
    optimizer = ScriptedOptimizer({"sma_crossover": 1.0, "momentum": 1.0})
    with pytest.raises(ConfigError, match=message):
        optimize_many(optimizer, strategies, metric)
    assert optimizer.calls == []


def test_optimize_many_when_diagnostics_hold_a_deflated_sharpe_reports_it() -> None:
    class DiagnosedOptimizer(ScriptedOptimizer):
        def optimize_strategy(self, *args: Any, **kwargs: Any) -> OptimizationResult:
            result = super().optimize_strategy(*args, **kwargs)
            if result.strategy == "momentum":
                return result
            diagnostics = {"deflated_sharpe": {"deflated_sharpe": 0.97, "valid": True}}
            return dataclasses.replace(result, diagnostics=diagnostics)

    batch = optimize_many(
        DiagnosedOptimizer({"sma_crossover": 2.0, "momentum": 1.0}),
        one_point("sma_crossover", "momentum"),
    )
    assert batch.summary["deflated_sharpe"].iloc[0] == 0.97
    assert math.isnan(batch.summary["deflated_sharpe"].iloc[1])
