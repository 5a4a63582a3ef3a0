"""The paper exchange's ledger: committed per event, resumed when reopened, safe from SIGKILL.

The kills happen in a child process (``python -c``) replaying daily BTC on a real disk; the
test process then reopens the ledger, checks that its books agree with its fills, resumes
the replay and compares every fill with an uninterrupted replay: none lost, none doubled.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from marketbot.backtest.config import BacktestConfig, ExitRules
from marketbot.backtest.signals import prepare_signals
from marketbot.core.clock import ManualClock
from marketbot.core.errors import ConfigError, ExchangeError
from marketbot.execution import (
    OrderSide,
    OrderStatus,
    OrderType,
    PaperExchange,
    PaperSettings,
    paper_ledger_path,
)
from marketbot.sources.csv_file import read_ohlcv_csv
from marketbot.strategies.loader import builtin_strategies
from tests.support.frames import SAMPLE_DIR
from tests.support.paper_driver import (
    SYMBOL,
    T0,
    Bars,
    PaperDriver,
    Venue,
    bar,
    entered,
    flat_bar,
)

ROWS = 700
EXITS = ExitRules(stop_loss=0.04, trailing_stop=0.06, take_profit=0.2)
CONFIG = BacktestConfig(exits=EXITS, sizing="fraction", size=0.8)

REPLAY = """
    import sys
    from pathlib import Path
    from marketbot.backtest.config import BacktestConfig, ExitRules
    from marketbot.backtest.signals import prepare_signals
    from marketbot.core.clock import ManualClock
    from marketbot.execution import PaperExchange, PaperSettings
    from marketbot.sources.csv_file import read_ohlcv_csv
    from marketbot.strategies.loader import builtin_strategies
    from tests.support.paper_driver import Bars, PaperDriver

    frame = read_ohlcv_csv({csv!r}).iloc[:{rows}]
    config = BacktestConfig(exits=ExitRules(stop_loss=0.04, trailing_stop=0.06, take_profit=0.2),
                            sizing="fraction", size=0.8)
    strategy = builtin_strategies()["sma_crossover"]()
    signals = prepare_signals(strategy, frame, strategy.resolve_params({{"fast": 10, "slow": 50}}),
                              config).kernel
    bars = Bars(*(frame[c].to_numpy() for c in ("open", "high", "low", "close")),
                frame.index.asi8)
    clock = ManualClock(bars.time(0))
    exchange = PaperExchange(Path({ledger!r}), PaperSettings(config), clock=clock)
    driver = PaperDriver(exchange, clock, config.kernel_settings(allow_short=False))
    driver.replay(bars, signals, after_bar=lambda bar: print("bar", bar, flush=True))
    print("done", flush=True)
"""


def replay_inputs() -> tuple[Bars, object]:
    frame = read_ohlcv_csv(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv").iloc[:ROWS]
    strategy = builtin_strategies()["sma_crossover"]()
    params = strategy.resolve_params({"fast": 10, "slow": 50})
    signals = prepare_signals(strategy, frame, params, CONFIG).kernel
    columns = (frame[name].to_numpy() for name in ("open", "high", "low", "close"))
    return Bars(*columns, frame.index.asi8), signals


def replay_to_the_end(ledger: Path) -> PaperExchange:
    bars, signals = replay_inputs()
    clock = ManualClock(bars.time(0))
    exchange = PaperExchange(ledger, PaperSettings(CONFIG), clock=clock)
    PaperDriver(exchange, clock, CONFIG.kernel_settings(allow_short=False)).replay(
        bars,
        signals,  # type: ignore[arg-type]
    )
    return exchange


@pytest.fixture(scope="module")
def uninterrupted() -> Iterator[PaperExchange]:
    with tempfile.TemporaryDirectory() as folder:
        exchange = replay_to_the_end(Path(folder) / "ledger.db")
        yield exchange
        exchange.close()


def fill_rows(exchange: PaperExchange) -> list[tuple[object, ...]]:
    return [
        (t.client_order_id, t.side, t.amount, t.price, t.fee, t.timestamp)
        for t in exchange.fetch_my_trades()
    ]


def assert_books_agree_with_fills(exchange: PaperExchange) -> None:
    """Cash, the position and each order's filled amount are what the fills add up to."""
    trades = exchange.fetch_my_trades()
    assert len({t.id for t in trades}) == len(trades)
    cash, units = CONFIG.initial_cash, 0.0
    for trade in trades:
        fee = trade.fee.cost if trade.fee is not None else 0.0
        sign = 1.0 if trade.side is OrderSide.BUY else -1.0
        cash -= sign * trade.amount * trade.price + fee
        units += sign * trade.amount
    assert math.isclose(exchange.quote_cash(), cash, rel_tol=1e-9, abs_tol=1e-6)
    position = exchange.open_position("bitcoin")
    assert math.isclose(position.units if position else 0.0, units, abs_tol=1e-9)
    orders = exchange.fetch_open_orders() + exchange.fetch_closed_orders()
    for order in orders:
        assert math.isclose(sum(t.amount for t in order.trades), order.filled, rel_tol=1e-12)
    carriers = [o for o in exchange.fetch_open_orders() if o.client_order_id.startswith("mb-")]
    protect = position.protect_client_order_id if position else None
    assert (protect in {o.client_order_id for o in carriers}) == (position is not None)


