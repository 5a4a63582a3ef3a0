"""Parity: bars replayed through the paper exchange give the backtest kernel's trades.

A tiny bot (tests/support/paper_driver.py) replays the bars and the strategy's signals
through a ``PaperExchange`` as the bot's loop does, and reads its round trips back from the
venue's fills; ``backtest.kernel.simulate`` runs on the same bars, signals and settings. They
must agree: the same entry and exit bars and exit reasons, sizes and prices to a relative
1e-9, the same account at the end, and a position still open at the end matching the
kernel's ``end_of_data`` trade. On the bundled daily BTC (sma_crossover 10/50) for every
sizing mode and exit kind, across a gap in time, and on random bars and signals, including
"lattice" paths whose prices sit exactly on the stop, target and activation levels.

Ledgers go to tmpfs (/dev/shm) when there is one: ``synchronous=FULL`` makes every bar an
fsync, the disk's cost and not the venue's logic (tests/unit/execution/test_paper_ledger.py
kills a replay on a real disk).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.kernel import KernelOutput, KernelSignals, simulate
from marketbot.backtest.signals import prepare_signals
from marketbot.core.clock import ManualClock
from marketbot.core.codes import EXIT_END_OF_DATA, EXIT_REASON_NAMES
from marketbot.execution.paper import PaperExchange, PaperSettings
from marketbot.sources.csv_file import read_ohlcv_csv
from marketbot.strategies.loader import builtin_strategies
from tests.support.frames import SAMPLE_DIR
from tests.support.paper_driver import Bars, PaperDriver, Replay

RTOL = 1e-9
DAY = 86_400
SHM = Path("/dev/shm")


@pytest.fixture
def ledger_dir(tmp_path: Path) -> Iterator[Path]:
    if SHM.is_dir():
        with tempfile.TemporaryDirectory(dir=SHM) as folder:
            yield Path(folder)
    else:
        yield tmp_path


def bars_of(frame: pd.DataFrame) -> Bars:
    return Bars(
        frame["open"].to_numpy(),
        frame["high"].to_numpy(),
        frame["low"].to_numpy(),
        frame["close"].to_numpy(),
        frame.index.asi8,
    )


@dataclass(frozen=True)
class Outcome:
    kernel: KernelOutput
    replay: Replay


def run_both(
    folder: Path, bars: Bars, signals: KernelSignals, config: BacktestConfig, name: str = "x"
) -> Outcome:
    settings = config.kernel_settings(allow_short=False)
    kernel = simulate(bars.open_, bars.high, bars.low, bars.close, bars.times_ns, signals, settings)
    clock = ManualClock(bars.time(0))
    with PaperExchange(folder / f"{name}.db", PaperSettings(config), clock=clock) as exchange:
        replay = PaperDriver(exchange, clock, settings).replay(bars, signals)
    return Outcome(kernel, replay)


def close(name: str, ours: float, theirs: float, scale: float = 0.0) -> None:
    assert math.isclose(ours, theirs, rel_tol=RTOL, abs_tol=RTOL * scale), (
        f"{name}: paper {ours!r} != kernel {theirs!r}"
    )


def assert_parity(outcome: Outcome, bars: Bars, cash: float) -> None:
    """The replay's trades, open position and account are the kernel's."""
    trades = outcome.kernel.trades
    closed = trades[trades["exit_reason"] != EXIT_END_OF_DATA]
    at_end = trades[trades["exit_reason"] == EXIT_END_OF_DATA]
    replay = outcome.replay
    assert len(replay.trades) == len(closed), (
        f"{len(replay.trades)} paper trades != {len(closed)} kernel trades"
    )
    for number, (ours, theirs) in enumerate(zip(replay.trades, closed, strict=True)):
        where = f"trade {number}"
        assert (ours.entry_bar, ours.exit_bar, ours.exit_reason, ours.tag) == (
            theirs["entry_bar"],
            theirs["exit_bar"],
            EXIT_REASON_NAMES[theirs["exit_reason"]],
            theirs["tag"],
        ), f"{where}: paper {ours} != kernel {theirs}"
        close(f"{where} size", ours.size, theirs["size"])
        close(f"{where} entry_price", ours.entry_price, theirs["entry_price"])
        close(f"{where} exit_price", ours.exit_price, theirs["exit_price"])
        close(f"{where} fees", ours.fees, theirs["fees"], cash)
        close(f"{where} pnl", ours.pnl, theirs["pnl"], cash)
    position = replay.open_position
    held_value = 0.0
    if len(at_end):
        (last,) = at_end
        assert position is not None, "the kernel ends long, the paper account flat"
        assert (position.entry_bar, position.tag) == (last["entry_bar"], last["tag"])
        close("open size", position.units, last["size"])
        close("open entry_price", position.entry_price, last["entry_price"])
        close("open entry_fee", position.entry_fee, last["fees"], cash)
        held_value = position.units * float(bars.close[-1])
    else:
        assert position is None, f"the kernel ends flat, the paper account holds {position}"
    close("equity", replay.equity, float(outcome.kernel.equity[-1]), cash)
    close("cash", replay.cash, float(outcome.kernel.equity[-1]) - held_value, cash)


# -- the bundled daily BTC -------------------------------------------------------------------

SIZINGS: dict[str, dict[str, Any]] = {
    "all_in": {},
    "fraction": {"sizing": "fraction", "size": 0.5},
    "fixed_cash": {"sizing": "fixed_cash", "size": 1000.0},
}
EXITS: dict[str, tuple[ExitRules, str | None]] = {
    "none": (ExitRules(), None),
    "stop": (ExitRules(stop_loss=0.05), "stop_loss"),
    "trailing": (ExitRules(trailing_stop=0.08), "trailing_stop"),
    "trailing_activated": (
        ExitRules(trailing_stop=0.08, trailing_activation=0.1),
        "trailing_stop",
    ),
    "target": (ExitRules(take_profit=0.1), "take_profit"),
    "max_hold": (ExitRules(max_hold_seconds=10 * DAY), "max_hold"),
    "bracket": (
        ExitRules(stop_loss=0.07, take_profit=0.25, trailing_stop=0.1, max_hold_seconds=40 * DAY),
        None,
    ),
}
STRATEGY = builtin_strategies()["sma_crossover"]()
PARAMS = STRATEGY.resolve_params({"fast": 10, "slow": 50})


@pytest.fixture(scope="module")
def btc() -> pd.DataFrame:
    return read_ohlcv_csv(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")


@pytest.mark.parametrize("exit_kind", EXITS)
@pytest.mark.parametrize("sizing", SIZINGS)
def test_paper_replay_when_btc_sma_crossover_gives_the_kernels_trades(
    btc: pd.DataFrame, ledger_dir: Path, sizing: str, exit_kind: str
) -> None:
    exits, expected_reason = EXITS[exit_kind]
    config = BacktestConfig(exits=exits, **SIZINGS[sizing])
    signals = prepare_signals(STRATEGY, btc, PARAMS, config).kernel
    bars = bars_of(btc)

    outcome = run_both(ledger_dir, bars, signals, config)

    assert len(outcome.replay.trades) >= 40
    reasons = {trip.exit_reason for trip in outcome.replay.trades}
    if expected_reason is not None:
        assert expected_reason in reasons
    if exit_kind == "bracket":
        assert {"stop_loss", "take_profit", "trailing_stop", "signal"} <= reasons
    assert_parity(outcome, bars, config.initial_cash)


def test_paper_replay_when_max_hold_falls_in_a_gap_exits_at_the_first_open_after_it(
    btc: pd.DataFrame, ledger_dir: Path
) -> None:
    # The long entered at the open of 2015-10-03 is held across ten missing days: max hold
    # (8 days) is first due at the open after the gap, 13 days after the entry.
    entry = btc.index.get_loc(pd.Timestamp("2015-10-03", tz="UTC"))
    holed = btc.drop(btc.index[entry + 3 : entry + 13])
    config = BacktestConfig(exits=ExitRules(max_hold_seconds=8 * DAY))
    signals = prepare_signals(STRATEGY, holed, PARAMS, config).kernel
    bars = bars_of(holed)

    outcome = run_both(ledger_dir, bars, signals, config)

    across = [
        trip
        for trip in outcome.replay.trades
        if trip.exit_reason == "max_hold" and trip.entry_bar == entry
    ]
    assert [bars.time(trip.exit_bar).date().isoformat() for trip in across] == ["2015-10-16"]
    assert_parity(outcome, bars, config.initial_cash)


# -- random bars and signals -----------------------------------------------------------------
#
# Per-bar values are decoded from byte strings (cheap for hundreds of bars; bytes shrink
# towards 0, "nothing happens"), as in tests/unit/backtest/test_kernel_reference.py.

MAX_BARS = 200
START_SECONDS = 1_700_000_000
_GAP_JUMPS = (-0.5, -0.3, -0.15, -0.06, 0.06, 0.15, 0.5, 1.0)
_BODY_JUMPS = (-0.4, -0.2, -0.1, 0.1, 0.2, 0.4, 0.6, 1.0)


def _move(byte: int, flat_below: int, small: float, jumps: tuple[float, ...]) -> float:
    first_jump = 256 - len(jumps)
    if byte < flat_below:
        return 0.0
    if byte >= first_jump:
        return jumps[byte - first_jump]
    return small * (2.0 * (byte - flat_below) / (first_jump - 1 - flat_below) - 1.0)


def _times(spacing_seconds: int, steps: np.ndarray) -> np.ndarray:
    seconds = START_SECONDS + spacing_seconds * np.cumsum(steps.astype(np.int64))
    return seconds * 1_000_000_000


@st.composite
def random_bars(draw: st.DrawFn, num_bars: int, spacing_seconds: int) -> Bars:
    """Random walks with gaps at the open, flat bars, jumps through any level, time gaps."""
    price = draw(st.sampled_from([100.0, 1.0, 30_000.0]))
    moves = draw(st.binary(min_size=4 * num_bars, max_size=4 * num_bars))
    rows = []
    for bar in range(num_bars):
        gap, body, upper, lower = moves[4 * bar : 4 * bar + 4]
        open_ = price * (1.0 + _move(gap, 160, 0.02, _GAP_JUMPS))
        close_ = open_ * (1.0 + _move(body, 64, 0.05, _BODY_JUMPS))
        high = max(open_, close_) * (1.0 + abs(_move(upper, 96, 0.04, (0.1, 0.2, 0.3))))
        low = min(open_, close_) * (1.0 - min(abs(_move(lower, 96, 0.04, (0.1, 0.2, 0.3))), 0.9))
        rows.append((open_, high, low, close_))
        price = close_
    step_bytes = draw(st.binary(min_size=num_bars, max_size=num_bars))
    steps = np.array([1 if byte < 200 else byte - 230 if byte > 231 else 2 for byte in step_bytes])
    columns = np.array(rows).reshape(num_bars, 4)
    return Bars(*(np.ascontiguousarray(columns[:, i]) for i in range(4)),
                _times(spacing_seconds, steps))  # fmt: skip


def level_lattice(base: float, config: BacktestConfig) -> list[float]:
    """The entry fills at ``base`` and every level the page defines from them."""
    exits = config.exits
    fills = [base * (1.0 + config.slippage_rate), base * (1.0 - config.slippage_rate)]
    rates = [exits.stop_loss, exits.take_profit, exits.trailing_activation]
    prices = {base, *fills}
    for fill in fills:
        for rate in rates:
            if rate is not None:
                prices.update((fill * (1.0 - rate), fill * (1.0 + rate)))
    if exits.trailing_stop is not None:
        for extreme in list(prices):
            prices.update(
                (extreme * (1.0 - exits.trailing_stop), extreme * (1.0 + exits.trailing_stop))
            )
    return sorted(price for price in prices if price > 0.0)


@st.composite
def lattice_bars(draw: st.DrawFn, num_bars: int, config: BacktestConfig) -> Bars:
    """Bars whose every price is an entry fill or a level: ties with ``<=`` on every rule."""
    lattice = level_lattice(draw(st.sampled_from([100.0, 1.0, 37.7])), config)
    picks = draw(st.binary(min_size=4 * num_bars, max_size=4 * num_bars))
    rows = []
    for bar in range(num_bars):
        open_, close_, high, low = (lattice[b % len(lattice)] for b in picks[4 * bar : 4 * bar + 4])
        rows.append((open_, max(open_, close_, high), min(open_, close_, low), close_))
    columns = np.array(rows).reshape(num_bars, 4)
    return Bars(*(np.ascontiguousarray(columns[:, i]) for i in range(4)),
                _times(60, np.ones(num_bars)))  # fmt: skip


@st.composite
def flags(draw: st.DrawFn, num_bars: int) -> np.ndarray:
    density = draw(st.sampled_from([0.0, 0.03, 0.5, 1.0]))
    if density in {0.0, 1.0}:
        return np.full(num_bars, density == 1.0)
    raw = draw(st.binary(min_size=num_bars, max_size=num_bars))
    return np.frombuffer(raw, dtype=np.uint8) >= round(256 * (1.0 - density))


@st.composite
def signals_of(draw: st.DrawFn, num_bars: int) -> KernelSignals:
    """Long entries and exits (half the time exits are the bars without an entry), size
    fractions (NaN, tiny, zero or up to 1) and tags."""
    entries = draw(flags(num_bars))
    exits = ~entries if draw(st.booleans()) else draw(flags(num_bars))
    fractions = np.full(num_bars, math.nan)
    if draw(st.booleans()):
        raw = np.frombuffer(draw(st.binary(min_size=num_bars, max_size=num_bars)), np.uint8)
        fractions = np.where(raw == 0, math.nan, raw / 255.0)
        fractions[raw == 1] = 1e-6
        fractions[raw == 2] = 0.0
    tags = np.frombuffer(draw(st.binary(min_size=num_bars, max_size=num_bars)), np.uint8)
    none = np.zeros(num_bars, dtype=np.bool_)
    return KernelSignals(entries, exits, none, none, fractions, tags.astype(np.int64))


def _optional(rates: st.SearchStrategy[float]) -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), rates)


_stop_rates = st.sampled_from([0.05, 0.1, 0.002]) | st.floats(0.0005, 0.3)


@st.composite
def configs(draw: st.DrawFn, spacing_seconds: int) -> BacktestConfig:
    """Every sizing mode, each exit rule on or off, costs from none to 1 %."""
    cash = draw(st.sampled_from([10_000.0, 1_000.0, 123_456.78]))
    sizing = draw(st.sampled_from(["all_in", "fraction", "fixed_cash"]))
    size = None
    if sizing == "fraction":
        size = draw(st.floats(0.01, 1.0))
    elif sizing == "fixed_cash":
        size = draw(st.floats(1.0, 2.0 * cash))
    # Whole numbers of bar spacings (and a second either side) probe max hold's ">=".
    max_hold = draw(
        st.just(0)
        | st.builds(lambda bars, nudge: bars * spacing_seconds + nudge,
                    st.integers(1, 20), st.sampled_from([0, 0, -1, 1]))
        | st.integers(1, 30 * spacing_seconds)
    )  # fmt: skip
    exits = ExitRules(
        stop_loss=draw(_optional(_stop_rates)),
        take_profit=draw(_optional(st.sampled_from([0.05, 0.1]) | st.floats(0.0005, 0.5))),
        trailing_stop=draw(_optional(_stop_rates)),
        trailing_activation=draw(_optional(st.sampled_from([0.0, 0.05]) | st.floats(0.0, 0.3))),
        max_hold_seconds=max_hold,
    )
    return BacktestConfig(
        fee_rate=draw(st.sampled_from([0.0, 0.002]) | st.floats(0.0, 0.01)),
        slippage_rate=draw(st.sampled_from([0.0, 0.001, 0.005]) | st.floats(0.0, 0.01)),
        initial_cash=cash, sizing=sizing, size=size, exits=exits,
    )  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    bars: Bars
    signals: KernelSignals
    config: BacktestConfig


_bar_counts = st.integers(2, MAX_BARS) | st.integers(MAX_BARS // 2, MAX_BARS)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    num_bars = draw(_bar_counts)
    spacing = draw(st.sampled_from([60, 3_600]))
    bars = draw(random_bars(num_bars, spacing))
    return Scenario(bars, draw(signals_of(num_bars)), draw(configs(spacing)))


@st.composite
def lattice_scenarios(draw: st.DrawFn) -> Scenario:
    num_bars = draw(_bar_counts)
    config = draw(configs(60))
    return Scenario(draw(lattice_bars(num_bars, config)), draw(signals_of(num_bars)), config)


def _check(scenario: Scenario) -> None:
    with tempfile.TemporaryDirectory(dir=SHM if SHM.is_dir() else None) as folder:
        outcome = run_both(Path(folder), scenario.bars, scenario.signals, scenario.config)
    for trip in outcome.replay.trades:
        event(f"exit: {trip.exit_reason}")
    assert_parity(outcome, scenario.bars, scenario.config.initial_cash)


@given(scenarios())
def test_paper_replay_when_random_bars_signals_and_settings_gives_the_kernels_trades(
    scenario: Scenario,
) -> None:
    _check(scenario)


@given(lattice_scenarios())
def test_paper_replay_when_prices_sit_exactly_on_levels_gives_the_kernels_trades(
    scenario: Scenario,
) -> None:
    _check(scenario)
