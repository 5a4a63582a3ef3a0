"""Several strategies in one paper run: ``run --config FILE --replay`` with ``[[strategies]]``.

Through the real command line on real SQLite files, over the bundled daily BTC and ETH:

- parity: with fixed-cash entries, cash enough that the sleeves' caps never bind and limits
  too wide to matter, each sleeve's trades are the backtest's of its strategy alone (times,
  reasons; prices, sizes, P&L and fees to 1e-9); ``status`` and the state file show every
  sleeve;
- a kill -9 in the middle (and a fault point at the next order sent), each followed by a
  restart: the same trades, no client order id twice;
- a binding cap: an all-in entry is cut to the sleeve's half of the equity, named in
  ``risk_events``;
- the weekly rebalance, with a flat series as a third sleeve: equal thirds while no sleeve
  has closed a trade, less for ETH after its loss, then the Rebalancer's 40 % maximum for
  BTC after its win;
- the one-line errors, with nothing stored.

The window is 2019-01-01..2019-07-01 (181 daily bars), sma_crossover 5/20 on both: BTC closes
4 trades (all trailing stops, all winners), ETH 5 (3 stop losses).
"""

from __future__ import annotations

import json
import math
import signal
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.bot_process import (
    BotDir,
    cli_in_process,
    duplicates,
    stop,
    wait_until,
)
from tests.support.frames import SAMPLE_DIR

START, END = "2019-01-01", "2019-07-01"
SLEEVES = (
    '[[strategies]]\nname = "sma_crossover"\nsymbol = "bitcoin"\ntimeframe = "1d"\n'
    "params = { fast = 5, slow = 20 }\n\n"
    '[[strategies]]\nname = "sma_crossover"\nsymbol = "ethereum"\ntimeframe = "1d"\n'
    "params = { fast = 5, slow = 20 }\n"
)
WIDE_LIMITS = (
    "[risk.limits]\nmax_position_size_usd = 1000000\nmax_total_exposure_usd = 1000000\n"
    "max_daily_loss_usd = 1000000\nmax_drawdown_pct = 100\n\n"
)
EXITS = "stop_loss = 0.05\ntrailing_stop = 0.1\ntake_profit = false\nmax_hold = false\n"
FIXED_CASH = 'cash = 100000\nsizing = "fixed_cash"\nsize = 1000\n'
PARITY_CONFIG = f"{FIXED_CASH}{EXITS}\n{WIDE_LIMITS}{SLEEVES}"
ONE_TABLE = PARITY_CONFIG.rsplit("\n[[strategies]]", maxsplit=1)[0]
TRADE_KEYS = ("entry_time", "exit_time", "exit_reason")
NUMBER_KEYS = ("entry_price", "exit_price", "size", "pnl", "fees")