def run_until_killed(ledger: Path, kill_after_bar: int) -> int:
    code = REPLAY.format(
        csv=str(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"), rows=ROWS, ledger=str(ledger)
    )
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        last = -1
        for line in child.stdout:
            if line.startswith("bar"):
                last = int(line.split()[1])
            if last >= kill_after_bar or line.startswith("done"):
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(timeout=60)
        assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
        return last
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after_bar", [3, 150, 420])
def test_ledger_when_a_replay_is_sigkilled_resumes_without_losing_or_doubling_a_fill(
    tmp_path: Path, uninterrupted: PaperExchange, kill_after_bar: int
) -> None:
    ledger = paper_ledger_path(tmp_path)

    last_seen = run_until_killed(ledger, kill_after_bar)

    resumed = PaperExchange(ledger, PaperSettings(CONFIG), clock=ManualClock(T0))
    processed = len(resumed.fetch_ohlcv("bitcoin", "1d"))
    assert last_seen + 1 <= processed <= ROWS  # every bar reported was committed
    assert_books_agree_with_fills(resumed)
    resumed.close()

    finished = replay_to_the_end(ledger)
    assert fill_rows(finished) == fill_rows(uninterrupted)
    assert finished.quote_cash() == uninterrupted.quote_cash()
    assert_books_agree_with_fills(finished)
    finished.close()


# -- reopening -------------------------------------------------------------------------------


def test_ledger_when_reopened_resumes_balances_open_orders_and_the_bracket(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    entered(venue)
    pending = venue.exchange.create_order(
        SYMBOL, OrderType.LIMIT, OrderSide.BUY, 1.0, 50.0, client_order_id="lb"
    )
    before = (
        venue.exchange.fetch_balance().assets,
        venue.exchange.fetch_open_orders(),
        venue.exchange.open_position(SYMBOL),
        venue.exchange.quote_cash(),
    )
    venue.exchange.close()

    reopened = PaperExchange(paper_ledger_path(tmp_path), venue.settings, clock=venue.clock)

    after = (
        reopened.fetch_balance().assets,
        reopened.fetch_open_orders(),
        reopened.open_position(SYMBOL),
        reopened.quote_cash(),
    )
    assert after == before
    assert [o.id for o in after[1]] == ["2", pending.id]
    reopened.process_bar(SYMBOL, bar(2, 100, 100, 90, 95))
    carrier = reopened.fetch_order_by_client_id("entry-1-protect")
    assert carrier is not None and carrier.reason == "stop_loss"
    assert reopened.create_order(
        SYMBOL, OrderType.MARKET, OrderSide.BUY, cost=10.0, client_order_id="next"
    ).id == str(int(pending.id) + 1)


def test_ledger_when_made_with_other_settings_is_refused_naming_both(tmp_path: Path) -> None:
    venue = Venue(tmp_path, fee=0.002)
    venue.exchange.close()
    other = PaperSettings(BacktestConfig(fee_rate=0.001), quote="USDT")

    with pytest.raises(ConfigError) as caught:
        PaperExchange(paper_ledger_path(tmp_path), other, clock=venue.clock)

    message = str(caught.value)
    assert str(paper_ledger_path(tmp_path)) in message
    assert "config.fee_rate: 0.002 in the ledger, 0.001 now" in message


def test_ledger_when_written_commits_each_event_before_the_method_returns(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path)
    path = paper_ledger_path(tmp_path)
    venue.run(flat_bar(0))
    venue.buy(1_000.0)

    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        rows = reader.execute("SELECT client_order_id, status, priority FROM paper_orders")
        assert rows.fetchall() == [("entry-1", "open", 5)]
        venue.run(flat_bar(1))
        fills = reader.execute("SELECT client_order_id, bar_index FROM paper_fills").fetchall()
        assert fills == [("entry-1", 1)]
        (total,) = reader.execute("SELECT total FROM paper_balances WHERE asset = 'USDT'")
        assert total[0] == venue.exchange.quote_cash()
        indexes = reader.execute("PRAGMA index_list(paper_orders)").fetchall()
    client_id_index = [row for row in indexes if row[1] == "paper_orders_client_order_id"]
    assert client_id_index and client_id_index[0][2] == 0  # not unique: only among open orders


def test_ledger_when_its_order_is_canceled_records_the_cancel_and_the_reason(
    tmp_path: Path,
) -> None:
    venue = Venue(tmp_path)
    placed = venue.buy(1_000.0)
    venue.exchange.cancel_order(placed.id)
    venue.exchange.close()

    reopened = PaperExchange(paper_ledger_path(tmp_path), venue.settings, clock=venue.clock)

    order = reopened.fetch_order(placed.id)
    assert order.status is OrderStatus.CANCELED and order.reason == "canceled by request"


def test_ledger_when_the_file_is_not_a_paper_ledger_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE prices (close REAL)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    settings = PaperSettings(BacktestConfig())

    with pytest.raises(ConfigError, match="is not a paper ledger"):
        PaperExchange(other, settings, clock=ManualClock(T0))
    with pytest.raises(ConfigError, match="file is not a database"):
        PaperExchange(garbage, settings, clock=ManualClock(T0))


def test_process_bar_when_the_write_fails_leaves_the_books_as_the_ledger_has_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = Venue(tmp_path, exits=ExitRules(stop_loss=0.05))
    entered(venue)
    before = (venue.exchange.quote_cash(), venue.exchange.open_position(SYMBOL))

    def disk_full(changes: object) -> None:
        raise ExchangeError("paper ledger: database or disk is full")

    monkeypatch.setattr(venue.exchange._ledger, "write", disk_full)
    with pytest.raises(ExchangeError, match="disk is full"):
        venue.exchange.process_bar(SYMBOL, bar(2, 50, 50, 40, 45))  # the stop would fire

    assert venue.exchange.fetch_ohlcv(SYMBOL, "1d")[-1].close == 100.0
    assert (venue.exchange.quote_cash(), venue.exchange.open_position(SYMBOL)) == before
    assert venue.exchange.fetch_order_by_client_id("entry-1-protect").is_open  # type: ignore[union-attr]
