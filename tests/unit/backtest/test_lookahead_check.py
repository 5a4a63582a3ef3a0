"""The lookahead checker: silent on causal strategies, exact about peeking ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketbot.backtest.lookahead import check_lookahead
from marketbot.cli.strategies import lookahead_lines
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.loader import builtin_strategies
from tests.support.frames import random_walk_frame


class PeeksOneBar(Strategy):
    """Buys when tomorrow's close is higher: the classic shift(-1) bug."""

    name = "peeks_one_bar"

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        close = frame["close"]
        entries = (close.shift(-1) > close).to_numpy()
        exits = (close.shift(-1) < close).to_numpy()
        return Signals(entries, exits)


class NormalisesByFullMax(Strategy):
    """Scales by the maximum of the whole series: a subtler leak of the future."""

    name = "full_max"

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


def test_lookahead_lines_when_more_than_50_signals_moved_shows_50_and_counts_the_rest() -> None:
    frame = random_walk_frame(500, seed=2)
    report = check_lookahead(PeeksOneBar(), frame, {}, cuts=100)
    assert len(report.findings) > 50
    lines = lookahead_lines(report)
    assert lines[0] == report.summary()
    assert lines[1:51] == [f"  {finding.describe()}" for finding in report.findings[:50]]
    assert lines[51:] == [f"  ... and {len(report.findings) - 50} more"]


def test_lookahead_lines_when_few_signals_moved_shows_all_without_a_count() -> None:
    report = check_lookahead(PeeksOneBar(), random_walk_frame(300, seed=1), {}, cuts=10)
    lines = lookahead_lines(report)
    assert len(lines) == 1 + len(report.findings)
    assert not any("more" in line for line in lines)
