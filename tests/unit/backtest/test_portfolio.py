"""Portfolio backtests: one symbol equals the single run; invariants over random portfolios.

The portfolio kernel is also judged trade for trade against a plain-Python reference in
test_portfolio_reference.py; the properties here hold whatever the reference says.
"""

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
from marketbot.backtest.kernel import KernelSettings, KernelSignals, simulate
from marketbot.backtest.portfolio import per_symbol_breakdown, portfolio_trades_frame
from marketbot.backtest.portfolio_kernel import (
    PortfolioOutput,
    PortfolioSettings,
    simulate_portfolio,
)
from marketbot.core.codes import EXIT_END_OF_DATA
from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Signals, Strategy
from tests.support.frames import random_walk_frame, sample_daily_btc

HOUR_NS = 3_600_000_000_000
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


@st.composite
def runs(draw: st.DrawFn) -> tuple[tuple[np.ndarray, ...], KernelSettings, PortfolioSettings]:
    """A random panel (see ``portfolios``), costs, a stop-loss, shorts, slots and caps."""
    arrays = draw(portfolios())
    settings = KernelSettings(
        10_000.0, draw(st.sampled_from([0.0, 0.002])), 0.001, 0.05, math.nan, math.nan,
        math.nan, 0, 0, 1.0, draw(st.booleans()), math.nan, math.nan, math.nan, math.nan,
        math.nan, 0,
    )  # fmt: skip
    portfolio = PortfolioSettings(
        draw(st.integers(1, 6)),
        draw(st.sampled_from([math.nan, 0.3, 0.5, 1.0])),
        draw(st.sampled_from([math.nan, 0.03])),
    )
    return arrays, settings, portfolio


def _simulate(
    arrays: tuple[np.ndarray, ...], settings: KernelSettings, portfolio: PortfolioSettings
) -> PortfolioOutput:
    open_, high, low, close, el, xl, es, xs, fraction, rank = arrays
    n, k = close.shape
    signals = KernelSignals(el, xl, es, xs, fraction, np.full((n, k), -1, np.int64))
    times = np.arange(n, dtype=np.int64) * HOUR_NS
    return simulate_portfolio(open_, high, low, close, times, signals, rank, settings, portfolio)


def _held_after(trades: np.ndarray, bar: int) -> np.ndarray:
    """Trades whose position is still open at the close of ``bar``."""
    entered = trades["entry_bar"] <= bar
    still_open = (trades["exit_bar"] > bar) | (trades["exit_reason"] == EXIT_END_OF_DATA)
    return trades[entered & still_open]


@given(runs())
def test_portfolio_kernel_when_random_keeps_cash_slots_fees_and_pnl_consistent(
    run: tuple[tuple[np.ndarray, ...], KernelSettings, PortfolioSettings],
) -> None:
    arrays, settings, portfolio = run
    out = _simulate(*run)
    n = arrays[0].shape[0]
    trades = out.trades
    tolerance = 1e-9 * settings.initial_cash
    if not settings.allow_short:
        # Longs only spend cash they have.
        assert (out.cash >= -tolerance).all()
    # Never more positions than slots, after any bar.
    for bar in range(n):
        assert len(_held_after(trades, bar)) <= portfolio.max_open_positions
    # Every unit of P&L is accounted for: final equity = starting cash + sum of trade P&L.
    np.testing.assert_allclose(
        out.equity[-1] - settings.initial_cash, trades["pnl"].sum(), rtol=1e-9, atol=1e-6
    )
    assert out.total_fees == pytest.approx(trades["fees"].sum(), rel=1e-9, abs=1e-9)


