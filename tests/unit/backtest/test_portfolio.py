"""Portfolio backtests: one symbol equals the single run; invariants over random portfolios."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot import BacktestingEngine, RiskLimits
from marketbot.backtest.kernel import KernelSettings, KernelSignals
from marketbot.backtest.portfolio_kernel import PortfolioSettings, simulate_portfolio
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Signals, Strategy
from tests.support.frames import random_walk_frame, sample_daily_btc

PUBLIC_TRADE_COLUMNS = [
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "size",
    "pnl",
    "pnl_pct",
    "exit_reason",
]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stop_loss": 0.05, "trailing_stop": 0.1, "take_profit": 0.3},
        {"params": {"fast": 5, "slow": 20, "short": True}, "max_hold": "20d"},
        {"risk": RiskLimits(max_position_size_usd=4_000, max_total_exposure_usd=5_000)},
        {"sizing": "fraction", "size": 0.5},
    ],
)
def test_portfolio_when_one_symbol_equals_the_single_symbol_run(kwargs: dict[str, object]) -> None:
    frame = sample_daily_btc()
    engine = BacktestingEngine()
    single = engine.run_backtest("sma_crossover", "2016-01-01", data=frame, **kwargs)  # type: ignore[arg-type]
    portfolio = engine.run_backtest(
        "sma_crossover",
        "2016-01-01",
        data={"bitcoin": frame},
        **kwargs,  # type: ignore[arg-type]
    )
    pd.testing.assert_frame_equal(
        single.trades[PUBLIC_TRADE_COLUMNS], portfolio.trades[PUBLIC_TRADE_COLUMNS]
    )
    np.testing.assert_array_equal(single.equity_curve.to_numpy(), portfolio.equity_curve.to_numpy())
    assert single.metrics == portfolio.metrics
    assert single.recommendation == portfolio.recommendation


def two_symbols_with_entries_on_one_bar() -> dict[str, pd.DataFrame]:
    index = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    closes = {"aaa": [10, 10, 11, 12, 13, 14], "bbb": [20, 20, 21, 22, 23, 24]}
    return {
        name: pd.DataFrame(
            {"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=index
        ).astype(float)
        for name, c in closes.items()
    }


class EntersOnBarOne(Strategy):
    """Every symbol signals an entry on its bar 1 (filled at bar 2's open), never an exit."""

    name = "enters_on_bar_one"

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        return 0

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        entries = np.zeros(len(frame), bool)
        entries[1] = True
        return Signals(entries, np.zeros(len(frame), bool))


def test_portfolio_when_one_slot_and_two_signals_takes_symbol_order() -> None:
    result = BacktestingEngine().run_backtest(
        EntersOnBarOne,
        data=two_symbols_with_entries_on_one_bar(),
        max_open_positions=1,
        fee=0,
        slippage=0,
    )
    # One slot: aaa (first in symbol order) takes it with the whole equity at bar 2's open.
    assert result.trades["symbol"].tolist() == ["aaa"]
    first = result.trades.iloc[0]
    assert first["entry_price"] == 11.0 and first["size"] == pytest.approx(10_000 / 11)


def test_portfolio_when_strategy_ranks_takes_the_higher_rank_first() -> None:
    class Ranked(EntersOnBarOne):
        name = "ranked"

        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            plain = super().signals(frame, params)
            # The higher-priced symbol ranks higher.
            return Signals(plain.entries_long, plain.exits_long, rank=frame["close"].to_numpy())

    result = BacktestingEngine().run_backtest(
        Ranked, data=two_symbols_with_entries_on_one_bar(), max_open_positions=1
    )
    assert result.trades["symbol"].tolist() == ["bbb"]


def test_portfolio_when_position_limit_blocks_second_entry_reports_refusal() -> None:
    # Two slots, but the risk limit allows one position; equal weight is 5,000 each.
    limits = RiskLimits(max_positions=1, max_position_size_usd=5_000, max_total_exposure_usd=5_000)
    result = BacktestingEngine().run_backtest(
        EntersOnBarOne, data=two_symbols_with_entries_on_one_bar(), risk=limits, fee=0, slippage=0
    )
    assert result.trades["symbol"].tolist() == ["aaa"]
    assert result.trades.iloc[0]["size"] * 11.0 == pytest.approx(5_000.0)
    assert any("risk limits refused 1 entries (positions: 1)" in note for note in result.notes)


def test_portfolio_when_symbol_misses_bars_it_is_not_traded_then() -> None:
    frames = {
        "full": random_walk_frame(300, seed=1),
        "holey": random_walk_frame(300, seed=2).drop(random_walk_frame(300).index[100:200]),
    }
    result = BacktestingEngine().run_backtest(
        "sma_crossover", data=frames, params={"fast": 3, "slow": 8}
    )
    missing = set(random_walk_frame(300).index[100:200])
    holey = result.trades[result.trades["symbol"] == "holey"]
    assert not (set(holey["entry_time"]) | set(holey["exit_time"])) & missing
    assert len(result.equity_curve) == 300


def test_portfolio_when_bad_settings_raise_config_error() -> None:
    frames = two_symbols_with_entries_on_one_bar()
    with pytest.raises(ConfigError, match="max_open_positions=0"):
        BacktestingEngine().run_backtest("sma_crossover", data=frames, max_open_positions=0)
    with pytest.raises(ConfigError, match=r"portfolio_stop=1\.5"):
        BacktestingEngine().run_backtest("sma_crossover", data=frames, portfolio_stop=1.5)
    with pytest.raises(ConfigError, match="exactly one of"):
        BacktestingEngine().run_backtest("sma_crossover", data=frames, symbol="x")


@st.composite
def portfolios(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(5, 120))
    k = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.03, (n, k)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, (n, k)))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.01, (n, k))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.01, (n, k))))
    holes = rng.random((n, k)) < draw(st.sampled_from([0.0, 0.1, 0.3]))
    for grid in (open_, high, low, close):
        grid[holes] = np.nan
    density = draw(st.sampled_from([0.05, 0.3]))
    return (
        open_, high, low, close,
        rng.random((n, k)) < density, rng.random((n, k)) < density,
        rng.random((n, k)) < density / 2, rng.random((n, k)) < density / 2,
        np.where(rng.random((n, k)) < 0.3, rng.uniform(0.05, 1.0, (n, k)), np.nan),
        np.where(rng.random((n, k)) < 0.5, rng.random((n, k)), np.nan),
    )  # fmt: skip