@dataclass
class SleeveBot(BotDir):
    """A bot directory whose run takes its strategies from the file (no --strategy)."""

    config: str = PARITY_CONFIG
    start: str = START
    end: str = END

    @classmethod
    def with_database(cls, root: Path, database: Path, **kwargs: Any) -> SleeveBot:
        """A fresh data directory in ``root`` holding a copy of ``database``."""
        bot = super().with_database(root, database, **kwargs)
        assert isinstance(bot, SleeveBot)
        return bot

    def run_args(self, *extra: str) -> list[str]:
        """``run --config FILE --replay START END``: the file names the strategies."""
        return ["run", "--config", str(self.config_file), "--replay", self.start, self.end,
                *extra]  # fmt: skip

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        """Rows of the bot's database."""
        connection = sqlite3.connect(self.database)
        try:
            return list(connection.execute(query))
        finally:
            connection.close()

    def risk_events_of(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        """(date, details) of the risk events of one kind, in the order they were stored."""
        rows = self.rows(f"SELECT at, details FROM risk_events WHERE kind = '{kind}' ORDER BY id")
        return [(str(at)[:10], json.loads(details)) for at, details in rows]


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding the bundled daily BTC and ETH, and a flat series (imported once)."""
    folder = tmp_path_factory.mktemp("sleeves-store")
    data_dir = folder / "var"
    flat = folder / "flat.csv"
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{day}T00:00:00Z,100,100,100,100,1" for day in _days("2018-01-01", "2019-07-31")]
    flat.write_text("\n".join(lines) + "\n")
    for csv, symbol in (
        (SAMPLE_DIR / "btc_usd_1d_bitstamp.csv", "bitcoin"),
        (SAMPLE_DIR / "eth_usd_1d_bitstamp.csv", "ethereum"),
        (flat, "flatcoin"),
    ):
        code, _, err = cli_in_process(data_dir, ["data", "import", str(csv), "--symbol", symbol])
        assert code == 0, err
    return data_dir / "marketbot.db"


@pytest.fixture(scope="module")
def uninterrupted(
    stored: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SleeveBot, dict[str, Any]]:
    """The parity configuration run once to the end, in this process; its status."""
    bot = SleeveBot.with_database(tmp_path_factory.mktemp("sleeves-whole"), stored)
    code, out, err = bot.cli(*bot.run_args())
    assert code == 0, err
    assert "done: run 1 (sma_crossover@bitcoin, sma_crossover@ethereum; 1d)" in out
    return bot, bot.status()


def test_sleeves_when_caps_never_bind_give_each_strategys_backtest(
    uninterrupted: tuple[SleeveBot, dict[str, Any]],
) -> None:
    bot, status = uninterrupted
    counts = {}
    for symbol in ("bitcoin", "ethereum"):
        code, out, err = bot.cli(
            "backtest", "--strategy", "sma_crossover", "--symbol", symbol, "--timeframe", "1d",
            "--param", "fast=5", "--param", "slow=20", "--config", str(bot.config_file),
            "--start", START, "--end", END, "--json",
        )  # fmt: skip
        assert code == 0, err
        expected = [t for t in json.loads(out)["trades"] if t["exit_reason"] != "end_of_data"]
        mine = [t for t in status["trades"] if t["symbol"] == symbol]
        assert [[t[k] for k in TRADE_KEYS] for t in mine] == [
            [t[k] for k in TRADE_KEYS] for t in expected
        ]
        for got, want in zip(mine, expected, strict=True):
            for key in NUMBER_KEYS:
                assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-9), key
        counts[symbol] = len(mine)
    assert counts == {"bitcoin": 4, "ethereum": 5}
    assert {t["strategy"] for t in status["trades"]} == {"sma_crossover"}
    assert status["pnl_by_strategy"]["sma_crossover"] == pytest.approx(
        sum(t["pnl"] for t in status["trades"]), rel=1e-12
    )
    assert sum(status["pnl_by_day"].values()) == pytest.approx(
        status["pnl_by_strategy"]["sma_crossover"], rel=1e-12
    )
    assert status["strategy"] == "sma_crossover"
    assert status["symbol"] == "bitcoin,ethereum"
    code, _, err = bot.cli("drift")
    assert code == 1
    assert "trades several strategies (sma_crossover on bitcoin,ethereum)" in err
    assert status["allocations"] == {
        "sma_crossover@bitcoin": pytest.approx(0.4),
        "sma_crossover@ethereum": pytest.approx(0.4),
    }
    code, out, err = bot.cli("status")
    assert code == 0, err
    assert "run 1: sma_crossover on bitcoin,ethereum (1d)" in out
    assert "allocations: sma_crossover@bitcoin 40.0 %, sma_crossover@ethereum 40.0 %" in out
    assert not bot.risk_events_of("sleeve_cap")
    state = json.loads((bot.data_dir / "state" / "bot_state.json").read_text())
    assert state["active_strategies"] == ["sma_crossover"]
    assert state["last_bar_time"].startswith("2019-07-01")


def test_sleeves_when_killed_mid_run_and_restarted_give_the_same_trades(
    stored: Path, tmp_path: Path, uninterrupted: tuple[SleeveBot, dict[str, Any]]
) -> None:
    _, whole = uninterrupted
    bot = SleeveBot.with_database(tmp_path, stored)
    child = bot.spawn()
    try:
        wait_until(lambda: (bot.last_bar_time() or "") >= "2019-03-20", child)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=60) == -signal.SIGKILL
    finally:
        stop(child)
    assert "2019-03-20" <= (bot.last_bar_time() or "") < "2019-07-01"
    faulted = {"MARKETBOT_TESTING": "1", "MARKETBOT_FAULT_POINT": "after_send:1"}
    assert bot.run(env=faulted) == -signal.SIGKILL, bot.last_log()
    assert bot.run() == 0, bot.last_log()
    status = bot.status()
    assert duplicates(bot.ledger_client_ids()) == []
    assert duplicates(bot.bot_client_ids()) == []
    for key in ("trades", "open_positions", "cash", "equity", "pnl_by_strategy"):
        assert status[key] == whole[key], key


def test_sleeves_when_all_in_entry_exceeds_the_sleeve_capital_cut_it_to_half(
    stored: Path, tmp_path: Path
) -> None:
    config = f"cash = 10000\n{EXITS}\n{WIDE_LIMITS}{SLEEVES}"
    bot = SleeveBot.with_database(tmp_path, stored, config=config, end="2019-02-20")
    code, _, err = bot.cli(*bot.run_args())
    assert code == 0, err
    caps = bot.risk_events_of("sleeve_cap")
    assert [(at, d["sleeve"]) for at, d in caps] == [
        ("2019-02-10", "sma_crossover@bitcoin"),
        ("2019-02-10", "sma_crossover@ethereum"),
    ]
    first, second = caps[0][1], caps[1][1]
    # Both decide at the same close on the same flat account (the cash of a pending buy is
    # the account's until it fills); the weekly rebalance of the Monday before has both
    # sleeves at the Rebalancer's 40 % maximum.
    for cap in (first, second):
        assert cap["weight"] == pytest.approx(0.4)
        assert cap["equity"] == pytest.approx(10_000.0)
        assert cap["wanted"] == pytest.approx(10_000.0)  # all in: the whole cash
        assert cap["allowed"] == pytest.approx(4_000.0, rel=1e-12)
    entries = bot.rows("SELECT symbol, cost FROM orders WHERE intent = 'entry' ORDER BY id")
    assert entries == [
        ("bitcoin", pytest.approx(first["allowed"], rel=1e-12)),
        ("ethereum", pytest.approx(second["allowed"], rel=1e-12)),
    ]


def test_sleeves_when_a_sleeve_wins_the_weekly_rebalance_gives_it_the_most(
    stored: Path, tmp_path: Path
) -> None:
    flat = '\n[[strategies]]\nname = "sma_crossover"\nsymbol = "flatcoin"\ntimeframe = "1d"\n'
    config = f"{FIXED_CASH}{EXITS}\n{WIDE_LIMITS}"
    bot = SleeveBot.with_database(
        tmp_path, stored, config=config + SLEEVES + flat, end="2019-03-05"
    )
    code, _, err = bot.cli(*bot.run_args())
    assert code == 0, err
    trades = bot.rows("SELECT symbol, exit_time, pnl FROM trades ORDER BY exit_time, id")
    # ETH's first trade (2019-02-12) loses, BTC's (2019-02-24, a Sunday) wins.
    assert [(s, str(t)[:10], pnl > 0) for s, t, pnl in trades] == [
        ("ethereum", "2019-02-12", False),
        ("bitcoin", "2019-02-24", True),
    ]
    weights = {at: d["weights"] for at, d in bot.risk_events_of("rebalance")}
    mondays = ["2019-01-07", "2019-01-14", "2019-01-21", "2019-01-28", "2019-02-04",
               "2019-02-11", "2019-02-18", "2019-02-25", "2019-03-04"]  # fmt: skip
    assert list(weights) == mondays
    keys = ("sma_crossover@bitcoin", "sma_crossover@ethereum", "sma_crossover@flatcoin")
    third = pytest.approx(1 / 3, rel=1e-12)
    for monday in mondays[:6]:  # nothing closed yet: equal scores, equal shares
        assert [weights[monday][k] for k in keys] == [third, third, third]
    # After ETH's loss alone (docs/sizing_and_rebalancing.md's score: a component every sleeve
    # shares normalises to 1): 1.0 for the two that have not traded, 0.4 + 0.3 (Sharpe, win
    # rate) for ETH, last in P&L; weights in proportion: 10/27, 7/27, 10/27.
    assert [weights["2019-02-18"][k] for k in keys] == [
        pytest.approx(10 / 27, rel=1e-12),
        pytest.approx(7 / 27, rel=1e-12),
        pytest.approx(10 / 27, rel=1e-12),
    ]
    # After BTC's win: BTC tops win rate and P&L (score 1.0: held at the 40 % maximum); ETH
    # keeps the shared Sharpe (0.4); the flat sleeve adds P&L 0 normalised between ETH's loss
    # and BTC's win. The other 60 % in proportion to those scores.
    eth_pnl, btc_pnl = trades[0][2], trades[1][2]
    flat_score = 0.4 + 0.3 * (0.0 - eth_pnl) / (btc_pnl - eth_pnl)
    rest = 0.6 / (flat_score + 0.4)
    assert [weights["2019-02-25"][k] for k in keys] == [
        pytest.approx(0.4, rel=1e-12),
        pytest.approx(0.4 * rest, rel=1e-9),
        pytest.approx(flat_score * rest, rel=1e-9),
    ]
    assert weights["2019-03-04"] == weights["2019-02-25"]


def test_sleeves_when_commands_name_a_symbol_route_them_to_its_sleeve(
    stored: Path, tmp_path: Path
) -> None:
    bot = SleeveBot.with_database(tmp_path, stored, end="2019-02-14")
    code, _, err = bot.cli(*bot.run_args())
    assert code == 0, err
    assert [p["symbol"] for p in bot.status()["open_positions"]] == ["bitcoin"]
    for command in (["force-exit", "bitcoin"], ["force-entry", "ethereum"],
                    ["force-exit", "dogecoin"], ["force-entry", "dogecoin"]):  # fmt: skip
        code, _, err = bot.cli("bot", *command, "--reason", "test")
        assert code == 0, err
    bot.end = "2019-02-16"  # acted on at the next bar, filled at its open (2019-02-15)
    code, _, err = bot.cli(*bot.run_args())
    assert code == 0, err
    assert bot.commands() == [
        ("force_exit", "acknowledged", "exit of bitcoin sent for the next open"),
        ("force_entry", "acknowledged", "entry of 1,000.00 in ethereum sent for the next open"),
        ("force_exit", "rejected", "this bot holds no dogecoin (it trades bitcoin, ethereum)"),
        ("force_entry", "rejected", "this bot trades bitcoin, ethereum, not dogecoin"),
    ]
    status = bot.status()
    last = status["trades"][-1]
    assert (last["symbol"], last["exit_reason"], last["exit_time"]) == (
        "bitcoin", "force_exit", "2019-02-15T00:00:00Z"
    )  # fmt: skip
    assert [(p["symbol"], p["entry_time"][:10]) for p in status["open_positions"]] == [
        ("ethereum", "2019-02-15")
    ]


def test_sleeves_when_another_run_is_current_or_the_file_changed_refuse_naming_fresh(
    stored: Path, tmp_path: Path
) -> None:
    bot = SleeveBot.with_database(tmp_path, stored, end="2019-01-10")
    single = tmp_path / "single.toml"
    single.write_text(f"{FIXED_CASH}{EXITS}")
    code, _, err = bot.cli(
        "run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--config", str(single),
        "--replay", START, "2019-01-10",
    )  # fmt: skip
    assert code == 0, err
    code, _, err = bot.cli(*bot.run_args())
    assert code == 1
    assert "another bot run is current (sma_crossover on bitcoin (run 1))" in err
    assert "--fresh" in err
    code, _, err = bot.cli(*bot.run_args("--fresh"))
    assert code == 0, err
    assert bot.rows("SELECT id, strategy, symbol, archived_at IS NULL FROM bot_runs") == [
        (1, "sma_crossover", "bitcoin", 0),
        (2, "sma_crossover", "bitcoin,ethereum", 1),
    ]
    bot.config_file.write_text(bot.config.replace("fast = 5", "fast = 6", 1))
    code, _, err = bot.cli(*bot.run_args())
    assert code == 1
    assert "the stored run 2 (sma_crossover on bitcoin,ethereum) was started with other" in err
    assert bot.run_count() == 2


@pytest.mark.parametrize(
    ("config", "options", "message"),
    [
        (PARITY_CONFIG, ["--strategy", "sma_crossover", "--symbol", "bitcoin"],
         "--strategy and --symbol with {file}'s 2 [[strategies]] tables"),
        (PARITY_CONFIG.replace('"ethereum"', '"dogecoin"'), [],
         "{file}: strategies[2] (sma_crossover on dogecoin): "),
        (PARITY_CONFIG.replace('"ethereum"\ntimeframe = "1d"', '"ethereum"\ntimeframe = "1h"'),
         [], "{file}: strategies[2] (sma_crossover on ethereum): "),
        (PARITY_CONFIG.replace('"ethereum"', '"bitcoin"'), [],
         '{file}: strategies[2].symbol = "bitcoin": strategies[1] trades it already'),
        (PARITY_CONFIG.replace('symbol = "ethereum"\n', ""), [],
         "{file}: strategies[2].symbol: each strategy of the bot needs a symbol"),
        (PARITY_CONFIG.replace("fast = 5, slow = 20 }\n\n", "fast = 5, slow = 20, x = 1 }\n\n"),
         [], "{file}: strategies[1] (sma_crossover on bitcoin): "),
        (PARITY_CONFIG, ["--exchange", "binance"],
         "{file}: several strategies run on paper over stored bars only"),
        (ONE_TABLE, [],
         "{file}: a run without --strategy needs two or more [[strategies]] tables; it has 1"),
    ],
    ids=["options-and-tables", "unknown-symbol", "timeframe-not-stored", "one-symbol-twice",
         "no-symbol", "unknown-parameter", "forward", "one-table"],
)  # fmt: skip
def test_sleeves_when_input_is_bad_print_one_line_and_store_nothing(
    stored: Path, tmp_path: Path, config: str, options: list[str], message: str
) -> None:
    bot = SleeveBot.with_database(tmp_path, stored, config=config)
    code, _, err = bot.cli(*bot.run_args(*options))
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert message.format(file=bot.config_file) in lines[0]
    assert bot.run_count() == 0
    assert not bot.ledger.exists()


@pytest.mark.parametrize(
    ("config", "options"),
    [(EXITS, []), (ONE_TABLE, ["--strategy", "sma_crossover"])],
    ids=["no-strategy", "one-table-no-symbol"],
)
def test_sleeves_when_strategy_or_symbol_is_missing_is_a_usage_error_storing_nothing(
    stored: Path, tmp_path: Path, config: str, options: list[str]
) -> None:
    bot = SleeveBot.with_database(tmp_path, stored, config=config)
    code, _, err = bot.cli(*bot.run_args(*options))
    assert code == 2
    assert "give --strategy NAME and --symbol S" in err
    assert bot.run_count() == 0
    assert not bot.ledger.exists()


def _days(first: str, last: str) -> list[str]:
    from datetime import date, timedelta

    day, end = date.fromisoformat(first), date.fromisoformat(last)
    days = []
    while day <= end:
        days.append(day.isoformat())
        day += timedelta(days=1)
    return days
