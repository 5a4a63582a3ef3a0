"""Overfitting diagnostics of a grid: daily returns, DSR of the winner, PBO of the top K.

The diagnostics the fast grid finishes from its daily sums must be those of re-running the
best combinations (the path it replaces), to floating-point rounding.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import TradingWindow
from marketbot.core.bars import normalize_ohlcv
from marketbot.optimize.diagnostics import (
    DailySums,
    daily_layout,
    daily_returns,
    day_end_bars,
    diagnostics_from_daily_sums,
    overfitting_diagnostics,
)
from marketbot.optimize.executors import ThreadExecutor
from marketbot.optimize.grid_stats_nb import DAILY_FINITE
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
from marketbot.strategies.builtin import SmaCrossover
from tests.support.frames import random_walk_frame, sample_daily_btc


def test_daily_returns_when_hourly_equity_uses_each_days_last_close() -> None:
    index = pd.date_range("2024-01-01", periods=48, freq="h", tz="UTC")
    equity = pd.Series(np.linspace(100.0, 147.0, 48), index=index)
    # Day 1 ends at 123 (hour 23), day 2 at 147: one return, 147 / 123 - 1.
    np.testing.assert_allclose(daily_returns(equity).to_numpy(), [147.0 / 123.0 - 1.0])


def test_overfitting_diagnostics_when_grid_of_noise_reports_dsr_and_pbo() -> None:
    frame = normalize_ohlcv(random_walk_frame(24 * 400, seed=5))
    window = TradingWindow.of(frame)
    strategy, config = SmaCrossover(), BacktestConfig()
    combos = [
        strategy.resolve_params({"fast": f, "slow": s}) for f in (5, 10, 20) for s in (50, 100)
    ]
    rows = [window.run(strategy, p, config).metrics for p in combos]
    results = pd.DataFrame(rows)
    results["eligible"] = True

    def equity_of(params: dict[str, object]) -> pd.Series:
        return pd.Series(window.run(strategy, params, config).output.equity, index=window.index)

    diagnostics = overfitting_diagnostics(results, combos, "sharpe", equity_of, top_k=4)
    assert diagnostics["top_k"] == 4
    assert diagnostics["days"] == 399  # 400 days of hourly bars give 399 daily returns
    dsr = diagnostics["deflated_sharpe"]
    assert 0.0 <= dsr["deflated_sharpe"] <= 1.0 and dsr["num_trials"] == 6
    assert 0.0 <= diagnostics["pbo"]["pbo"] <= 1.0
    assert diagnostics["pbo"]["num_columns"] == 4


# -- from the grid pass: the same figures as the re-runs ----------------------------------


class ChunkedThreads(ThreadExecutor):
    """A thread executor the fast grid does not take: the grid runs in chunks, and the
    diagnostics re-run the best combinations (the path the fast grid's sums replace)."""


def _assert_close(ours: object, theirs: object, where: str) -> None:
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs), where
        for key, value in theirs.items():
            _assert_close(ours[key], value, f"{where}.{key}")
    elif isinstance(theirs, float) and not isinstance(theirs, bool):
        assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), where
    else:
        assert ours == theirs, where


GRIDS = {
    "sma_crossover": {"fast": [2, 5, 10, 20], "slow": [15, 30, 60, 120]},
    "mean_reversion": {"window": [5, 20, 40], "num_std": [1.0, 2.0], "exit_std": [0.0, 0.5]},
    "momentum": {"lookback": [3, 10, 30], "entry_pct": [2.0, 8.0], "breakout": [False, True]},
}


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize(
    ("data", "options"),
    [
        ("btc", {}),
        ("btc", {"start_date": "2016-06-01", "min_trades": 10, "top_k": 7}),
        ("hourly", {"stop_loss": 0.03, "metric": "calmar"}),
        ("hourly", {"start_date": "2020-03-10", "sizing": "fraction", "size": 0.5}),
    ],
    ids=["btc", "btc-start-min-trades-top-7", "hourly-stops-calmar", "hourly-start-fraction"],
)
def test_diagnostics_when_from_the_grid_pass_equal_the_re_runs(
    name: str, data: str, options: dict[str, object]
) -> None:
    if data == "btc":
        frame = normalize_ohlcv(sample_daily_btc())
    else:
        frame = normalize_ohlcv(random_walk_frame(24 * 300, seed=11))
    options = {"metric": "sharpe", **options}
    metric = str(options.pop("metric"))

    def optimise(executor: ThreadExecutor | None) -> OptimizationResult:
        return StrategyOptimizer(jobs=2).optimize_strategy(
            name, GRIDS[name], metric, data=frame, executor=executor, **options
        )

    streamed, re_run = optimise(None), optimise(ChunkedThreads(2))
    assert streamed.results.equals(re_run.results)
    assert "deflated_sharpe" in re_run.diagnostics and "pbo" in re_run.diagnostics
    # The same daily returns, bit for bit, and the PBO's block sums made by the same
    # additions: the PBO is the same; the DSR's moments come from power sums instead.
    assert streamed.diagnostics["pbo"] == re_run.diagnostics["pbo"]
    _assert_close(streamed.diagnostics, re_run.diagnostics, "diagnostics")


def test_daily_layout_when_bars_are_hourly_cuts_the_days_as_daily_returns_and_the_pbo() -> None:
    frame = normalize_ohlcv(random_walk_frame(24 * 90 + 5, seed=2, start="2021-03-01 07:00"))
    times = frame.index.asi8
    layout, sums = daily_layout(times)
    returns = daily_returns(pd.Series(np.arange(len(frame)) + 1.0, index=frame.index))
    assert sums.num_returns == len(returns) == 90
    assert sums.num_splits == 16  # 90 days // 5 = 18, at most 16
    assert list(layout.day_ends[:-1] + 0) == list(day_end_bars(times)) and layout.day_ends[-1] == -1
    starts = (np.arange(16) * 90) // 16
    assert list(layout.block_starts) == [*starts, 90]
    assert list(sums.block_counts) == list(np.diff([*starts, 90]))


def test_diagnostics_from_daily_sums_when_a_chosen_return_is_not_finite_asks_for_re_runs() -> None:
    _, empty = daily_layout(np.arange(40, dtype=np.int64) * 86_400_000_000_000)
    rows = np.zeros((2, empty.rows.shape[1]))
    rows[:, DAILY_FINITE] = [1.0, 0.0]
    sums = DailySums(rows, empty.block_counts, empty.num_returns, empty.num_splits)
    results = pd.DataFrame({"sharpe": [1.0, 2.0], "eligible": [True, True]})
    assert diagnostics_from_daily_sums(results, sums, "sharpe") is None
