"""The fast grid path: every metric bit for bit what one-by-one backtests give, or None.

``evaluate_fast`` must return exactly ``window.run(strategy, params, config).metrics`` per
combination (compared with ``==``, as the optimiser's own test compares its rows), for every
strategy with a grid hook (the three built-ins, and a strategy of the tests' own), on the
bundled daily BTC and on random bars with start dates, costs, sizing modes and exit rules.
Its building blocks are checked on their own: the moving averages against
``rolling_mean_nb``, and the streamed equity statistics (the flat-run shortcut included)
against ``core.metrics_nb.equity_stats_nb``, bar by bar.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

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
from marketbot.core.errors import StrategyError
from marketbot.core.metrics_nb import equity_stats_nb
from marketbot.core.risk_limits import RiskLimits
from marketbot.optimize.fast_grid import evaluate_fast
from marketbot.optimize.grid_stats_nb import (
    EquityState,
    equity_stats_finish_nb,
    equity_stats_mark_nb,
    equity_stats_start_nb,
    equity_stats_unchanged_nb,
)
from marketbot.optimize.optimizer import Evaluation
from marketbot.strategies.base import GridSignals, Parameter, Signals, Strategy
from marketbot.strategies.builtin.mean_reversion import MeanReversion
from marketbot.strategies.builtin.momentum import Momentum
from marketbot.strategies.builtin.sma_crossover import SmaCrossover
from marketbot.strategies.indicators import (
    close_rows,
    grid_kernel,
    rolling_mean_nb,
    rolling_mean_rows,
    rolling_means_nb,
    rolling_std_nb,
    rolling_stds_nb,
)
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


@njit(cache=True, nogil=True)
def _close_above_band_grid_nb(
    k: int,
    tables: np.ndarray,
    rows: np.ndarray,
    values: np.ndarray,
    start: int,
    stop: int,
    entries: np.ndarray,
    exits: np.ndarray,
) -> None:
    mean = tables[rows[k, 0]]
    close = tables[rows[k, 1]]
    band = values[k, 0]
    for g in range(start, stop):
        entries[g] = close[g] > mean[g] * (1.0 + band)
        exits[g] = close[g] < mean[g]


class CloseAboveBand(Strategy):
    """The tests' own strategy with a grid hook: the grid serves it as it serves a built-in."""

    name: ClassVar[str] = "close_above_band"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("window", 10, low=1, high=500),
        Parameter("band", 0.01, low=0.0, high=1.0),
    )

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        return int(params["window"]) // 2  # shorter than the window: NaN rows still count

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        close = frame["close"].to_numpy(dtype=np.float64)
        mean = rolling_mean_nb(close, int(params["window"]))
        return Signals(close > mean * (1.0 + params["band"]), close < mean)

    def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals:
        keys = np.array([[int(p["window"]), 0] for p in combinations], dtype=np.int64)
        return GridSignals(
            kernel=grid_kernel(_close_above_band_grid_nb),
            indicators=(rolling_mean_rows, close_rows),
            keys=keys.reshape(len(combinations), 2),
            values=np.array([[p["band"]] for p in combinations], dtype=np.float64),
        )


class SignalsOnly(SmaCrossover):
    """Overrides signals() alone: its parent's grid hook must not be used for it."""

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        up, down = super().signals(frame, params).entries_long, np.zeros(len(frame), bool)
        return Signals(up, down)


