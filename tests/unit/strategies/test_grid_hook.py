"""The optional grid hook: who declares one, when it applies, and what it hands the grid.

That the grid's results equal one-by-one backtests is tests/unit/optimize/test_fast_grid.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketbot.core.errors import StrategyError
from marketbot.strategies import indicators, indicators_nb
from marketbot.strategies.base import GridSignals, Signals
from marketbot.strategies.builtin import MeanReversion, Momentum, SmaCrossover


@pytest.mark.parametrize(
    ("strategy", "slots", "numbers"),
    [(SmaCrossover(), 2, 0), (MeanReversion(), 3, 2), (Momentum(), 3, 2)],
    ids=["sma_crossover", "mean_reversion", "momentum"],
)
def test_grid_signals_when_a_built_in_is_asked_gives_a_plan_per_combination(
    strategy: Any, slots: int, numbers: int
) -> None:
    combinations = [strategy.defaults(), strategy.defaults()]

    plan = strategy.compute_grid_signals(combinations)

    assert isinstance(plan, GridSignals)
    assert plan.keys.shape == (2, slots) and plan.keys.dtype == np.int64
    assert plan.values.shape == (2, numbers) and plan.values.dtype == np.float64
    assert len(plan.indicators) == slots
    # One cfunc per kernel function, made once per process.
    assert plan.kernel is strategy.compute_grid_signals(combinations).kernel


def test_grid_signals_when_momentum_has_no_breakout_reads_neither_level_nor_close() -> None:
    strategy = Momentum()
    plan = strategy.compute_grid_signals(
        [strategy.resolve_params({"lookback": 7}), strategy.resolve_params({"breakout": True})]
    )
    assert plan is not None
    assert plan.keys.tolist() == [[7, -1, -1], [20, 20, 0]]


def test_grid_signals_when_a_combination_trades_short_declines() -> None:
    strategy = SmaCrossover()
    combinations = [strategy.resolve_params({}), strategy.resolve_params({"short": True})]
    assert strategy.compute_grid_signals(combinations) is None


def test_grid_signals_when_a_subclass_overrides_signals_alone_does_not_apply() -> None:
    class Mine(SmaCrossover):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)

    assert Mine().compute_grid_signals([Mine().defaults()]) is None


def test_grid_signals_when_the_hook_raises_names_it() -> None:
    class Broken(SmaCrossover):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)

        def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals:
            raise KeyError("fast")

    with pytest.raises(StrategyError, match=r"grid_signals\(\) raised KeyError"):
        Broken().compute_grid_signals([Broken().defaults()])


def test_indicators_when_imported_re_exports_the_compiled_ones() -> None:
    for name in ("rolling_mean_nb", "rolling_means_nb", "rolling_std_nb", "rate_of_change_nb"):
        assert getattr(indicators, name) is getattr(indicators_nb, name)
    assert set(indicators.__all__) <= set(dir(indicators))
