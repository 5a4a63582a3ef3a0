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
    with PaperExchange(
        folder / f"{name}.db", PaperSettings(config), clock=clock
    ) as exchange:
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
