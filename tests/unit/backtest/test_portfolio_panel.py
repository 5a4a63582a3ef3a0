"""The portfolio's panel path against its per-symbol path: the same grids, runs and errors.

A built-in strategy computes a portfolio's signals in one pass over the panel
(``panel_signals``); its twin below, a subclass that overrides ``signals`` alone, is computed
symbol by symbol on each frame (``compute_signals`` + ``prepare_signals``). On random panels,
with one shared calendar or with symbols that start late, end early and miss bars, both must
give bit-identical kernel grids, and whole runs identical trades, equity and metrics. A
panel hook's bad output must be named as ``compute_signals`` names it, plus the symbol.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from marketbot import BacktestingEngine
from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.portfolio import AlignedPortfolio, align_portfolio
from marketbot.core.bar_panel import PanelBars, normalize_frames
from marketbot.core.errors import ConfigError, StrategyError
from marketbot.strategies.base import Signals, Strategy
from marketbot.strategies.builtin import MeanReversion, Momentum, SmaCrossover
from marketbot.strategies.loader import load_strategy
from marketbot.strategies.panel import PanelSignals
from tests.support.frames import random_walk_frame

MAX_BARS = 90
MAX_SYMBOLS = 4


def per_symbol_twin(strategy_class: type[Strategy]) -> type[Strategy]:
    """The same strategy without its panel hook: a subclass that overrides ``signals`` alone."""

    class PerSymbol(strategy_class):  # type: ignore[misc, valid-type]
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)  # type: ignore[no-any-return]

    return PerSymbol


def with_warmup(strategy_class: type[Strategy], extra_bars: int) -> type[Strategy]:
    """The strategy with ``extra_bars`` more warm-up: its panel hook still applies."""

    class Warmer(strategy_class):  # type: ignore[misc, valid-type]
        def warmup_bars(self, params: Mapping[str, Any]) -> int:
            return int(super().warmup_bars(params)) + extra_bars

    return Warmer


@st.composite
def panels(draw: st.DrawFn) -> dict[str, pd.DataFrame]:
    """1-4 hourly symbols: on one calendar, or each with its own start, end and holes."""
    total = draw(st.integers(2, MAX_BARS) if draw(st.booleans()) else st.just(MAX_BARS))
    shared = draw(st.booleans())
    frames = {}
    for symbol in range(draw(st.integers(1, MAX_SYMBOLS))):
        seed = draw(st.integers(0, 10_000))
        frame = random_walk_frame(total, seed=seed, start="2024-01-01", volatility=0.02)
        if not shared:
            start = draw(st.integers(0, total - 1))
            stop = draw(st.integers(start + 1, total))
            keep = np.array(draw(st.lists(st.booleans(), min_size=total, max_size=total)))
            keep[start] = True  # at least one bar
            frame = frame.iloc[start:stop][keep[start:stop]]
        frames[f"S{symbol}"] = frame
    return normalize_frames(frames)


@st.composite
def built_ins(draw: st.DrawFn) -> tuple[type[Strategy], dict[str, Any]]:
    """A built-in strategy, with more warm-up than its own at times (the masking matters
    then: its own warm-up only covers bars whose signals are False anyway), and parameters
    that make signals on short panels."""
    kind = draw(st.sampled_from([SmaCrossover, Momentum, MeanReversion]))
    extra_bars = draw(st.sampled_from([0, 0, 5, 30]))
    strategy_class = with_warmup(kind, extra_bars) if extra_bars else kind
    if kind is SmaCrossover:
        fast = draw(st.integers(2, 6))
        slow = draw(st.integers(fast + 1, 12))
        return strategy_class, {"fast": fast, "slow": slow, "short": draw(st.booleans())}
    if kind is Momentum:
        entry = draw(st.floats(-1.0, 3.0))
        return strategy_class, {
            "lookback": draw(st.integers(1, 8)),
            "entry_pct": entry,
            "exit_pct": entry - draw(st.floats(0.1, 3.0)),
            "breakout": draw(st.booleans()),
        }
    return strategy_class, {
        "window": draw(st.integers(2, 10)),
        "num_std": draw(st.floats(0.1, 2.0)),
        "exit_std": draw(st.floats(-1.0, 1.0)),
    }


def assert_same_alignment(panel: AlignedPortfolio, per_symbol: AlignedPortfolio) -> None:
    assert panel.index.equals(per_symbol.index) and panel.symbols == per_symbol.symbols
    for name in ("open", "high", "low", "close", "priority"):
        np.testing.assert_array_equal(getattr(panel, name), getattr(per_symbol, name))
    for name, grid in panel.signals._asdict().items():
        expected = getattr(per_symbol.signals, name)
        assert grid.dtype == expected.dtype and grid.flags.c_contiguous, name
        np.testing.assert_array_equal(grid, expected, err_msg=name)
    assert (panel.allow_short, panel.tag_names) == (per_symbol.allow_short, per_symbol.tag_names)


@given(panels(), built_ins(), st.sampled_from([None, True, False]))
def test_align_portfolio_when_built_in_has_panel_hook_gives_the_per_symbol_grids(
    frames: dict[str, pd.DataFrame],
    strategy: tuple[type[Strategy], dict[str, Any]],
    allow_short: bool | None,
) -> None:
    strategy_class, overrides = strategy
    built_in, twin = strategy_class(), per_symbol_twin(strategy_class)()
    params = built_in.resolve_params(overrides)
    config = BacktestConfig(allow_short=allow_short)
    bars = PanelBars.of(frames)
    assert built_in.compute_panel_signals(bars, params) is not None  # the panel path
    assert twin.compute_panel_signals(bars, params) is None  # the per-symbol path
    assert_same_alignment(
        align_portfolio(built_in, frames, params, config),
        align_portfolio(twin, frames, params, config),
    )


@given(panels(), built_ins(), st.integers(0, MAX_BARS // 2), st.booleans())
def test_run_backtest_when_built_in_has_panel_hook_equals_the_per_symbol_run(
    frames: dict[str, pd.DataFrame],
    strategy: tuple[type[Strategy], dict[str, Any]],
    start_bar: int,
    stops: bool,
) -> None:
    strategy_class, params = strategy
    first_time = min(frame.index[0] for frame in frames.values())
    # Bars before the start warm the indicators up; trading starts there.
    start = first_time + pd.Timedelta(hours=start_bar)
    if start > max(frame.index[-1] for frame in frames.values()):
        start = first_time
    options: dict[str, Any] = {"stop_loss": 0.03, "take_profit": 0.05} if stops else {}
    engine = BacktestingEngine()
    panel = engine.run_backtest(
        strategy_class, start, data=frames, params=params, max_open_positions=2, **options
    )
    per_symbol = engine.run_backtest(
        per_symbol_twin(strategy_class), start, data=frames, params=params,
        max_open_positions=2, **options,
    )  # fmt: skip
    event(f"trades: {'some' if len(panel.trades) else 'none'}")
    event(f"calendar: {'shared' if PanelBars.of(frames).shared_calendar else 'own'}")
    pd.testing.assert_frame_equal(panel.trades, per_symbol.trades, check_exact=True)
    pd.testing.assert_series_equal(panel.equity_curve, per_symbol.equity_curve, check_exact=True)
    pd.testing.assert_frame_equal(panel.per_symbol, per_symbol.per_symbol, check_exact=True)
    assert_same_metrics(panel.metrics, per_symbol.metrics)


def assert_same_metrics(ours: Mapping[str, float], theirs: Mapping[str, float]) -> None:
    assert ours.keys() == theirs.keys()
    for key, value in ours.items():
        both_nan = math.isnan(value) and math.isnan(theirs[key])
        assert value == theirs[key] or both_nan, key


DOCS = Path(__file__).resolve().parents[3] / "docs"


def test_panel_hook_when_written_as_docs_strategies_shows_equals_the_per_symbol_run(
    tmp_path: Path,
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "strategies.md").read_text("utf-8"), re.S)
    (example,) = [block for block in blocks if "def panel_signals" in block]
    path = tmp_path / "my_strategy.py"
    path.write_text(example, encoding="utf-8")
    strategy_class = type(load_strategy(str(path)))
    frames = {
        "full": random_walk_frame(400, seed=1, volatility=0.02),
        "late": random_walk_frame(300, seed=2, volatility=0.02, start="2020-01-05"),
        "holey": random_walk_frame(400, seed=3, volatility=0.02).iloc[::3],
    }
    engine = BacktestingEngine()
    panel = engine.run_backtest(strategy_class, data=frames, params={"window": 12})
    per_symbol = engine.run_backtest(
        per_symbol_twin(strategy_class), data=frames, params={"window": 12}
    )
    assert len(panel.trades) > 0
    pd.testing.assert_frame_equal(panel.trades, per_symbol.trades, check_exact=True)
    pd.testing.assert_series_equal(panel.equity_curve, per_symbol.equity_curve, check_exact=True)


def test_portfolio_notes_when_calendar_is_shared_name_each_symbols_gaps() -> None:
    hourly = random_walk_frame(50, seed=4)
    holey = {name: hourly.drop(hourly.index[10:13]) for name in ("a", "b")}
    notes = BacktestingEngine().run_backtest("sma_crossover", data=holey).notes
    assert [note.split(":")[0] for note in notes[:2]] == ["a", "b"]
    assert notes[0].split(": ", 1)[1] == notes[1].split(": ", 1)[1]
    assert "3 bar(s) missing" in notes[0]


def test_panel_hook_when_subclass_overrides_signals_alone_is_not_used() -> None:
    class Wider(SmaCrossover):
        def warmup_bars(self, params: Mapping[str, Any]) -> int:
            return 2 * int(params["slow"])  # the hook still describes this class's signals

    bars = PanelBars.of(normalize_frames({"a": random_walk_frame(60, seed=1)}))
    params = SmaCrossover().resolve_params({"fast": 3, "slow": 8})
    assert Wider().compute_panel_signals(bars, params) is not None
    assert per_symbol_twin(SmaCrossover)().compute_panel_signals(bars, params) is None


# -- a user's panel hook -------------------------------------------------------------------


class Scripted(Strategy):
    """Gives prepared outputs: one symbol's from ``signals``, all of them from the hook."""

    name = "scripted"

    def __init__(self, panel: object, columns: dict[str, dict[str, Any]] | None = None) -> None:
        self.panel = panel
        self.columns = columns or {}
        self.symbol = ""

    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        return Signals(**self.columns[self.symbol])

    def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
        return self.panel  # type: ignore[return-value]


