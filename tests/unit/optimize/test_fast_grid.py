"""The fast grid path: every metric bit for bit what one-by-one backtests give, or None.

``evaluate_fast`` must return exactly ``window.run(strategy, params, config).metrics`` per
combination (compared with ``==``, as the optimiser's own test compares its rows), on the
bundled daily BTC and on random bars with start dates, costs, sizing modes and exit rules.
Its building blocks are checked on their own: the moving averages against
``rolling_mean_nb``, and the streamed equity statistics (the flat-run shortcut included)
against ``core.metrics_nb.equity_stats_nb``, bar by bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import njit

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.engine import TradingWindow
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.metrics_nb import equity_stats_nb
from marketbot.core.risk_limits import RiskLimits
from marketbot.optimize.fast_grid import evaluate_fast
from marketbot.optimize.fast_grid_nb import rolling_means_nb
from marketbot.optimize.grid_stats_nb import (
    EquityState,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
)
from marketbot.optimize.optimizer import Evaluation
from marketbot.strategies.builtin.momentum import Momentum
from marketbot.strategies.builtin.sma_crossover import SmaCrossover
from marketbot.strategies.indicators import rolling_mean_nb
from tests.support.frames import sample_daily_btc

HOUR_NS = 3_600 * 1_000_000_000
STRATEGY = SmaCrossover()

CONFIGS = {
    "defaults": BacktestConfig(),
    "no costs": BacktestConfig(fee_rate=0.0, slippage_rate=0.0),
    "5 bp fee": BacktestConfig(fee_rate=0.0005, slippage_rate=0.0, initial_cash=10_000),
    "fraction": BacktestConfig(sizing="fraction", size=0.5, slippage_rate=0.002),
    "fixed cash": BacktestConfig(sizing="fixed_cash", size=2_500.0, initial_cash=5_000.0),
    "stops": BacktestConfig(
        exits=ExitRules(stop_loss=0.05, take_profit=0.25, trailing_stop=0.1),
    ),
    "trailing armed, max hold": BacktestConfig(
        fee_rate=0.001,
        exits=ExitRules(trailing_stop=0.04, trailing_activation=0.03, max_hold_seconds=40 * 86_400),
    ),
}


def _combinations(fast: Sequence[int], slow: Sequence[int]) -> list[dict[str, Any]]:
    """Full parameter sets of every fast < slow pair, in grid order (as expand_grid makes)."""
    return [STRATEGY.resolve_params({"fast": f, "slow": s}) for f in fast for s in slow if f < s]


def _one_by_one(
    window: TradingWindow, combinations: Sequence[Mapping[str, Any]], config: BacktestConfig
) -> list[dict[str, float | int]]:
    return [window.run(STRATEGY, params, config).metrics for params in combinations]


def _assert_identical(
    fast: list[dict[str, float | int]] | None, slow: list[dict[str, float | int]]
) -> None:
    assert fast is not None
    assert len(fast) == len(slow)
    for position, (theirs, ours) in enumerate(zip(fast, slow, strict=True)):
        assert list(theirs) == list(ours)  # same keys, same order
        for key, value in ours.items():
            # == holds for inf too; the types must match (ints stay ints).
            assert theirs[key] == value, (position, key, theirs[key], value)
            assert type(theirs[key]) is type(value), (position, key)


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return normalize_ohlcv(sample_daily_btc())


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("start", [None, "2017-01-01"])
def test_evaluate_fast_when_daily_btc_grid_matches_one_by_one_backtests(
    btc: pd.DataFrame, config_name: str, start: str | None
) -> None:
    config = CONFIGS[config_name]
    window = TradingWindow.of(btc, start=None if start is None else pd.Timestamp(start, tz="UTC"))
    combinations = _combinations([2, 5, 10, 20, 50], [3, 30, 50, 100, 200])
    if start is not None:
        assert window.first > 0
    _assert_identical(
        evaluate_fast(window, STRATEGY, combinations, config),
        _one_by_one(window, combinations, config),
    )


def test_evaluate_fast_when_averages_do_not_fit_the_cache_tiles_the_grid(
    btc: pd.DataFrame,
) -> None:
    window = TradingWindow.of(btc, start=pd.Timestamp("2015-06-01", tz="UTC"))
    combinations = _combinations([3, 7, 12, 30], [8, 40, 60, 90, 150])
    seen: list[tuple[int, int]] = []
    # One byte of cache: every tile holds one fast and one slow average.
    tiled = evaluate_fast(
        window, STRATEGY, combinations, BacktestConfig(), max_cache_bytes=1,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    _assert_identical(tiled, _one_by_one(window, combinations, BacktestConfig()))
    assert seen[-1] == (len(combinations), len(combinations))
    assert [done for done, _ in seen] == sorted({done for done, _ in seen})


def test_evaluate_fast_when_one_thread_asked_gives_the_same_and_restores_numba(
    btc: pd.DataFrame,
) -> None:
    window = TradingWindow.of(btc)
    combinations = _combinations([5, 10, 20], [30, 60])
    threads = numba.get_num_threads()
    single = evaluate_fast(window, STRATEGY, combinations, BacktestConfig(), threads=1)
    assert numba.get_num_threads() == threads
    assert single == evaluate_fast(window, STRATEGY, combinations, BacktestConfig())


@pytest.mark.parametrize(
    ("strategy", "params", "config"),
    [
        (STRATEGY, {"short": True}, BacktestConfig()),
        (STRATEGY, {}, BacktestConfig(risk=RiskLimits())),
        (Momentum(), {}, BacktestConfig()),
        (type("MySma", (SmaCrossover,), {})(), {}, BacktestConfig()),
    ],
    ids=["short", "risk limits", "another strategy", "a subclass"],
)
def test_evaluate_fast_when_unsupported_returns_none(
    btc: pd.DataFrame, strategy: Any, params: dict[str, object], config: BacktestConfig
) -> None:
    window = TradingWindow.of(btc)
    combinations = [strategy.resolve_params(params)]
    assert evaluate_fast(window, strategy, combinations, config) is None


def test_evaluate_fast_when_no_combination_returns_none(btc: pd.DataFrame) -> None:
    assert evaluate_fast(TradingWindow.of(btc), STRATEGY, [], BacktestConfig()) is None


# -- random bars -------------------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Valid OHLCV bars: random walks, some on a coarse price grid (ties between the averages,
    exact stop hits), some with flat stretches, a few gaps in time."""
    num_bars = draw(st.integers(2, 260))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    volatility = draw(st.sampled_from([0.002, 0.03]))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, volatility, num_bars)))
    tick = draw(st.sampled_from([0.0, 0.5, 5.0]))
    if tick:
        close = np.maximum(tick, np.round(close / tick) * tick)
    if draw(st.booleans()):
        # Flat stretches: every other block of 10 bars keeps its first close.
        block = np.arange(num_bars) // 10
        close = np.where(block % 2 == 1, close[block * 10], close)
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, volatility, num_bars)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, volatility, num_bars)))
    steps = np.where(rng.random(num_bars) < 0.05, 3, 1)
    index = pd.to_datetime(1_600_000_000 * 10**9 + HOUR_NS * np.cumsum(steps), utc=True)
    columns = {"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}
    return pd.DataFrame(columns, index=index)


configs = st.builds(
    BacktestConfig,
    fee_rate=st.sampled_from([0.0, 0.0005, 0.002]),
    slippage_rate=st.sampled_from([0.0, 0.001]),
    initial_cash=st.sampled_from([10_000, 1.0, 123_456.78]),
    exits=st.builds(
        ExitRules,
        stop_loss=st.sampled_from([None, 0.01, 0.05]),
        take_profit=st.sampled_from([None, 0.02, 0.1]),
        trailing_stop=st.sampled_from([None, 0.02]),
        trailing_activation=st.sampled_from([None, 0.0, 0.01]),
        max_hold_seconds=st.sampled_from([0, 5 * 3_600]),
    ),
)


@given(
    frame=frames(),
    fast=st.lists(st.integers(1, 30), min_size=1, max_size=4, unique=True),
    slow=st.lists(st.integers(2, 90), min_size=1, max_size=4, unique=True),
    start_fraction=st.sampled_from([0.0, 0.3, 0.9]),
    config=configs,
)
def test_evaluate_fast_when_bars_are_random_matches_one_by_one_backtests(
    frame: pd.DataFrame,
    fast: list[int],
    slow: list[int],
    start_fraction: float,
    config: BacktestConfig,
) -> None:
    combinations = [
        {"fast": f, "slow": s, "short": False} for f in fast for s in slow
    ]  # fast >= slow too: the window runs what it is given, and so must the fast path
    bars = normalize_ohlcv(frame)
    start = bars.index[int(start_fraction * (len(bars) - 1))]
    window = TradingWindow.of(bars, start=start if start_fraction else None)
    _assert_identical(
        evaluate_fast(window, STRATEGY, combinations, config),
        _one_by_one(window, combinations, config),
    )


# -- building blocks ---------------------------------------------------------------------------


@given(
    windows=st.lists(st.integers(1, 300), min_size=1, max_size=9),
    length=st.integers(1, 400),
    seed=st.integers(0, 2**32 - 1),
)
def test_rolling_means_nb_when_compared_with_rolling_mean_nb_is_bit_identical(
    windows: list[int], length: int, seed: int
) -> None:
    values = 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.02, length)))
    means = rolling_means_nb(values, np.array(windows, dtype=np.int64))
    for row, window in enumerate(windows):
        expected = rolling_mean_nb(values, window)
        assert np.array_equal(means[row], expected, equal_nan=True)
        assert means[row].tobytes() == expected.tobytes()


