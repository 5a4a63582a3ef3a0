"""The strategy contract: what it forgives (Series, lists, 0/1, no warm-up) and what it names."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketbot import BacktestingEngine
from marketbot.core.errors import ConfigError, StrategyError
from marketbot.strategies.base import Signals, Strategy
from tests.support.frames import random_walk_frame

BARS = 6
Output = Callable[[pd.DataFrame], object]


class OnlySignals(Strategy):
    """Breaks out of a 10-bar channel: nothing but ``signals``, no warm-up declared."""

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        close = frame["close"]
        return Signals(
            entries_long=close > close.shift(1).rolling(10).max(),  # type: ignore[arg-type]
            exits_long=close < close.shift(1).rolling(10).min(),  # type: ignore[arg-type]
        )


class Returns(Strategy):
    """Returns whatever ``output(frame)`` gives: one test strategy for every bad output."""

    name = "returns"

    def __init__(self, output: Output) -> None:
        self.output = output

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        return self.output(frame)  # type: ignore[return-value]


def frame_of(bars: int = BARS) -> pd.DataFrame:
    return random_walk_frame(bars, seed=3, freq="1D")


ENTRY_AT_2 = np.array([False, False, True, False, False, False])
NO_EXITS = np.zeros(BARS, dtype=bool)


def entering(**outputs: object) -> Output:
    """Signals with one long entry at bar 2 and the given optional outputs."""
    return lambda frame: Signals(ENTRY_AT_2, NO_EXITS, **outputs)  # type: ignore[arg-type]


def test_strategy_when_only_signals_defined_runs_and_trades() -> None:
    frame = random_walk_frame(400, seed=11, freq="1D", volatility=0.03)
    result = BacktestingEngine().run_backtest(OnlySignals, data=frame)
    assert result.metrics["num_trades"] > 0
    # The first possible entry is bar 10, the first with a full channel behind it.
    first_entry = result.trades["entry_time"].min()
    assert first_entry > frame.index[10]


def test_warmup_bars_when_not_declared_is_zero() -> None:
    assert OnlySignals().warmup_bars({}) == 0
    assert OnlySignals().compute_warmup({}) == 0


def test_compute_signals_when_series_lists_and_numbers_given_gives_numpy_of_kernel_dtypes() -> None:
    def output(frame: pd.DataFrame) -> Signals:
        return Signals(
            entries_long=pd.Series(ENTRY_AT_2, index=frame.index),  # type: ignore[arg-type]
            exits_long=[0, 0, 0, 1, 0, 0],  # type: ignore[arg-type]
            entries_short=np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0]),
            exits_short=None,
            size_fraction=[np.nan, np.nan, 0.25, -4.0, np.nan, np.nan],  # type: ignore[arg-type]
            tag=[np.nan, 0.0, 1.0, 7.5, np.nan, np.nan],  # type: ignore[arg-type]
            tag_names=["first", "second"],  # type: ignore[arg-type]
            rank=np.array([np.nan, 2.0, 3.0, np.inf, 0.0, 0.0]),
        )

    signals = Returns(output).compute_signals(frame_of(), {})
    assert signals.entries_long.dtype == np.bool_
    assert np.flatnonzero(signals.entries_long).tolist() == [2]
    assert np.flatnonzero(signals.exits_long).tolist() == [3]
    assert signals.entries_short is not None and signals.entries_short.dtype == np.bool_
    assert signals.exits_short is None
    # -4 at bar 3 and tag 7.5 there are never read: no entry fires on bar 3.
    assert signals.size_fraction is not None and signals.size_fraction[2] == 0.25
    assert signals.tag is not None and signals.tag.tolist() == [-1, 0, 1, -1, -1, -1]
    assert signals.tag_names == ("first", "second")
    assert signals.rank is not None and signals.rank.dtype == np.float64


def test_compute_signals_when_size_fraction_is_nan_on_an_entry_accepts_it() -> None:
    size = np.full(BARS, np.nan)
    signals = Returns(entering(size_fraction=size)).compute_signals(frame_of(), {})
    assert signals.size_fraction is not None and np.isnan(signals.size_fraction).all()


BAD_OUTPUTS: dict[str, tuple[Output, str]] = {
    "returns None": (lambda f: None, "returned None (is `return Signals(...)` missing?)"),
    "returns a tuple": (
        lambda f: (ENTRY_AT_2, NO_EXITS),
        "returned a tuple of 2 items, expected Signals(entries_long, exits_long, ...)",
    ),
    "short entries": (
        lambda f: Signals(ENTRY_AT_2[:5], NO_EXITS),
        "returned entries_long of length 5, expected 6 (one per bar)",
    ),
    "a column frame": (
        lambda f: Signals(f[["close"]] > 0, NO_EXITS),  # type: ignore[arg-type]
        "returned entries_long of shape (6, 1), expected (6,) (one value per bar)",
    ),
    "a scalar": (
        lambda f: Signals(True, NO_EXITS),  # type: ignore[arg-type]
        "returned entries_long as a bool (True), expected an array of 6 values (one per bar)",
    ),
    "NaN in float entries": (
        lambda f: Signals(np.array([0.0, np.nan, 1.0, 0.0, np.nan, 0.0]), NO_EXITS),
        "entries_long holding nan at bar 1 (2020-01-02T00:00:00+00:00), and at 1 more bar; "
        "expected True/False or 0/1 numbers",
    ),
    "2 in int exits": (
        lambda f: Signals(ENTRY_AT_2, np.array([0, 0, 0, 2, 0, 0])),
        "exits_long holding 2 at bar 3 (2020-01-04T00:00:00+00:00); expected True/False",
    ),
    "None in an object array": (
        lambda f: Signals(np.array([True, None, False, True, False, False]), NO_EXITS),
        "entries_long holding None at bar 1",
    ),
    "NA in a nullable Series": (
        lambda f: Signals(
            pd.Series([True, None, False, True, False, False], dtype="boolean"),  # type: ignore[arg-type]
            NO_EXITS,
        ),
        "entries_long holding <NA> at bar 1",
    ),
    "strings": (
        lambda f: Signals(np.array(["buy"] * BARS), NO_EXITS),
        "returned entries_long holding 'buy' at bar 0 (2020-01-01T00:00:00+00:00), and at 5 "
        "more bars; expected True/False or 0/1 numbers",
    ),
    "negative size on an entry": (
        entering(size_fraction=np.full(BARS, -0.5)),
        "size_fraction holding -0.5 at bar 2 (2020-01-03T00:00:00+00:00), where an entry "
        "fires; expected a fraction of equity from 0 to 1, or NaN for the run's sizing",
    ),
    "size above 1 on a short entry": (
        lambda f: Signals(
            NO_EXITS, NO_EXITS, entries_short=ENTRY_AT_2, size_fraction=np.full(BARS, 1.5)
        ),
        "size_fraction holding 1.5 at bar 2",
    ),
    "infinite size": (entering(size_fraction=np.full(BARS, np.inf)), "holding inf at bar 2"),
    "infinite rank": (
        entering(rank=np.full(BARS, -np.inf)),
        "rank holding -inf at bar 2 (2020-01-03T00:00:00+00:00), where an entry fires; "
        "expected a finite number, or NaN for symbol order",
    ),
    "fractional tag": (entering(tag=np.full(BARS, 0.5)), "tag holding 0.5 at bar 2"),
    "tag names a string": (
        entering(tag=np.zeros(BARS, dtype=int), tag_names="breakout"),
        "returned tag_names as a str, expected a tuple of names",
    ),
}


@pytest.mark.parametrize("case", BAD_OUTPUTS, ids=list(BAD_OUTPUTS))
def test_compute_signals_when_output_breaks_the_contract_names_output_bar_and_rule(
    case: str,
) -> None:
    output, message = BAD_OUTPUTS[case]
    with pytest.raises(StrategyError, match=re.escape(message)) as raised:
        Returns(output).compute_signals(frame_of(), {})
    text = str(raised.value)
    assert text.startswith("returns: signals() ")
    assert "\n" not in text


def test_compute_signals_when_pandas_raises_points_at_the_strategy_line() -> None:
    class MissingColumn(Strategy):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            wrong = frame["closing_price"]  # raises KeyError inside pandas
            return Signals(wrong > 0, wrong < 0)  # type: ignore[arg-type]

    line = MissingColumn.signals.__code__.co_firstlineno + 1
    with pytest.raises(StrategyError) as raised:
        MissingColumn().compute_signals(frame_of(), {})
    assert str(raised.value) == (
        "MissingColumn: signals() raised KeyError: 'closing_price' "
        f"(test_strategy_contract.py, line {line})"
    )


def test_compute_signals_when_strategy_raises_config_error_passes_it_unchanged() -> None:
    class Picky(Strategy):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            raise ConfigError("picky: needs at least 100 bars")

    with pytest.raises(ConfigError, match=r"^picky: needs at least 100 bars$"):
        Picky().compute_signals(frame_of(), {})


@pytest.mark.parametrize(
    ("answer", "shown"),
    [(-1, "an int (-1)"), (2.5, "a float (2.5)"), (None, "None"), (True, "a bool (True)")],
)
def test_compute_warmup_when_not_a_count_of_bars_says_what_it_returned(
    answer: object, shown: str
) -> None:
    class OddWarmup(OnlySignals):
        def warmup_bars(self, params: Mapping[str, Any]) -> int:
            return answer  # type: ignore[return-value]

    expected = f"OddWarmup: warmup_bars() returned {shown}, expected a whole number of bars >= 0"
    with pytest.raises(StrategyError, match=f"^{re.escape(expected)}$"):
        OddWarmup().compute_warmup({})


def test_compute_warmup_when_a_whole_float_accepts_it() -> None:
    class FloatWarmup(OnlySignals):
        def warmup_bars(self, params: Mapping[str, Any]) -> int:
            return 30.0  # type: ignore[return-value]

    assert FloatWarmup().compute_warmup({}) == 30


def test_resolve_params_when_check_params_crashes_raises_strategy_error() -> None:
    class Fragile(OnlySignals):
        def check_params(self, params: Mapping[str, Any]) -> None:
            params["missing"]

    with pytest.raises(StrategyError, match=r"^Fragile: check_params\(\) raised KeyError"):
        Fragile().resolve_params()