BAD_VALUES = {
    "entries_long": [2.0, np.nan, -1.0, 0.5],
    "exits_long": [2.0, np.nan],
    "entries_short": [3.0],
    "size_fraction": [-0.5, 1.5, np.inf],
    "rank": [np.inf, -np.inf],
    "tag": [0.5, -2.5],
}


@st.composite
def bad_outputs(draw: st.DrawFn) -> tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]]:
    """Frames of different lengths and float outputs with bad values at random bars.

    The padding below a shorter symbol's bars holds values the contract forbids: they must
    be ignored.
    """
    lengths = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3))
    frames = normalize_frames(
        {f"S{s}": random_walk_frame(length, seed=s) for s, length in enumerate(lengths)}
    )
    shape = (max(lengths), len(lengths))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    outputs = {
        "entries_long": rng.integers(0, 2, shape).astype(float),
        "exits_long": rng.integers(0, 2, shape).astype(float),
        "entries_short": rng.integers(0, 2, shape).astype(float),
        "exits_short": np.zeros(shape),
        "size_fraction": np.where(rng.random(shape) < 0.3, np.nan, rng.random(shape)),
        "rank": rng.normal(size=shape),
        "tag": rng.integers(-1, 2, shape).astype(float),
    }
    valid = np.arange(shape[0])[:, None] < np.array(lengths)[None, :]
    for array in outputs.values():
        array[~valid] = 7.5  # not a flag, size or tag: padding, never read
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(sorted(BAD_VALUES)))
        column = draw(st.integers(0, len(lengths) - 1))
        row = draw(st.integers(0, lengths[column] - 1))
        outputs[field][row, column] = draw(st.sampled_from(BAD_VALUES[field]))
        if field in ("size_fraction", "rank", "tag"):
            outputs["entries_long"][row, column] = 1.0  # read where an entry fires
    return frames, outputs


