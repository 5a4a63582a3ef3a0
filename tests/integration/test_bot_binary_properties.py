"""A property: the paper bot on random binary books makes the binary backtest's trades.

Random markets (1 to 3, a few events each, prices on a 0.05 lattice, empty, thin, crossed and
locked books, every kind of payout) and a strategy whose entries and exits are random but
causal (a row's flags never change when later rows arrive) are run through the bot's loop
(``BinaryRunner`` on a real SQLite file) and through ``run_backtest``: the same legs, times,
exit reasons, prices, sizes, P&L and fees, whatever the sizing, fee, cash, stop or max hold.
The backtest is the judge: the bot shares only its account functions, not its scheduler.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.backtest.engine import BacktestingEngine
from marketbot.bot.binary_plan import BinaryPlan
from marketbot.bot.binary_runner import BinaryRunner
from marketbot.store import Database
from marketbot.store.bot import BotRecordRepository
from marketbot.strategies.base import Parameter
from marketbot.strategies.binary import BinarySignals, BinaryStrategy
from tests.support.binary_books import START, Quote, binary_markets

PRICES = [round(0.05 * k, 2) for k in range(21)]  # 0.00 .. 1.00
SIZES = [0.0, 40.0, 500.0, 5000.0]


class RandomFlags(BinaryStrategy):
    """Entries and exits drawn from ``seed``: row i's flags depend on the seed and i only."""

    name: ClassVar[str] = "random_flags"
    parameters: ClassVar[tuple[Parameter, ...]] = (Parameter("seed", 0, low=0),)

    def signals(  # type: ignore[override]  # a book in, BinarySignals out
        self, book: pd.DataFrame, params: Mapping[str, Any]
    ) -> BinarySignals:
        draws = np.random.default_rng(int(params["seed"])).random((len(book), 4))
        entries = draws[:, :2] < 0.3  # a third of the rows enter
        exits = draws[:, 2:] < 0.2
        return BinarySignals(entries, exits)


@st.composite
def quotes(draw: st.DrawFn) -> list[Quote]:
    seconds = sorted(draw(st.sets(st.integers(0, 590), min_size=1, max_size=8)))
    found = []
    for second in seconds:
        for outcome in draw(st.sampled_from([(0, 1), (0,), (1,)])):
            bid = draw(st.none() | st.sampled_from(PRICES))
            ask = draw(st.none() | st.sampled_from(PRICES))
            found.append(
                Quote(second, outcome, bid, None if bid is None else draw(st.sampled_from(SIZES)),
                      ask, None if ask is None else draw(st.sampled_from(SIZES)))
            )  # fmt: skip
    return found


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[BinaryMarkets, BinaryConfig, int]:
    count = draw(st.integers(1, 3))
    books: dict[str, Sequence[Quote]] = {f"m{k}": draw(quotes()) for k in range(count)}
    payouts = {slug: draw(st.sampled_from([(1.0, 0.0), (0.0, 1.0), (0.5, 0.5), None]))
               for slug in books}  # fmt: skip
    sizing = draw(st.sampled_from(["shares", "fixed_cash", "fraction"]))
    size = {"shares": 300.0, "fixed_cash": 200.0, "fraction": 0.4}[sizing]
    config = BinaryConfig(
        fee_rate=draw(st.sampled_from([0.0, 0.07])),
        initial_cash=draw(st.sampled_from([250.0, 10_000.0])),
        sizing=sizing, size=size,  # type: ignore[arg-type]
        stop_loss=draw(st.none() | st.just(0.1)),
        max_hold_seconds=draw(st.sampled_from([0, 120])),
    )  # fmt: skip
    return binary_markets(books, payouts=payouts), config, draw(st.integers(0, 10_000))


@pytest.fixture(scope="module")
def bot_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, Path]]:
    folder = tmp_path_factory.mktemp("binary_property")
    with Database(f"sqlite:///{folder / 'marketbot.db'}") as database:
        database.migrate()
        yield database, folder / "var"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenarios())
def test_bot_when_books_and_signals_are_random_makes_the_backtests_trades(
    bot_home: tuple[Database, Path], scenario: tuple[BinaryMarkets, BinaryConfig, int]
) -> None:
    markets, config, seed = scenario
    database, data_dir = bot_home
    strategy, params = RandomFlags(), {"seed": seed}
    day_end = (START + pd.Timedelta(days=1)).to_pydatetime()
    plan = BinaryPlan(strategy, params, markets, config, START.to_pydatetime(), day_end)
    summary = BinaryRunner(database, plan, data_dir, fresh=True).run()
    mine = sorted(BotRecordRepository(database).trades(summary.run.id),
                  key=lambda t: (t.exit_time, t.entry_time, t.symbol, t.entry_tag))  # fmt: skip
    expected = BacktestingEngine().run_backtest(strategy, data=markets, params=params,
                                                config=config).trades  # fmt: skip
    theirs = sorted(
        expected.to_dict("records"),
        key=lambda t: (t["exit_time"], t["entry_time"], t["symbol"], t["outcome"]),
    )
    assert [(t.symbol, t.entry_tag, t.entry_time, t.exit_time, t.exit_reason) for t in mine] == [
        (t["symbol"], t["outcome"], t["entry_time"].to_pydatetime(),
         t["exit_time"].to_pydatetime(), t["exit_reason"]) for t in theirs
    ]  # fmt: skip
    for got, want in zip(mine, theirs, strict=True):
        for name in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(getattr(got, name), want[name], rel_tol=1e-9, abs_tol=1e-9)