@given(
    arrays=portfolios(),
    slots=st.integers(1, 6),
    exposure_cap=st.sampled_from([math.nan, 0.5, 1.0]),
    stop=st.sampled_from([math.nan, 0.03]),
    shorts=st.booleans(),
    fee=st.sampled_from([0.0, 0.002]),
)
def test_portfolio_kernel_when_random_keeps_cash_slots_exposure_and_pnl_consistent(
    arrays: tuple[np.ndarray, ...],
    slots: int,
    exposure_cap: float,
    stop: float,
    shorts: bool,
    fee: float,
) -> None:
    open_, high, low, close, el, xl, es, xs, fraction, rank = arrays
    n, k = close.shape
    settings = KernelSettings(
        10_000.0, fee, 0.001, 0.05, math.nan, math.nan, math.nan, 0, 0, 1.0, shorts,
        math.nan, math.nan, math.nan, math.nan, math.nan, 0,
    )  # fmt: skip
    signals = KernelSignals(el, xl, es, xs, fraction, np.full((n, k), -1, np.int64))
    times = np.arange(n, dtype=np.int64) * 3_600_000_000_000
    out = simulate_portfolio(
        open_, high, low, close, times, signals, rank, settings,
        PortfolioSettings(slots, exposure_cap, stop),
    )  # fmt: skip
    tolerance = 1e-9 * 10_000.0
    trades = out.trades
    if not shorts:
        # Longs only spend cash they have.
        assert (out.cash >= -tolerance).all()
    # Never more positions than slots: count open positions after each bar.
    open_counts = np.zeros(n, dtype=np.int64)
    for entry, exit_, reason in zip(
        trades["entry_bar"], trades["exit_bar"], trades["exit_reason"], strict=True
    ):
        last_held = exit_ if reason == 5 else exit_ - 1  # end_of_data: held to its last bar
        open_counts[entry : last_held + 1] += 1
    assert (open_counts <= slots).all()
    if not math.isnan(exposure_cap):
        # Exposure is capped at entry; marks can drift above it between entries.
        assert (
            trades["size"] * trades["entry_price"] <= exposure_cap * out.equity.max() + tolerance
        ).all()
    # Every unit of P&L is accounted for: final equity = cash + sum of trade P&L.
    np.testing.assert_allclose(out.equity[-1] - 10_000.0, trades["pnl"].sum(), rtol=1e-9, atol=1e-6)
    per_symbol = np.bincount(trades["symbol"], weights=trades["pnl"], minlength=k)
    np.testing.assert_allclose(per_symbol.sum(), trades["pnl"].sum(), rtol=1e-12, atol=1e-9)
    assert out.total_fees == pytest.approx(trades["fees"].sum(), rel=1e-9, abs=1e-9)
