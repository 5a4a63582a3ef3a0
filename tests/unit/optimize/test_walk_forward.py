"""Walk-forward validation: windows never let the future choose the parameters."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketbot import BacktestingEngine
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.recommendation import recommend
from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
from marketbot.optimize.walk_forward import plan_windows, walk_forward
from tests.support.frames import random_walk_frame

GRID = {"fast": [3, 5, 8], "slow": [20, 40]}
HOUR = pd.Timedelta(hours=1)


class RecordingOptimizer(StrategyOptimizer):
    """A real optimiser that remembers the frame and start date of every call."""

    def __init__(self) -> None:
        super().__init__(jobs=1)
        self.calls: list[tuple[pd.DatetimeIndex, pd.Timestamp]] = []

    def optimize_strategy(self, *args: Any, **kwargs: Any) -> OptimizationResult:
        self.calls.append((pd.DatetimeIndex(kwargs["data"].index), kwargs["start_date"]))
        return super().optimize_strategy(*args, **kwargs)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return random_walk_frame(900, seed=3)


# --- the window plan --------------------------------------------------------------------


@st.composite
def plans(draw: st.DrawFn) -> tuple[pd.DatetimeIndex, Any, Any, bool]:
    bars = draw(st.integers(2, 300))
    index = pd.date_range("2021-01-01", periods=bars * 2, freq="1h", tz="UTC")
    gap_share = draw(st.sampled_from([0.0, 0.1, 0.5]))
    kept = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random(bars * 2) >= gap_share
    index = index[kept | (np.arange(bars * 2) < 2)]  # gaps in time, at least 2 bars
    anchored = draw(st.booleans())
    if draw(st.booleans()):
        return index, draw(st.integers(1, 120)), draw(st.integers(1, 60)), anchored
    is_hours, oos_hours = draw(st.integers(1, 200)), draw(st.integers(1, 100))
    as_text = draw(st.booleans())
    in_sample = f"{is_hours}h" if as_text else timedelta(hours=is_hours)
    out_of_sample = f"{oos_hours}h" if as_text else pd.Timedelta(hours=oos_hours)
    return index, in_sample, out_of_sample, anchored


@settings(max_examples=150, deadline=None)
@given(plans())
def test_plan_windows_when_any_lengths_out_of_sample_never_overlaps_in_sample(
    case: tuple[pd.DatetimeIndex, Any, Any, bool],
) -> None:
    index, in_sample, out_of_sample, anchored = case
    try:
        windows = plan_windows(index, in_sample, out_of_sample, anchored=anchored)
    except ConfigError as exc:
        assert "not one complete window fits" in str(exc)
        return
    by_rows = isinstance(in_sample, int)
    is_length = in_sample if by_rows else pd.Timedelta(in_sample)
    oos_length = out_of_sample if by_rows else pd.Timedelta(out_of_sample)
    previous_oos_end = None
    for number, window in enumerate(windows, start=1):
        assert window.number == number
        assert 0 <= window.in_sample_first < window.out_of_sample_first < window.out_of_sample_end
        assert window.out_of_sample_end <= len(index)
        in_times = index[window.in_sample_first : window.out_of_sample_first]
        oos_times = index[window.out_of_sample_first : window.out_of_sample_end]
        assert in_times.max() < oos_times.min()  # every IS bar is before every OOS bar
        if previous_oos_end is not None:  # OOS windows never overlap one another
            assert window.out_of_sample_first >= previous_oos_end
        previous_oos_end = window.out_of_sample_end
        if anchored:
            assert window.in_sample_first == 0
        if by_rows:
            assert window.out_of_sample_end - window.out_of_sample_first == oos_length
            if not anchored:
                assert window.out_of_sample_first - window.in_sample_first == is_length
        else:  # the windows are the bars inside [s, s + IS) and [s + IS, s + IS + OOS)
            step = (oos_times.min() - index[0] - is_length) // oos_length
            oos_start = index[0] + is_length + step * oos_length
            is_start = index[0] if anchored else oos_start - is_length
            inside_oos = (index >= oos_start) & (index < oos_start + oos_length)
            assert oos_times.equals(index[inside_oos])
            assert in_times.equals(index[(index >= is_start) & (index < oos_start)])
    if by_rows:
        assert len(windows) == (len(index) - is_length) // oos_length


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_plan_windows_when_durations_are_given_cuts_on_bar_times_at_any_resolution(
    unit: str,
) -> None:
    index = pd.date_range("2021-01-01", periods=100, freq="1h", tz="UTC").as_unit(unit)
    rolling = plan_windows(index, "10h", timedelta(hours=5))
    assert len(rolling) == 18  # (100 - 10) // 5
    first, last = rolling[0], rolling[-1]
    assert (first.in_sample_first, first.out_of_sample_first, first.out_of_sample_end) == (
        0,
        10,
        15,
    )
    assert (last.in_sample_first, last.out_of_sample_first, last.out_of_sample_end) == (85, 95, 100)
    anchored = plan_windows(index, "10h", "5h", anchored=True)
    assert [w.in_sample_first for w in anchored] == [0] * 18
    assert [w.out_of_sample_first for w in anchored] == list(range(10, 100, 5))


@pytest.mark.parametrize(
    ("in_sample", "out_of_sample", "message"),
    [
        (0, 10, r"in_sample=0: must be a positive number of bars"),
        (100, -5, r"out_of_sample=-5: must be a positive number of bars"),
        ("0d", "10d", r"in_sample='0d': not a duration"),
        ("-3h", "1h", r"in_sample='-3h': not a duration"),
        (timedelta(0), "1h", r"in_sample=datetime.timedelta\(0\): must be a positive"),
        ("90 dayz", "10h", r"in_sample='90 dayz': not a duration"),
        ("90", "10h", r"in_sample='90': not a duration"),
        (True, 5, r"in_sample=True: use a positive number of bars"),
        (1.5, 5, r"in_sample=1.5: use a positive number of bars"),
        (100, "10h", r"give both as bar counts or both as durations"),
        (800, 101, r"not one complete window fits"),
        ("800h", "101h", r"not one complete window fits"),
    ],
)
def test_walk_forward_when_lengths_are_bad_raises_config_error_before_any_backtest(
    frame: pd.DataFrame, in_sample: Any, out_of_sample: Any, message: str
) -> None:
    optimizer = RecordingOptimizer()
    with pytest.raises(ConfigError, match=message):
        walk_forward(
            optimizer, "sma_crossover", GRID, data=frame,
            in_sample=in_sample, out_of_sample=out_of_sample,
        )  # fmt: skip
    assert optimizer.calls == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "alpha"}, "unknown metric 'alpha'"),
        ({"min_trades": -1}, "min_trades=-1"),
        ({"cash": 0}, "cash=0: must be positive"),
        ({"start_date": "2030-01-01"}, r"longer than the data \(0 bars\)"),
        ({"search_options": {"data": None}}, "search_options may not set data"),
        ({"data": None}, "give exactly one of data= .* or symbol="),
        ({"data": {"a": random_walk_frame(50)}}, "one series"),
    ],
)
def test_walk_forward_when_settings_are_bad_raises_config_error_before_any_backtest(
    frame: pd.DataFrame, kwargs: dict[str, Any], message: str
) -> None:
    optimizer = RecordingOptimizer()
    arguments: dict[str, Any] = {"data": frame, "in_sample": 300, "out_of_sample": 100}
    with pytest.raises(ConfigError, match=message):
        walk_forward(optimizer, "sma_crossover", GRID, **(arguments | kwargs))
    assert optimizer.calls == []


# --- the optimiser sees only the past ---------------------------------------------------


def test_walk_forward_when_optimising_a_window_passes_only_bars_before_its_out_of_sample(
    frame: pd.DataFrame,
) -> None:
    optimizer = RecordingOptimizer()
    result = walk_forward(
        optimizer, "sma_crossover", GRID, data=frame, in_sample="300h", out_of_sample="100h"
    )
    assert len(optimizer.calls) == len(result.windows) == 6
    for (seen, start), window in zip(optimizer.calls, result.windows, strict=True):
        assert seen.max() < window.out_of_sample_start
        assert seen.max() == window.in_sample_end
        assert start == window.in_sample_start
        assert window.in_sample_end - window.in_sample_start == 299 * HOUR


def test_walk_forward_when_future_bars_are_poisoned_keeps_earlier_choices(
    frame: pd.DataFrame,
) -> None:
    clean = walk_forward(
        StrategyOptimizer(jobs=1), "sma_crossover", GRID, data=frame,
        in_sample=300, out_of_sample=100,
    )  # fmt: skip
    poison_from = clean.windows[2].out_of_sample_start  # window 3's OOS and everything after
    wild = random_walk_frame(len(frame), seed=99, volatility=0.05)
    poisoned = frame.copy()
    future = frame.index >= poison_from
    poisoned.loc[future] = wild.loc[future].to_numpy()
    dirty = walk_forward(
        StrategyOptimizer(jobs=1), "sma_crossover", GRID, data=poisoned,
        in_sample=300, out_of_sample=100,
    )  # fmt: skip
    for before, after in zip(clean.windows[:3], dirty.windows[:3], strict=True):
        assert after.params == before.params
        assert after.in_sample_metrics == before.in_sample_metrics
    assert [w.out_of_sample_metrics for w in dirty.windows[:2]] == [
        w.out_of_sample_metrics for w in clean.windows[:2]
    ]
    # The poison does reach the later windows, so the check above is not vacuous.
    assert [w.in_sample_metrics for w in dirty.windows[3:]] != [
        w.in_sample_metrics for w in clean.windows[3:]
    ]


# --- stitching, metrics and the verdict -------------------------------------------------


def test_walk_forward_when_stitched_each_window_starts_from_the_previous_equity(
    frame: pd.DataFrame,
) -> None:
    result = walk_forward(
        StrategyOptimizer(jobs=1), "sma_crossover", GRID, data=frame,
        in_sample=300, out_of_sample=100, cash=5_000, fee=0.001,
    )  # fmt: skip
    equity = result.equity
    assert equity.index.is_monotonic_increasing and equity.index.is_unique
    assert len(equity) == 600 and equity.index[0] == frame.index[300]
    engine = BacktestingEngine()
    previous_end = 5_000.0
    for window in result.windows:
        segment = equity.loc[window.out_of_sample_start : window.out_of_sample_end]
        alone = engine.run_backtest(
            "sma_crossover", window.out_of_sample_start, window.out_of_sample_end,
            data=frame, params=window.params, cash=5_000, fee=0.001,
        )  # fmt: skip
        # All-in sizing: the chained curve is the stand-alone curve scaled by the equity
        # the earlier windows left.
        scaled = alone.equity_curve * (previous_end / 5_000)
        np.testing.assert_allclose(segment.to_numpy(), scaled.to_numpy(), rtol=1e-9)
        for key in ("return_pct", "sharpe", "max_drawdown_pct", "num_trades", "win_rate"):
            assert window.out_of_sample_metrics[key] == pytest.approx(alone.metrics[key])
        previous_end = float(segment.iloc[-1])
    assert result.out_of_sample_metrics["return_pct"] == pytest.approx(
        (equity.iloc[-1] / 5_000 - 1) * 100
    )
    trades_per_window = [w.out_of_sample_metrics["num_trades"] for w in result.windows]
    assert (
        result.out_of_sample_metrics["num_trades"] == sum(trades_per_window) == len(result.trades)
    )
    if len(result.trades):
        assert (result.trades["entry_time"] >= equity.index[0]).all()
        positions = result.trades["entry_bar"].to_numpy()
        assert (equity.index[positions] == pd.DatetimeIndex(result.trades["entry_time"])).all()


def test_walk_forward_when_done_recommends_on_out_of_sample_metrics(frame: pd.DataFrame) -> None:
    result = walk_forward(
        StrategyOptimizer(jobs=1), "sma_crossover", GRID, "return_pct", data=frame,
        in_sample="300h", out_of_sample="200h",
    )  # fmt: skip
    assert result.recommendation == recommend(result.out_of_sample_metrics)
    in_sample_mean = np.mean([w.in_sample_metrics["return_pct"] for w in result.windows])
    assert result.in_sample_metrics["return_pct"] == pytest.approx(in_sample_mean)
    if in_sample_mean > 0:
        expected = result.out_of_sample_metrics["return_pct"] / in_sample_mean
        assert result.efficiency == pytest.approx(expected)
    else:
        assert math.isnan(result.efficiency)
    table = result.table()
    assert list(table["window"]) == [1, 2, 3]
    assert {"fast", "slow", "in_sample_return_pct", "out_of_sample_return_pct"} <= set(table)
    json.dumps(result.to_dict(), allow_nan=False)


def test_walk_forward_when_anchored_keeps_the_in_sample_start(frame: pd.DataFrame) -> None:
    optimizer = RecordingOptimizer()
    result = walk_forward(
        optimizer, "sma_crossover", GRID, data=frame, in_sample=300, out_of_sample=200,
        anchored=True, start_date=frame.index[100],
    )  # fmt: skip
    assert [w.in_sample_start for w in result.windows] == [frame.index[100]] * 2
    assert [len(seen) for seen, _ in optimizer.calls] == [400, 600]


def test_walk_forward_when_no_combination_has_enough_trades_names_the_window(
    frame: pd.DataFrame,
) -> None:
    with pytest.raises(DataError, match=r"walk-forward window 1 \(in-sample 2020-01-01"):
        walk_forward(
            StrategyOptimizer(jobs=1), "sma_crossover", GRID, data=frame,
            in_sample=300, out_of_sample=100, min_trades=10_000,
        )  # fmt: skip
