"""The lookahead checker: silent on causal strategies, exact about peeking ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketbot.backtest.lookahead import check_lookahead
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.loader import builtin_strategies
from tests.support.frames import random_walk_frame


class PeeksOneBar(Strategy):
    """Buys when tomorrow's close is higher: the classic shift(-1) bug."""

    name = "peeks_one_bar"

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        return 0

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        close = frame["close"]
        entries = (close.shift(-1) > close).to_numpy()
        exits = (close.shift(-1) < close).to_numpy()
        return Signals(entries, exits)


class NormalisesByFullMax(Strategy):
    """Scales by the maximum of the whole series: a subtler leak of the future."""

    name = "full_max"

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        return 0

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        scaled = frame["close"].to_numpy() / frame["close"].max()
        return Signals(scaled > 0.9, scaled < 0.5)


@pytest.mark.parametrize("name", list(builtin_strategies()))
def test_check_lookahead_when_builtin_strategy_finds_nothing(name: str) -> None:
    strategy = builtin_strategies()[name]()
    params = strategy.resolve_params({"short": True} if name == "sma_crossover" else None)
    report = check_lookahead(strategy, random_walk_frame(1_500, seed=7), params, cuts=30)
    assert report.passed, [f.describe() for f in report.findings[:5]]
    assert report.cuts_checked == 30


def test_check_lookahead_when_strategy_uses_next_close_reports_that_bar() -> None:
    frame = random_walk_frame(300, seed=1)
    report = check_lookahead(PeeksOneBar(), frame, {}, cuts=10)
    assert not report.passed
    # At each cut t only bar t can move (it is the only one that sees bar t + 1).
    cut_bars = {frame.index.get_loc(f.cut_time) for f in report.findings}
    moved_bars = {frame.index.get_loc(f.bar_time) for f in report.findings}
    assert moved_bars == cut_bars
    assert "LOOKAHEAD BIAS" in report.summary()


def test_check_lookahead_when_strategy_uses_whole_series_max_is_caught() -> None:
    frame = random_walk_frame(600, seed=4)
    # Make the global maximum lie late, so truncating the future changes the scale.
    frame.loc[frame.index[-5:], ["open", "high", "low", "close"]] *= 3.0
    report = check_lookahead(NormalisesByFullMax(), frame, {}, cuts=10)
    assert not report.passed
    assert {f.how for f in report.findings} <= {"truncated", "altered"}


def test_check_lookahead_when_few_bars_checks_each_possible_cut() -> None:
    frame = random_walk_frame(40, seed=9)
    strategy = builtin_strategies()["sma_crossover"]()
    params = strategy.resolve_params({"fast": 3, "slow": 10})
    report = check_lookahead(strategy, frame, params, cuts=1_000)
    # Cuts run from the warm-up (bar 10) to the second-to-last bar (38).
    assert report.cuts_checked == 29
    assert report.passed
    assert np.isfinite(report.bars)