def per_symbol_error(frames: dict[str, pd.DataFrame], outputs: dict[str, np.ndarray]) -> str:
    """compute_signals' message for the first symbol whose column breaks the contract."""
    columns = {
        symbol: {name: array[: len(frame), s] for name, array in outputs.items()}
        for s, (symbol, frame) in enumerate(frames.items())
    }
    strategy = Scripted(None, columns)
    for symbol, frame in frames.items():
        strategy.symbol = symbol
        try:
            strategy.compute_signals(frame, {})
        except StrategyError as error:
            # As compute_signals names it, from panel_signals(), with the symbol after the bar.
            text = str(error).replace(": signals() returned", ": panel_signals() returned", 1)
            return re.sub(r"(at bar \d+ \([^)]*\))", rf"\1 of {symbol}", text, count=1)
    return ""


@given(bad_outputs())
def test_panel_hook_when_output_breaks_the_contract_is_named_as_compute_signals_names_it(
    case: tuple[dict[str, pd.DataFrame], dict[str, np.ndarray]],
) -> None:
    frames, outputs = case
    expected = per_symbol_error(frames, outputs)
    event(f"refused: {bool(expected)}")
    bars = PanelBars.of(frames)
    strategy = Scripted(PanelSignals(tag_names=("a", "b"), **outputs))  # type: ignore[arg-type]
    if not expected:
        checked = strategy.compute_panel_signals(bars, {})
        assert checked is not None and checked.entries_long.dtype == np.bool_
        return
    with pytest.raises(StrategyError) as raised:
        strategy.compute_panel_signals(bars, {})
    assert str(raised.value) == expected