@njit
def _streamed_equity_stats(equity: np.ndarray) -> tuple[bool, float, float, float, float, int]:
    """``equity_stats_nb`` by streaming, with every run of unchanged equity as one step."""
    n = equity.shape[0]
    state: EquityState = equity_stats_start_nb(equity[0])
    t = 1
    while t < n:
        if t >= 2 and equity[t] == equity[t - 1]:
            last = t
            while last + 1 < n and equity[last + 1] == equity[t]:
                last += 1
            state = equity_stats_unchanged_nb(state, t, last)
            t = last + 1
        else:
            state = equity_stats_mark_nb(state, t, equity[t])
            t += 1
    return equity_stats_finish_nb(state, n)


@given(
    steps=st.lists(
        st.tuples(st.sampled_from([100.0, 90.0, 110.0, 100.5, 0.0, -5.0, 1e-3]), st.integers(1, 6)),
        min_size=1,
        max_size=40,
    )
)
def test_streamed_equity_stats_when_compared_with_core_metrics_are_identical(
    steps: list[tuple[float, int]],
) -> None:
    equity = np.repeat([value for value, _ in steps], [count for _, count in steps])
    streamed = _streamed_equity_stats(equity)
    expected = equity_stats_nb(equity)
    assert streamed[0] == expected[0]
    if expected[0]:
        for theirs, ours in zip(streamed, expected, strict=True):
            assert theirs == ours or (math.isnan(theirs) and math.isnan(ours))


def test_evaluation_when_run_through_the_fast_path_gives_the_generic_metrics(
    btc: pd.DataFrame,
) -> None:
    # What the optimiser's Evaluation.metrics gives per combination, the fast path gives.
    window = TradingWindow.of(btc)
    evaluation = Evaluation(STRATEGY, BacktestConfig(), window=window)
    combinations = _combinations([10], [30, 60])
    assert evaluate_fast(window, STRATEGY, combinations, BacktestConfig()) == [
        evaluation.metrics(params) for params in combinations
    ]
