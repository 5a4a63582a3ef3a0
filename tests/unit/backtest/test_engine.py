"""The engine front end: input shapes, date ranges, warm-up, sizing options, result shape."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from marketbot import BacktestingEngine
from marketbot.core.errors import ConfigError, DataError, StrategyError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.strategies.builtin import SmaCrossover
from tests.support.frames import random_walk_frame, sample_daily_btc

TRADE_KEYS = (
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "pnl_pct",
    "exit_reason",
)


@pytest.fixture(scope="module")
def btc_daily() -> pd.DataFrame:
    return sample_daily_btc()


def test_run_backtest_when_data_given_returns_every_metric_and_trade_column(
    btc_daily: pd.DataFrame,
) -> None:
    result = BacktestingEngine().run_backtest("sma_crossover", data=btc_daily)
    assert tuple(result.metrics) == METRIC_KEYS
    assert all(not (isinstance(v, float) and math.isnan(v)) for v in result.metrics.values())
    assert set(TRADE_KEYS) <= set(result.trades.columns)
    assert len(result.equity_curve) == len(btc_daily)
    assert str(result.equity_curve.index.tz) == "UTC"
    assert result.metrics["num_trades"] == len(result.trades)


def test_run_backtest_when_result_is_serialised_gives_iso_times_and_json_numbers(
    btc_daily: pd.DataFrame,
) -> None:
    payload = BacktestingEngine().run_backtest("sma_crossover", data=btc_daily).to_dict()
    text = json.dumps(payload, allow_nan=False)
    decoded = json.loads(text)
    assert decoded["equity_curve"][0] == {"time": "2014-11-28T00:00:00Z", "equity": 10_000.0}
    first = decoded["trades"][0]
    assert set(TRADE_KEYS) <= set(first)
    assert first["entry_time"].endswith("Z")
    assert decoded["recommendation"] in {"EXCELLENT", "GOOD", "MARGINAL", "FAILED"}


def test_run_backtest_when_nothing_lost_reports_profit_factor_inf_and_json_null() -> None:
    # A steadily rising series: one long entry, never a losing trade.
    frame = random_walk_frame(200, seed=3, volatility=0.0001)
    for column in ("open", "high", "low", "close"):
        frame[column] = np.linspace(100.0, 200.0, 200)
    result = BacktestingEngine().run_backtest(
        "momentum", data=frame, params={"lookback": 5, "entry_pct": 0.1, "exit_pct": -50.0}
    )
    assert result.metrics["profit_factor"] == math.inf
    assert result.to_dict()["metrics"]["profit_factor"] is None
    assert result.trades["exit_reason"].tolist() == ["end_of_data"]


def test_run_backtest_when_columns_capitalised_and_index_naive_gives_same_result(
    btc_daily: pd.DataFrame,
) -> None:
    engine = BacktestingEngine()
    reference = engine.run_backtest("sma_crossover", data=btc_daily)
    shaped = btc_daily.rename(columns=str.capitalize)
    shaped.index = pd.DatetimeIndex(pd.to_datetime(btc_daily["timestamp"]).dt.tz_localize(None))
    shaped = shaped.drop(columns="Timestamp")
    again = engine.run_backtest(SmaCrossover, data=shaped)
    pd.testing.assert_frame_equal(reference.trades, again.trades)
    assert reference.metrics == again.metrics


def test_run_backtest_when_start_given_uses_earlier_bars_for_warmup(
    btc_daily: pd.DataFrame,
) -> None:
    result = BacktestingEngine().run_backtest(
        "sma_crossover", "2020-01-01", "2020-12-31", data=btc_daily
    )
    assert result.equity_curve.index[0] == pd.Timestamp("2020-01-01", tz="UTC")
    assert result.equity_curve.index[-1] == pd.Timestamp("2020-12-31", tz="UTC")
    # The slow average is ready on day one, so a cross in the first 30 days can trade.
    full = BacktestingEngine().run_backtest("sma_crossover", data=btc_daily)
    inside = full.trades[
        (full.trades["entry_time"] >= "2020-01-02") & (full.trades["exit_time"] <= "2020-12-31")
    ]
    assert inside["entry_time"].tolist() == [
        t for t in result.trades["entry_time"].tolist() if t in set(inside["entry_time"])
    ]
    assert len(inside) > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fee": -0.1}, ConfigError, "fee=-0.1"),
        ({"slippage": 1.5}, ConfigError, "slippage=1.5"),
        ({"cash": 0}, ConfigError, "cash=0"),
        ({"stop_loss": 2.0}, ConfigError, "stop_loss=2.0"),
        ({"max_hold": "soon"}, ConfigError, "max_hold='soon'"),
        ({"sizing": "fraction", "size": 1.5}, ConfigError, "size=1.5"),
        ({"params": {"fast": 50, "slow": 10}}, ConfigError, "fast \\(50\\) must be less"),
        ({"params": {"nope": 1}}, ConfigError, "no parameter 'nope'"),
    ],
)
def test_run_backtest_when_setting_invalid_raises_before_running(
    btc_daily: pd.DataFrame, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        BacktestingEngine().run_backtest("sma_crossover", data=btc_daily, **kwargs)  # type: ignore[arg-type]


def test_run_backtest_when_start_after_end_raises_config_error(btc_daily: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="start date 2021-01-01 is after end date 2020-01-01"):
        BacktestingEngine().run_backtest(
            "sma_crossover", "2021-01-01", "2020-01-01", data=btc_daily
        )


def test_run_backtest_when_range_has_no_bars_raises_data_error(btc_daily: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="no bars in the requested date range"):
        BacktestingEngine().run_backtest("sma_crossover", "2030-01-01", data=btc_daily)


def test_run_backtest_when_unknown_strategy_raises_strategy_error(btc_daily: pd.DataFrame) -> None:
    with pytest.raises(StrategyError, match="unknown strategy 'magic'"):
        BacktestingEngine().run_backtest("magic", data=btc_daily)


def test_run_backtest_when_neither_symbol_nor_data_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="exactly one of symbol"):
        BacktestingEngine().run_backtest("sma_crossover")


def test_run_backtest_when_fraction_sizing_commits_that_share_of_equity() -> None:
    frame = random_walk_frame(500, seed=5)
    result = BacktestingEngine().run_backtest(
        "sma_crossover", data=frame, sizing="fraction", size=0.25, fee=0.0, slippage=0.0
    )
    first = result.trades.iloc[0]
    # With no costs, units x price is exactly a quarter of the cash at entry (10,000).
    assert first["size"] * first["entry_price"] == pytest.approx(2_500.0, rel=1e-12)


def test_run_backtest_when_short_param_on_trades_both_directions() -> None:
    frame = random_walk_frame(2_000, seed=11)
    result = BacktestingEngine().run_backtest(
        "sma_crossover", data=frame, params={"fast": 5, "slow": 20, "short": True}
    )
    assert set(result.trades["direction"]) == {"long", "short"}
    # Always in the market after the first cross: each exit is the next entry's bar.
    trades = result.trades
    assert (
        trades["exit_bar"].iloc[:-1].to_numpy() == trades["entry_bar"].iloc[1:].to_numpy()
    ).all()


def test_run_backtest_when_gaps_in_data_reports_them_in_notes() -> None:
    frame = random_walk_frame(300, seed=2).drop(index=random_walk_frame(300).index[100:110])
    result = BacktestingEngine().run_backtest("sma_crossover", data=frame)
    assert any("1 gap(s) in the 1h bars, 10 bar(s) missing" in note for note in result.notes)