def _grid(strategy: Strategy, **axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the axes, defaults filled in (not validated: run as given)."""
    combinations: list[dict[str, Any]] = [strategy.defaults()]
    for name, values in axes.items():
        combinations = [{**c, name: value} for c in combinations for value in values]
    return combinations


def _combinations(fast: Sequence[int], slow: Sequence[int]) -> list[dict[str, Any]]:
    """Full parameter sets of every fast < slow pair, in grid order (as expand_grid makes)."""
    return [STRATEGY.resolve_params({"fast": f, "slow": s}) for f in fast for s in slow if f < s]


def _one_by_one(
    window: TradingWindow,
    combinations: Sequence[Mapping[str, Any]],
    config: BacktestConfig,
    strategy: Strategy = STRATEGY,
) -> list[dict[str, float | int]]:
    return [window.run(strategy, params, config).metrics for params in combinations]


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


BUILT_IN_GRIDS = {
    "sma_crossover": (SmaCrossover(), {"fast": [2, 5, 10, 20, 50], "slow": [3, 30, 50, 200]}),
    "mean_reversion": (
        MeanReversion(),
        {"window": [2, 10, 20, 60], "num_std": [1.0, 2.0], "exit_std": [-0.5, 0.0, 0.5]},
    ),
    "momentum": (
        Momentum(),
        {
            "lookback": [1, 5, 20],
            "entry_pct": [2.0, 10.0],
            "exit_pct": [-5.0, 0.0],
            "breakout": [False, True],
        },
    ),
    "close_above_band": (CloseAboveBand(), {"window": [1, 7, 30], "band": [0.0, 0.02]}),
}


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return normalize_ohlcv(sample_daily_btc())


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("start", [None, "2017-01-01"])
@pytest.mark.parametrize("name", list(BUILT_IN_GRIDS))
def test_evaluate_fast_when_daily_btc_grid_matches_one_by_one_backtests(
    btc: pd.DataFrame, config_name: str, start: str | None, name: str
) -> None:
    config = CONFIGS[config_name]
    strategy, axes = BUILT_IN_GRIDS[name]
    window = TradingWindow.of(btc, start=None if start is None else pd.Timestamp(start, tz="UTC"))
    combinations = _grid(strategy, **axes)
    if start is not None:
        assert window.first > 0
    _assert_identical(
        evaluate_fast(window, strategy, combinations, config),
        _one_by_one(window, combinations, config, strategy),
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
        (SignalsOnly(), {}, BacktestConfig()),
    ],
    ids=["short", "risk limits", "a subclass overriding signals alone"],
)
def test_evaluate_fast_when_unsupported_returns_none(
    btc: pd.DataFrame, strategy: Any, params: dict[str, object], config: BacktestConfig
) -> None:
    window = TradingWindow.of(btc)
    combinations = [strategy.resolve_params(params)]
    assert evaluate_fast(window, strategy, combinations, config) is None


def test_evaluate_fast_when_a_subclass_keeps_the_signals_keeps_the_hook(
    btc: pd.DataFrame,
) -> None:
    strategy = type("MySma", (SmaCrossover,), {"name": "my_sma"})()
    combinations = _combinations([5, 10], [30, 60])
    window = TradingWindow.of(btc)
    _assert_identical(
        evaluate_fast(window, strategy, combinations, BacktestConfig()),
        _one_by_one(window, combinations, BacktestConfig(), strategy),
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("keys", np.zeros((1, 3), dtype=np.int64), "keys of shape (1, 3)"),
        ("keys", np.zeros((1, 2)), "keys of shape (1, 2) (float64)"),
        ("values", np.zeros(1), "values of shape (1,)"),
        ("kernel", _close_above_band_grid_nb, "a kernel of CPUDispatcher, expected a cfunc"),
    ],
)
def test_evaluate_fast_when_the_hook_breaks_its_contract_names_it(
    btc: pd.DataFrame, field: str, value: np.ndarray, message: str
) -> None:
    class Broken(CloseAboveBand):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)  # the hook applies to its own signals()

        def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals:
            good = super().grid_signals(combinations)
            return GridSignals(**{**good.__dict__, field: value})

    strategy = Broken()
    with pytest.raises(StrategyError, match=r"grid_signals\(\) returned " + re.escape(message)):
        evaluate_fast(TradingWindow.of(btc), strategy, [strategy.defaults()], BacktestConfig())


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


@st.composite
def other_grids(draw: st.DrawFn) -> tuple[Strategy, list[dict[str, Any]]]:
    """A grid of mean_reversion, momentum or the tests' own strategy, random values."""
    which = draw(st.sampled_from(["mean_reversion", "momentum", "close_above_band"]))
    if which == "mean_reversion":
        strategy: Strategy = MeanReversion()
        axes: dict[str, Sequence[Any]] = {
            "window": draw(st.lists(st.integers(2, 60), min_size=1, max_size=3, unique=True)),
            "num_std": draw(st.lists(st.sampled_from([0.1, 0.5, 1.0, 2.5]), min_size=1,
                                     max_size=2, unique=True)),
            "exit_std": draw(st.lists(st.sampled_from([-1.0, 0.0, 0.3]), min_size=1,
                                      max_size=2, unique=True)),
        }  # fmt: skip
    elif which == "momentum":
        strategy = Momentum()
        axes = {
            "lookback": draw(st.lists(st.integers(1, 40), min_size=1, max_size=3, unique=True)),
            "entry_pct": draw(st.lists(st.sampled_from([0.1, 1.0, 3.0]), min_size=1,
                                       max_size=2, unique=True)),
            "exit_pct": [draw(st.sampled_from([-2.0, 0.0]))],
            "breakout": draw(st.lists(st.booleans(), min_size=1, max_size=2, unique=True)),
        }  # fmt: skip
    else:
        strategy = CloseAboveBand()
        axes = {
            "window": draw(st.lists(st.integers(1, 60), min_size=1, max_size=3, unique=True)),
            "band": draw(st.lists(st.sampled_from([0.0, 0.005, 0.03]), min_size=1, max_size=2,
                                  unique=True)),
        }  # fmt: skip
    return strategy, _grid(strategy, **axes)


@given(
    frame=frames(),
    grid=other_grids(),
    start_fraction=st.sampled_from([0.0, 0.3, 0.9]),
    config=configs,
    sizing=st.sampled_from([("all_in", None), ("fraction", 0.4), ("fixed_cash", 3_000.0)]),
)
def test_evaluate_fast_when_other_strategies_on_random_bars_match_one_by_one_backtests(
    frame: pd.DataFrame,
    grid: tuple[Strategy, list[dict[str, Any]]],
    start_fraction: float,
    config: BacktestConfig,
    sizing: tuple[str, float | None],
) -> None:
    strategy, combinations = grid
    mode, size = sizing
    config = BacktestConfig(
        fee_rate=config.fee_rate, slippage_rate=config.slippage_rate,
        initial_cash=config.initial_cash, exits=config.exits, sizing=mode, size=size,
    )  # fmt: skip
    bars = normalize_ohlcv(frame)
    start = bars.index[int(start_fraction * (len(bars) - 1))]
    window = TradingWindow.of(bars, start=start if start_fraction else None)
    _assert_identical(
        evaluate_fast(window, strategy, combinations, config),
        _one_by_one(window, combinations, config, strategy),
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
    assert means.flags.c_contiguous
    for row, window in enumerate(windows):
        expected = rolling_mean_nb(values, window)
        assert np.array_equal(means[row], expected, equal_nan=True)
        assert means[row].tobytes() == expected.tobytes()


@given(
    windows=st.lists(st.integers(1, 120), min_size=1, max_size=5),
    length=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
)
def test_rolling_stds_nb_when_compared_with_rolling_std_nb_is_bit_identical(
    windows: list[int], length: int, seed: int
) -> None:
    values = 100.0 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.0, 0.02, length)))
    stds = rolling_stds_nb(values, np.array(windows, dtype=np.int64))
    for row, window in enumerate(windows):
        assert stds[row].tobytes() == rolling_std_nb(values, window).tobytes()


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
