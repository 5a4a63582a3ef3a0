"""Overfitting diagnostics of a grid: daily returns, DSR of the winner, PBO of the top K."""

from __future__ import annotations

import numpy as np
import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import TradingWindow
from marketbot.core.bars import normalize_ohlcv
from marketbot.optimize.diagnostics import daily_returns, overfitting_diagnostics
from marketbot.strategies.builtin import SmaCrossover
from tests.support.frames import random_walk_frame


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