@given(runs())
def test_portfolio_kernel_when_exposure_capped_keeps_entries_within_equity_at_their_open(
    run: tuple[tuple[np.ndarray, ...], KernelSettings, PortfolioSettings],
) -> None:
    # docs/portfolio.md: the cap is on open notional plus the new entry, as a fraction of the
    # equity at the entry (the open). The equity after a bar's open fills is at most the
    # equity marked at that open before them (every fill gives up its slippage and fee), so
    # E = cash at the previous close + the positions held then, marked at this open (their
    # last close when the symbol has no bar), bounds it. At the last entry of a bar, the
    # positions kept through the open (at the open) plus every entry of the bar (at the
    # lower of open and fill) are at most cap x E.
    arrays, settings, portfolio = run
    cap = portfolio.max_exposure_fraction
    if math.isnan(cap):
        return
    open_, _, _, close = arrays[:4]
    out = _simulate(*run)
    trades = out.trades
    last_close = np.full(open_.shape[1], np.nan)
    for bar in range(open_.shape[0]):
        marks = np.where(np.isnan(open_[bar]), last_close, open_[bar])
        last_close = np.where(np.isnan(close[bar]), last_close, close[bar])
        entries = trades[trades["entry_bar"] == bar]
        if len(entries) == 0:
            continue  # marks drift between entries; the cap binds only an entry
        held = _held_after(trades, bar - 1)
        cash = out.cash[bar - 1] if bar else settings.initial_cash
        equity_at_open = cash + float(
            (held["direction"] * held["size"] * marks[held["symbol"]]).sum()
        )
        kept = held[(held["exit_bar"] > bar) | (held["exit_reason"] == EXIT_END_OF_DATA)]
        entry_prices = np.minimum(entries["entry_price"], open_[bar, entries["symbol"]])
        exposure = float((kept["size"] * marks[kept["symbol"]]).sum()) + float(
            (entries["size"] * entry_prices).sum()
        )
        assert exposure <= cap * equity_at_open + 1e-9 * settings.initial_cash, (
            f"bar {bar}: exposure {exposure} > {cap} x equity at the open {equity_at_open}"
        )


@given(runs())
def test_portfolio_kernel_when_split_by_symbol_pnl_sums_to_the_portfolio_pnl(
    run: tuple[tuple[np.ndarray, ...], KernelSettings, PortfolioSettings],
) -> None:
    # The per-symbol table of a result (per_symbol_breakdown over the public trade table)
    # against the account: the symbols' P&L add up to the change in equity, and each
    # symbol's to the P&L of its own records.
    arrays, settings, _ = run
    out = _simulate(*run)
    n, k = arrays[0].shape
    symbols = tuple(f"s{column}" for column in range(k))
    index = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    table = per_symbol_breakdown(
        portfolio_trades_frame(out, index, symbols, ()), symbols, settings.initial_cash
    )
    assert table["symbol"].tolist() == list(symbols)
    np.testing.assert_allclose(
        table["pnl"].sum(), out.equity[-1] - settings.initial_cash, rtol=1e-9, atol=1e-6
    )
    for column, row in table.iterrows():
        mine = out.trades[out.trades["symbol"] == column]
        assert row["num_trades"] == len(mine)
        assert row["pnl"] == pytest.approx(float(mine["pnl"].sum()), rel=1e-12, abs=1e-9)
        assert row["contribution_pct"] == pytest.approx(100.0 * row["pnl"] / 10_000.0)


@given(runs(), st.data())
def test_portfolio_kernel_when_only_one_symbol_trades_equals_its_single_symbol_run(
    run: tuple[tuple[np.ndarray, ...], KernelSettings, PortfolioSettings],
    data: st.DataObject,
) -> None:
    # One slot, no exposure cap, no portfolio stop: then the one symbol with entry signals
    # trades exactly as the single-symbol kernel on its own bars (rows where it has one).
    arrays, settings, _ = run
    open_, high, low, close, el, xl, es, xs, fraction, rank = arrays
    n, k = close.shape
    trader = data.draw(st.integers(0, k - 1))
    others = np.arange(k) != trader
    el, es = el.copy(), es.copy()
    el[:, others] = False
    es[:, others] = False
    panel = (open_, high, low, close, el, xl, es, xs, fraction, rank)
    out = _simulate(panel, settings, PortfolioSettings(1, math.nan, math.nan))

    rows = np.flatnonzero(~np.isnan(open_[:, trader]))
    if len(rows) == 0:
        assert out.num_trades == 0
        return
    column = (slice(None), trader)
    single = simulate(
        *(np.ascontiguousarray(a[column][rows]) for a in (open_, high, low, close)),
        (np.arange(n, dtype=np.int64) * HOUR_NS)[rows],
        KernelSignals(
            *(np.ascontiguousarray(a[column][rows]) for a in (el, xl, es, xs, fraction)),
            np.full(len(rows), -1, np.int64),
        ),
        settings,
    )
    ours = out.trades
    assert (ours["symbol"] == trader).all()
    theirs = single.trades
    np.testing.assert_array_equal(ours["entry_bar"], rows[theirs["entry_bar"]])
    np.testing.assert_array_equal(ours["exit_bar"], rows[theirs["exit_bar"]])
    for name in ("direction", "exit_reason"):
        np.testing.assert_array_equal(ours[name], theirs[name])
    for name in ("size", "entry_price", "exit_price", "pnl", "fees"):
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out.equity[rows], single.equity, rtol=1e-12, atol=1e-9)
