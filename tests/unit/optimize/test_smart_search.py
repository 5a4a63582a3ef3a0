"""Smart search: Optuna finds what the grid finds, in the grid's result shape, and ranges work."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.optimize.optimizer import StrategyOptimizer
from marketbot.optimize.smart_search import Dimension, ParamRange, search_space
from marketbot.strategies.base import Signals
from marketbot.strategies.builtin import MeanReversion, SmaCrossover
from tests.support.frames import random_walk_frame, sample_daily_btc

if TYPE_CHECKING:
    from marketbot.store import Database

GRID = {"fast": [5, 10, 20], "slow": [30, 50, 100]}


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return sample_daily_btc()


@pytest.fixture(scope="module")
def optimizer() -> StrategyOptimizer:
    return StrategyOptimizer(jobs=2)


class CountingCrossover(SmaCrossover):
    """The SMA crossover, counting its signal computations (each backtest computes them once)."""

    calls: ClassVar[list[int]] = []

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        self.calls.append(1)
        return super().signals(frame, params)


def test_optuna_when_trials_exceed_a_small_space_finds_the_grid_best(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    grid = optimizer.optimize_strategy("sma_crossover", GRID, data=btc, start_date="2017-01-01")
    smart = optimizer.optimize_strategy(
        "sma_crossover", GRID, data=btc, start_date="2017-01-01",
        method="optuna", trials=30, seed=7,
    )  # fmt: skip
    assert smart.best_params == grid.best_params
    assert smart.best_metric == grid.best_metric
    # Every trial's metrics equal the grid row of the same combination.
    by_params = grid.results.set_index(["fast", "slow"])
    for _, row in smart.results.iterrows():
        expected = by_params.loc[(row["fast"], row["slow"])]
        assert row[expected.index].tolist() == expected.tolist()


def test_optuna_when_run_returns_the_grid_result_shape_with_a_trial_column(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    grid = optimizer.optimize_strategy("sma_crossover", GRID, data=btc)
    smart = optimizer.optimize_strategy(
        "sma_crossover", GRID, data=btc, method="optuna", trials=12, seed=1
    )
    assert list(smart.results.columns) == ["trial", *grid.results.columns]
    assert smart.results["trial"].tolist() == list(range(12))
    assert (smart.method, smart.strategy, smart.metric) == ("optuna", "sma_crossover", "sharpe")
    summary = smart.to_dict()
    assert summary["method"] == "optuna"
    assert [row["trial"] for row in summary["results"]] == list(range(12))


def test_optuna_when_seed_repeats_gives_the_same_trials(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    ranges = {"fast": ParamRange(2, 60), "slow": ParamRange(20, 200, 10)}
    runs = [
        optimizer.optimize_strategy(
            "sma_crossover", ranges, data=btc, method="optuna", trials=25, seed=3
        )
        for _ in range(2)
    ]
    pd.testing.assert_frame_equal(runs[0].results, runs[1].results)
    assert runs[0].best_params == runs[1].best_params


def test_optuna_when_constraint_breaks_trials_skips_them_and_never_picks_them(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    result = optimizer.optimize_strategy(
        "sma_crossover", {"fast": ParamRange(2, 120), "slow": ParamRange(3, 130)},
        data=btc, method="optuna", trials=40, seed=0,
    )  # fmt: skip
    assert result.skipped > 0
    assert len(result.results) + result.skipped == 40
    assert (result.results["fast"] < result.results["slow"]).all()
    assert result.best_params["fast"] < result.best_params["slow"]
    # Skipped trials leave gaps in the trial numbers, which stay in trial order.
    numbers = result.results["trial"].tolist()
    assert numbers == sorted(numbers)
    assert len(numbers) < numbers[-1] + 1


def test_optuna_when_min_trades_excludes_trials_marks_them_ineligible(
    optimizer: StrategyOptimizer,
) -> None:
    result = optimizer.optimize_strategy(
        "sma_crossover", {"fast": [2, 5, 40], "slow": [60, 300]},
        data=random_walk_frame(1_500), method="optuna", trials=15, seed=2, min_trades=5,
    )  # fmt: skip
    table = result.results
    assert table["eligible"].tolist() == (table["num_trades"] >= 5).tolist()
    assert not table["eligible"].all()  # the slowest pair trades too rarely
    eligible = table[table["eligible"]]
    assert result.best_metric == eligible["sharpe"].max()
    best = eligible.loc[eligible["sharpe"].idxmax()]
    assert (best["fast"], best["slow"]) == (result.best_params["fast"], result.best_params["slow"])


def test_optuna_when_float_range_has_a_step_tries_only_values_on_the_step(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    result = optimizer.optimize_strategy(
        "mean_reversion",
        {"window": ParamRange(10, 40, 10), "num_std": ParamRange.parse("1.0:2.6:0.3")},
        data=btc, method="optuna", trials=20, seed=4,
    )  # fmt: skip
    assert set(result.results["num_std"]) <= {1.0, 1.3, 1.6, 1.9, 2.2, 2.5}
    assert set(result.results["window"]) <= {10, 20, 30, 40}


def test_optuna_when_storage_url_given_keeps_and_resumes_the_study(
    btc: pd.DataFrame, optimizer: StrategyOptimizer, tmp_path: Path
) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'studies.db'}"
    options: dict[str, Any] = {
        "data": btc, "method": "optuna", "seed": 5, "storage": url, "study_name": "sma-btc",
    }  # fmt: skip
    first = optimizer.optimize_strategy("sma_crossover", GRID, trials=6, **options)
    second = optimizer.optimize_strategy("sma_crossover", GRID, trials=4, **options)
    assert first.diagnostics["study_name"] == "sma-btc"
    # The second call adds its trials to the stored ones; its table lists all of them.
    assert second.results["trial"].tolist() == list(range(10))
    pd.testing.assert_frame_equal(second.results.iloc[:6], first.results)
    stored = optuna.load_study(study_name="sma-btc", storage=url)
    assert len(stored.trials) == 10
    assert stored.trials[0].user_attrs["metrics"] == first.results.iloc[0, 3:-1].to_dict()


def test_optuna_when_stored_study_was_made_for_another_setup_raises_config_error(
    btc: pd.DataFrame, optimizer: StrategyOptimizer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    optimizer.optimize_strategy(
        "sma_crossover", GRID, data=btc, method="optuna", trials=2, storage=url
    )
    with pytest.raises(ConfigError, match=r"different fee|different config"):
        optimizer.optimize_strategy(
            "sma_crossover", GRID, data=btc, method="optuna", trials=2, storage=url, fee=0.01
        )


def test_optuna_when_storage_url_is_bad_raises_config_error_without_the_password(
    optimizer: StrategyOptimizer,
) -> None:
    with pytest.raises(ConfigError, match="cannot open the Optuna storage") as error:
        optimizer.optimize_strategy(
            "sma_crossover", GRID, data=random_walk_frame(300), method="optuna",
            storage="nosuchdb://user:s3cret@localhost/x",
        )  # fmt: skip
    assert "s3cret" not in str(error.value)


def test_grid_when_ranges_given_expands_them_like_lists_of_values(
    btc: pd.DataFrame, optimizer: StrategyOptimizer
) -> None:
    ranged = optimizer.optimize_strategy(
        "sma_crossover",
        {"fast": ParamRange(5, 20, 5), "slow": {"low": 30, "high": 100, "step": 40}},
        data=btc,
    )
    listed = optimizer.optimize_strategy(
        "sma_crossover", {"fast": [5, 10, 15, 20], "slow": [30, 70]}, data=btc
    )
    pd.testing.assert_frame_equal(ranged.results, listed.results)


@pytest.mark.parametrize("method", ["grid", "optuna"])
@pytest.mark.parametrize(
    ("ranges", "kwargs", "message"),
    [
        ({"fast": {"low": 20, "high": 5}}, {}, r"range of 'fast': low=20 > high=5"),
        ({"fast": {"low": 5, "high": 20, "step": 0}}, {}, r"step=0: must be > 0"),
        ({"fast": {"low": 5, "high": 20, "step": -1}}, {}, r"step=-1: must be > 0"),
        ({"fast": {"low": "5", "high": 20}}, {}, r"low='5': must be a number"),
        ({"fast": {"low": 5, "high": None}}, {}, r"high=None: must be a number"),
        ({"fast": {"low": 5}}, {}, r"needs both 'low' and 'high'"),
        ({"fast": {"low": 5, "high": 9, "stride": 2}}, {}, r"unknown keys \['stride'\]"),
        ({"fast": ParamRange(5, 20, 2.5)}, {}, r"step=2.5 must be a whole number"),
        ({"fast": ParamRange(5.5, 20)}, {}, r"expected int"),
        ({"fast": ParamRange(1, 20)}, {}, r"must be >= 2"),
        ({"short": ParamRange(0, 1)}, {}, r"the parameter is bool"),
        ({"fast": 5}, {}, r"must be a list of values or a ParamRange"),
        ({"fast": "5:20"}, {}, r"must be a list of values or a ParamRange"),
        ({"speed": ParamRange(1, 2)}, {}, r"no parameter 'speed'"),
        ({"fast": [5]}, {"metric": "luck"}, r"unknown metric 'luck'"),
    ],
)
def test_ranges_when_bad_raise_config_error_before_any_backtest(
    ranges: dict[str, Any], kwargs: dict[str, Any], message: str, method: str
) -> None:
    CountingCrossover.calls.clear()
    with pytest.raises(ConfigError, match=message):
        StrategyOptimizer(jobs=1).optimize_strategy(
            CountingCrossover(), ranges, data=random_walk_frame(200), method=method, **kwargs
        )
    assert CountingCrossover.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "grid", "storage": "sqlite://"}, r"use method='optuna'"),
        ({"method": "grid", "study_name": "x"}, r"use method='optuna'"),
        ({"method": "optuna", "executor": object()}, r"executor= runs the grid's chunks"),
        ({"method": "optuna", "seed": 1.5}, r"seed=1.5"),
        ({"method": "optuna", "trials": 0}, r"trials=0: must be a whole number >= 1"),
        ({"method": "guess"}, r"unknown method 'guess': use 'grid' or 'optuna'"),
    ],
)
def test_options_when_they_do_not_fit_the_method_raise_config_error(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        StrategyOptimizer(jobs=1).optimize_strategy(
            "sma_crossover", {"fast": [5]}, data=random_walk_frame(200), **kwargs
        )


def test_grid_when_float_range_has_no_step_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="has no step: the grid needs one"):
        StrategyOptimizer(jobs=1).optimize_strategy(
            "mean_reversion", {"num_std": ParamRange(1.0, 2.0)}, data=random_walk_frame(200)
        )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((20, 5), r"low=20 > high=5"),
        ((5, 20, 0), r"step=0: must be > 0"),
        ((5, 20, -0.5), r"step=-0.5: must be > 0"),
        (("5", 20), r"low='5': must be a number"),
        ((True, 20), r"low=True: must be a number"),
        ((0, float("nan")), r"high=nan: must be a finite number"),
    ],
)
def test_param_range_when_built_with_bad_bounds_raises_config_error(
    args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ParamRange(*args)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5:50", ParamRange(5, 50)),
        ("5:50:5", ParamRange(5, 50, 5)),
        ("0.5:3:0.25", ParamRange(0.5, 3, 0.25)),
        ("-2:2", ParamRange(-2, 2)),
    ],
)
def test_param_range_when_parsed_from_cli_text_gives_the_range(
    text: str, expected: ParamRange
) -> None:
    assert ParamRange.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("5", "expected LOW:HIGH"), ("1:2:3:4", "expected LOW:HIGH"), ("a:5", "'a' is not a number"),
     ("9:1", "low must be <= high"), ("1:9:0", "must be > 0"), ("1:inf", "finite")],
)  # fmt: skip
def test_param_range_when_cli_text_is_bad_raises_config_error(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ParamRange.parse(text)


@given(
    low=st.integers(2, 400),
    span=st.integers(0, 300),
    step=st.integers(1, 50),
)
def test_int_range_when_expanded_starts_at_low_keeps_the_step_and_stays_within_high(
    low: int, span: int, step: int
) -> None:
    [dimension] = search_space(
        SmaCrossover(), {"fast": ParamRange(low, min(500, low + span), step)}
    )
    values = dimension.values()
    assert values[0] == low
    assert all(b - a == step for a, b in itertools.pairwise(values))
    assert values[-1] <= min(500, low + span) < values[-1] + step
    assert all(isinstance(v, int) for v in values)


@given(
    low_tenths=st.integers(1, 50),
    span_tenths=st.integers(0, 40),
    step_tenths=st.integers(1, 15),
)
def test_float_range_when_expanded_gives_exact_decimal_steps(
    low_tenths: int, span_tenths: int, step_tenths: int
) -> None:
    low, high, step = low_tenths / 10, (low_tenths + span_tenths) / 10, step_tenths / 10
    [dimension] = search_space(MeanReversion(), {"num_std": ParamRange(low, high, step)})
    values = dimension.values()
    expected = [(low_tenths + i * step_tenths) / 10 for i in range(span_tenths // step_tenths + 1)]
    assert values == expected
    assert dimension.high == values[-1]
    assert isinstance(dimension, Dimension)


def test_optimizer_when_imported_does_not_import_optuna_or_dask() -> None:
    code = (
        "import sys, marketbot.optimize.optimizer\n"
        "print(sorted(m for m in ('optuna', 'dask', 'distributed') if m in sys.modules))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert output.strip() == "[]"


def test_optuna_when_progress_given_reports_every_trial(optimizer: StrategyOptimizer) -> None:
    seen: list[tuple[int, int]] = []
    optimizer.optimize_strategy(
        "sma_crossover", GRID, data=random_walk_frame(400), method="optuna", trials=5, seed=0,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]


def test_optuna_when_run_is_saved_stores_it_as_an_optuna_run(database: Database) -> None:
    from marketbot import BacktestingEngine
    from marketbot.store.optimizations import OptimizationRunRepository

    result = StrategyOptimizer(BacktestingEngine(database), jobs=1).optimize_strategy(
        "sma_crossover", GRID, data=random_walk_frame(400), method="optuna", trials=4, seed=0,
        save=True,
    )  # fmt: skip
    [run] = OptimizationRunRepository(database).list_runs()
    assert (run.method, run.strategy) == ("optuna", "sma_crossover")
    stored = OptimizationRunRepository(database).get_results(run.id)
    assert [row["trial"] for row in stored] == result.results["trial"].tolist()


def test_optuna_when_universe_given_runs_portfolio_trials(optimizer: StrategyOptimizer) -> None:
    data = {"a": random_walk_frame(500, seed=1), "b": random_walk_frame(500, seed=2)}
    result = optimizer.optimize_strategy(
        "sma_crossover", {"fast": [5, 10]}, data=data, method="optuna", trials=3, seed=0
    )
    assert result.symbol == "a,b"
    assert len(result.results) == 3
