"""Grid search: the same best combination as backtesting every combination one by one."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from marketbot import BacktestingEngine
from marketbot.core.errors import ConfigError, DataError
from marketbot.optimize.optimizer import StrategyOptimizer
from tests.support.frames import SAMPLE_DIR, random_walk_frame, sample_daily_btc

GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return sample_daily_btc()


@pytest.mark.parametrize("metric", ["sharpe", "return_pct", "max_drawdown_pct", "profit_factor"])
def test_grid_when_compared_with_one_by_one_backtests_picks_the_same_best(
    btc: pd.DataFrame, metric: str
) -> None:
    result = StrategyOptimizer(jobs=2).optimize_strategy(
        "sma_crossover", GRID, metric, data=btc, start_date="2017-01-01"
    )
    engine = BacktestingEngine()
    one_by_one = []
    for fast in GRID["fast"]:
        for slow in GRID["slow"]:
            run = engine.run_backtest(
                "sma_crossover", "2017-01-01", data=btc, params={"fast": fast, "slow": slow}
            )
            one_by_one.append(({"fast": fast, "slow": slow}, run.metrics))
    # Every row equals its own backtest, in grid order.
    for (params, metrics), (_, row) in zip(one_by_one, result.results.iterrows(), strict=True):
        assert {"fast": row["fast"], "slow": row["slow"]} == params
        for key, value in metrics.items():
            assert row[key] == value or (math.isinf(value) and math.isinf(row[key]))
    minimise = metric == "max_drawdown_pct"
    best_value = (min if minimise else max)(m[metric] for _, m in one_by_one)
    first_best = next(p for p, m in one_by_one if m[metric] == best_value)
    assert result.best_metric == best_value
    assert {k: result.best_params[k] for k in ("fast", "slow")} == first_best
    assert result.minimise is minimise


def test_grid_when_constraint_breaks_combinations_skips_them() -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [5, 50], "slow": [20, 60]}, data=random_walk_frame(600)
    )
    # fast=50 with slow=20 breaks fast < slow: three combinations remain.
    assert result.skipped == 1
    assert len(result.results) == 3


def test_grid_when_min_trades_excludes_every_row_returns_the_table_without_a_winner() -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [5]}, data=random_walk_frame(300), min_trades=10_000
    )
    assert result.best_params is None
    assert math.isnan(result.best_metric)
    assert len(result.results) == 1 and not result.results["eligible"].any()
    assert result.message is not None
    assert result.message.startswith("no combination made at least 10000 trades (most: ")
    assert result.message.endswith(") on data")
    with pytest.raises(DataError, match="no combination made at least 10000 trades"):
        _ = result.winner


def test_grid_when_min_trades_given_marks_rows_ineligible() -> None:
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [2, 5], "slow": [200]}, data=random_walk_frame(2_000),
        min_trades=1,
    )  # fmt: skip
    assert result.results["eligible"].tolist() == (result.results["num_trades"] >= 1).tolist()


@pytest.mark.parametrize(
    ("ranges", "kwargs", "message"),
    [
        ({}, {}, "param_ranges is empty"),
        ({"fast": []}, {}, "range of 'fast' is empty"),
        ({"speed": [1]}, {}, "no parameter 'speed'"),
        ({"fast": ["ten"]}, {}, "expected int"),
        ({"fast": [1]}, {}, "must be >= 2"),
        ({"fast": [50], "slow": [10]}, {}, "no valid combination"),
        ({"fast": [5]}, {"metric": "luck"}, "unknown metric 'luck'"),
        ({"fast": [5]}, {"method": "guess"}, "unknown method 'guess'"),
        ({"fast": 5}, {}, "must be a list of values"),
    ],
)
def test_grid_when_input_is_bad_raises_before_any_backtest(
    ranges: dict[str, object], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        StrategyOptimizer(jobs=1).optimize_strategy(
            "sma_crossover",
            ranges,
            data=random_walk_frame(100),
            **kwargs,  # type: ignore[arg-type]
        )


def test_grid_when_universe_given_runs_portfolio_backtests(btc: pd.DataFrame) -> None:
    eth = pd.read_csv(SAMPLE_DIR / "eth_usd_1d_bitstamp.csv")
    data = {"bitcoin": btc, "ethereum": eth}
    result = StrategyOptimizer(jobs=1).optimize_strategy(
        "sma_crossover", {"fast": [10, 20]}, data=data, start_date="2019-01-01"
    )
    direct = BacktestingEngine().run_backtest(
        "sma_crossover", "2019-01-01", data=data, params=result.best_params
    )
    assert result.best_metric == direct.metrics["sharpe"]
    assert result.symbol == "bitcoin,ethereum"
