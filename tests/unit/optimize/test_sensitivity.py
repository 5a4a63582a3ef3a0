"""Sensitivity analysis: tables along each parameter and a plateau score, reusing the grid."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from marketbot import BacktestingEngine
from marketbot.backtest.config import BacktestConfig
from marketbot.core.errors import ConfigError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.optimize.grid import expand_grid
from marketbot.optimize.optimizer import Evaluation, StrategyOptimizer, select_best
from marketbot.optimize.sensitivity import sensitivity
from marketbot.strategies.loader import load_strategy
from tests.support.frames import random_walk_frame

SMA = load_strategy("sma_crossover")
SharpeOf = Callable[[int, int], float]


def _metrics(sharpe: float, drawdown: float = 10.0) -> dict[str, float | int]:
    values: dict[str, float | int] = dict.fromkeys(METRIC_KEYS, 0.0)
    return values | {"sharpe": sharpe, "max_drawdown_pct": drawdown, "num_trades": 12}


@dataclass(frozen=True)
class KnownEvaluation(Evaluation):
    """A fake evaluation whose Sharpe ratio is a known function of (fast, slow)."""

    sharpe_of: SharpeOf = field(default=lambda fast, slow: 0.0)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        self.calls.append(dict(params))
        return _metrics(self.sharpe_of(params["fast"], params["slow"]))


def no_backtest(fast: int, slow: int) -> float:
    raise AssertionError(f"no backtest expected, got fast={fast}, slow={slow}")


def known(sharpe_of: SharpeOf) -> KnownEvaluation:
    return KnownEvaluation(strategy=SMA, config=BacktestConfig(), sharpe_of=sharpe_of)


SHARPE_GRID = {  # (fast, slow) -> sharpe, best at (10, 100)
    (5, 50): 1.0, (10, 50): 1.9, (15, 50): 0.2,
    (5, 100): 1.8, (10, 100): 2.0, (15, 100): 1.0,
}  # fmt: skip


def hand_made_result(metric: str = "sharpe") -> Any:
    grid = expand_grid(SMA, {"fast": [5, 10, 15], "slow": [50, 100]})
    rows = [
        _metrics(SHARPE_GRID[c["fast"], c["slow"]], drawdown=c["fast"]) for c in grid.combinations
    ]
    return select_best(SMA.name, grid, rows, metric)


def test_sensitivity_when_every_point_is_in_the_grid_reuses_rows_without_running() -> None:
    evaluation = known(no_backtest)
    result = sensitivity(evaluation, hand_made_result())
    assert evaluation.calls == []
    assert (result.evaluated, result.reused) == (0, 4)
    fast = result.table("fast")
    assert fast["value"].tolist() == [5, 10, 15]
    assert fast["metric"].tolist() == [1.8, 2.0, 1.0]
    assert fast["is_best"].tolist() == [False, True, False]
    assert fast["reused"].all()
    assert fast["sharpe"].tolist() == fast["metric"].tolist()
    # Neighbours of fast=10: 1.8 (drop 0.1) and 1.0 (drop 0.5); the worst counts.
    assert result.parameters["fast"].worst_neighbour_drop == pytest.approx(0.5)
    assert result.parameters["fast"].plateau_score == pytest.approx(0.5)
    # slow=50 gives 1.9: a 5 % drop, nearly flat.
    assert result.parameters["slow"].plateau_score == pytest.approx(0.95)
    assert result.plateau_score == pytest.approx(0.5)
    assert result.best_params == {"fast": 10, "slow": 100, "short": False}
    assert result.best_metric == 2.0


def test_sensitivity_when_metric_is_minimised_measures_the_rise_as_the_drop() -> None:
    # Drawdown equals fast here; the best (smallest) is fast=5 at slow=50.
    result = sensitivity(known(no_backtest), hand_made_result("max_drawdown_pct"))
    assert result.best_params["fast"] == 5
    assert result.table("fast")["metric"].tolist() == [5, 10, 15]
    # Its only neighbour, fast=10, doubles the drawdown: a drop of 100 %, a spike.
    assert result.parameters["fast"].worst_neighbour_drop == pytest.approx(1.0)
    assert result.parameters["fast"].plateau_score == 0.0


def test_sensitivity_when_metric_peaks_sharply_scores_a_spike_and_a_plateau_apart() -> None:
    def sharpe_of(fast: int, slow: int) -> float:
        spike = 3.0 if fast == 10 else 0.3  # fast alone matters, and only at 10
        return spike + 0.001 * slow  # slow barely matters: a plateau

    result = sensitivity(
        known(sharpe_of),
        {"fast": 10, "slow": 100},
        {"fast": [6, 8, 10, 12, 14], "slow": [80, 90, 100, 110]},
    )
    # One step off fast=10 the metric falls from 3.1 to 0.4: 87 % of it is gone.
    assert result.parameters["fast"].plateau_score == pytest.approx(1 - 2.7 / 3.1)
    assert result.parameters["slow"].plateau_score > 0.99
    assert result.plateau_score == result.parameters["fast"].plateau_score
    assert result.evaluated == 8 and result.reused == 0
    assert result.table("slow")["metric"].tolist() == pytest.approx([3.08, 3.09, 3.1, 3.11])


def test_sensitivity_when_neighbours_is_two_looks_two_values_either_side() -> None:
    result = sensitivity(
        known(lambda fast, slow: {8: 1.0, 9: 1.9, 10: 2.0, 11: 1.9, 12: 1.9}[fast]),
        {"fast": 10, "slow": 100},
        {"fast": [8, 9, 10, 11, 12]},
        neighbours=2,
    )
    assert result.parameters["fast"].worst_neighbour_drop == pytest.approx(0.5)


def test_sensitivity_when_some_points_are_new_runs_them_and_rechecks_the_best() -> None:
    evaluation = known(lambda fast, slow: SHARPE_GRID.get((fast, slow), 1.5))
    result = sensitivity(
        evaluation, hand_made_result(), {"fast": [5, 10, 12, 15], "slow": [50, 100]}
    )
    ran = [(call["fast"], call["slow"]) for call in evaluation.calls]
    assert sorted(ran) == [(10, 100), (12, 100)]  # the new point and the best, as a check
    assert (result.evaluated, result.reused) == (2, 4)
    table = result.table("fast")
    assert table["value"].tolist() == [5, 10, 12, 15]
    assert table["reused"].tolist() == [True, True, False, True]
    assert table["metric"].tolist() == [1.8, 2.0, 1.5, 1.0]


def test_sensitivity_when_settings_differ_from_the_optimisation_raises_config_error() -> None:
    evaluation = known(lambda fast, slow: 0.7)  # not what the hand-made grid recorded
    with pytest.raises(ConfigError, match=r"best point re-run gives sharpe=0.7 .* recorded 2"):
        sensitivity(evaluation, hand_made_result(), {"fast": [7]})


def test_sensitivity_when_a_value_breaks_a_constraint_reports_it_skipped() -> None:
    result = sensitivity(
        known(lambda f, s: 1.0 + f / 100), {"fast": 10, "slow": 30}, {"slow": [5, 10, 20, 30]}
    )
    assert result.table("slow")["value"].tolist() == [20, 30]
    assert result.parameters["slow"].skipped == (5, 10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: sensitivity(known(no_backtest), {"fast": 10}, {"fast": [5]}, "alpha"),
            "unknown metric",
        ),
        (
            lambda: sensitivity(known(no_backtest), {"fast": 10}, {"speed": [5]}),
            "no parameter 'speed'",
        ),
        (lambda: sensitivity(known(no_backtest), {"fast": 10}, {"fast": "5"}), "must be a list"),
        (lambda: sensitivity(known(no_backtest), {"fast": 50, "slow": 20}, {"fast": [5]}), "fast"),
        (lambda: sensitivity(known(no_backtest), {"fast": 10}), "give param_ranges"),
        (
            lambda: sensitivity(known(no_backtest), {"fast": 10}, {"fast": [5]}, neighbours=0),
            "neighbours=0",
        ),
        (lambda: sensitivity(known(no_backtest), {"fast": 10}, {"fast": [5]}, fee=0.1), "drop fee"),
        (lambda: sensitivity(StrategyOptimizer(jobs=1), {"fast": 10}, {"fast": [5]}), "strategy="),
    ],
)
def test_sensitivity_when_input_is_bad_raises_config_error(
    call: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_sensitivity_when_given_an_optimizer_matches_one_by_one_backtests() -> None:
    frame = random_walk_frame(1_500, seed=7)
    optimizer = StrategyOptimizer(jobs=1)
    optimisation = optimizer.optimize_strategy(
        "sma_crossover", {"fast": [5, 10], "slow": [40, 80]}, data=frame
    )
    result = sensitivity(
        optimizer, optimisation, {"fast": [5, 7, 10], "slow": [40, 60, 80]}, data=frame
    )
    assert result.reused == 3  # the best, its fast neighbour and its slow neighbour
    engine = BacktestingEngine()
    for name, analysis in result.parameters.items():
        for row in analysis.table.to_dict("records"):
            params = {**optimisation.best_params, name: row["value"]}
            metrics = engine.run_backtest("sma_crossover", data=frame, params=params).metrics
            assert row["metric"] == metrics["sharpe"]
            assert row["num_trades"] == metrics["num_trades"]
    payload = result.to_dict()
    json.dumps(payload, allow_nan=False)
    assert [p["parameter"] for p in payload["parameters"]] == ["fast", "slow"]
    assert payload["parameters"][0]["values"] == [5, 7, 10]


def test_sensitivity_when_ranges_are_left_out_uses_the_grid_axes() -> None:
    result = sensitivity(known(no_backtest), hand_made_result())
    assert list(result.parameters) == ["fast", "slow"]
    assert isinstance(result.table("slow"), pd.DataFrame)
    with pytest.raises(KeyError, match="analysed: fast, slow"):
        result.table("short")