def panel_bars(*lengths: int) -> PanelBars:
    return PanelBars.of(
        normalize_frames({f"S{s}": random_walk_frame(n, seed=s) for s, n in enumerate(lengths)})
    )


FLAGS = np.zeros((4, 2), dtype=bool)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (
            Signals(FLAGS[:, 0], FLAGS[:, 0]),
            "scripted: panel_signals() returned a Signals, expected PanelSignals(entries_long, ",
        ),
        (
            PanelSignals(FLAGS[:3], FLAGS),
            "scripted: panel_signals() returned entries_long of shape (3, 2), expected (4, 2) "
            "(bars x symbols)",
        ),
        (
            PanelSignals(FLAGS, FLAGS, size_fraction=np.zeros(4)),
            "scripted: panel_signals() returned size_fraction of shape (4,), expected (4, 2)",
        ),
        (
            PanelSignals(FLAGS, np.array([["sell"] * 2] * 4)),
            "scripted: panel_signals() returned exits_long holding 'sell' at bar 0 "
            "(2020-01-01T00:00:00+00:00) of S0, and at 3 more bars; expected True/False",
        ),
        (
            PanelSignals(FLAGS, FLAGS, tag=np.zeros((4, 2)), tag_names="ab"),  # type: ignore[arg-type]
            "scripted: panel_signals() returned tag_names as a str, expected a tuple of names",
        ),
    ],
)
def test_panel_hook_when_output_has_wrong_type_or_shape_names_it(
    output: object, message: str
) -> None:
    with pytest.raises(StrategyError) as raised:
        Scripted(output).compute_panel_signals(panel_bars(4, 4), {})
    assert str(raised.value).startswith(message)


def test_panel_hook_when_it_raises_names_the_line_and_config_errors_pass() -> None:
    class Crashing(Scripted):  # the hook is used with the signals of its own class
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)

        def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
            level = 1 / 0
            return PanelSignals(bars.close > level, bars.close < level)

    line = Crashing.panel_signals.__code__.co_firstlineno + 1
    with pytest.raises(StrategyError) as raised:
        Crashing(None).compute_panel_signals(panel_bars(3), {})
    assert str(raised.value) == (
        "scripted: panel_signals() raised ZeroDivisionError: division by zero "
        f"(test_portfolio_panel.py, line {line})"
    )

    class Picky(Crashing):
        def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
            return super().signals(frame, params)

        def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals:
            raise ConfigError("picky: no")

    with pytest.raises(ConfigError, match=r"^picky: no$"):
        Picky(None).compute_panel_signals(panel_bars(3), {})


def test_panel_hook_when_it_returns_none_falls_back_to_signals_per_symbol() -> None:
    frames = normalize_frames({"a": random_walk_frame(30, seed=1), "b": random_walk_frame(30)})
    entries = np.zeros(30, dtype=bool)
    entries[5] = True
    columns = {"": {"entries_long": entries, "exits_long": np.zeros(30, dtype=bool)}}
    aligned = align_portfolio(Scripted(None, columns), frames, {}, BacktestConfig())
    assert np.flatnonzero(aligned.signals.entries_long.any(axis=1)).tolist() == [5]


def test_panel_hook_when_outputs_are_numbers_converts_them_as_compute_signals() -> None:
    bars = panel_bars(3, 2)
    entries = np.array([[1, 0], [0, 1], [1, 9]])  # 9 sits in S1's padding: never read
    output = PanelSignals(
        entries,
        np.zeros((3, 2), dtype=np.int8),
        size_fraction=np.array([[0.5, np.nan], [2.0, 1.0], [np.nan, -1.0]]),
        tag=np.array([[0.0, np.nan], [7.5, 1.0], [1.0, 3.0]]),
        tag_names=["x", "y"],  # type: ignore[arg-type]
    )
    checked = Scripted(output).compute_panel_signals(bars, {})
    assert checked is not None
    assert checked.entries_long.tolist() == [[True, False], [False, True], [True, True]]
    assert checked.exits_long.dtype == np.bool_
    assert checked.size_fraction is not None and checked.size_fraction[0, 0] == 0.5
    assert checked.tag is not None and checked.tag[:, 0].tolist() == [0, -1, 1]
    assert checked.tag_names == ("x", "y")
