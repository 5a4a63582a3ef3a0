"""Binary markets through the paper bot: a replay of stored books makes the backtest's trades.

``marketbot run --strategy NAME --market SLUG ... --replay START END`` on the shipped sample
and on hand-made markets is compared, trade for trade, with ``run_backtest`` on the same
markets and settings: times exact, prices, sizes, P&L and fees to 1e-9. The bot's records
(orders under ``mb-`` ids committed before they were sent, trades, the state file, status)
and a restart after SIGKILL at each fault point (no client id twice) are checked too.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from marketbot import BacktestingEngine
from marketbot.bot import BotLock, StatePaths, load_state
from marketbot.bot.plan import ReplayRequest, plan_replay
from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits
from marketbot.store import Database
from marketbot.store.bot import BotRecordRepository, BotRunRepository, TradeRecord
from marketbot.store.polymarket_books import PolymarketBookRepository
from tests.support.binary_books import Quote, market_frames, two_sided
from tests.support.bot_process import MARKETBOT, cli_in_process, copy_database, duplicates

DOCS = Path(__file__).resolve().parents[2] / "docs" / "prediction_markets.md"
SAMPLE_MARKETS = (  # Down with Up capped at 81 shares, Up, Up capped at 43.40
    "btc-updown-15m-1790587800", "btc-updown-15m-1790588700", "btc-updown-15m-1790589600",
)  # fmt: skip
SAMPLE_DAY = ("2026-09-28", "2026-09-28")
SYNTHETIC_DAY = ("2026-01-05", "2026-01-05")
UP, DOWN = (0.39, 0.40), (0.54, 0.55)
CHEAP = two_sided(0, UP, DOWN) + two_sided(1, UP, DOWN)
FIRST_UP = """
import numpy as np
from marketbot import BinarySignals, BinaryStrategy

class FirstUp(BinaryStrategy):
    name = "first_up"

    def signals(self, book, params):
        entries = np.zeros((len(book), 2), dtype=bool)
        entries[np.flatnonzero(book["valid_0"].to_numpy())[:1], 0] = True
        return BinarySignals(entries, np.zeros_like(entries))
"""


def shifted(quotes: Sequence[Quote], seconds: float) -> list[Quote]:
    return [Quote(q.seconds + seconds, q.outcome, q.bid, q.bid_size, q.ask, q.ask_size)
            for q in quotes]  # fmt: skip


def momentum_path() -> list[Quote]:
    """Up's mid rises 0.10 at 30 s (an entry), Down's later; exit 60 s before the end."""
    quotes: list[Quote] = []
    for second in range(0, 600, 15):
        up = 0.40 if second < 30 else 0.50
        down = 0.58 if second < 300 else 0.45
        quotes += two_sided(second, (up - 0.01, up + 0.01), (down - 0.01, down + 0.01))
    return quotes


def drop_path() -> list[Quote]:
    """Up bought at 0.51 (10 s); its mid 0.40 from 100 s (a thin bid at 110 s), 0.60 from 200 s."""
    quotes: list[Quote] = []
    for second in range(0, 600, 10):
        up = 0.50 if second < 100 else (0.40 if second < 200 else 0.60)
        bid_size = 300.0 if second == 110 else 5000.0
        quotes += [Quote(second, 0, up - 0.01, bid_size, up + 0.01, 5000.0),
                   Quote(second, 1, 0.49, 5000.0, 0.51, 5000.0)]  # fmt: skip
    return quotes


SYNTHETIC: dict[str, Sequence[Quote]] = {
    "a-cheap": CHEAP,
    "b-later": shifted(CHEAP, 120),
    "c-dear": two_sided(0, (0.44, 0.45), (0.55, 0.56)) + two_sided(1, (0.44, 0.45), (0.55, 0.56)),
    "d-unresolved": shifted(CHEAP, 5),
    "e-thin": shifted(two_sided(0, UP, DOWN) + two_sided(1, UP, DOWN, up_size=600.0), 7),
    "m-momentum": momentum_path(),
    "s-drop": drop_path(),
}
PAYOUTS: dict[str, tuple[float, float] | None] = {"b-later": (0.0, 1.0), "d-unresolved": None}


def stocked(folder: Path, frames: Any) -> Path:
    data_dir = folder / "var"
    data_dir.mkdir(parents=True)
    with Database(f"sqlite:///{data_dir / 'marketbot.db'}") as database:
        database.migrate()
        PolymarketBookRepository(database).import_frames(*frames)
    return data_dir / "marketbot.db"


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped sample, stored as an operator stores it (`polymarket import-sample`)."""
    data_dir = tmp_path_factory.mktemp("sample") / "var"
    code, _, err = cli_in_process(data_dir, ["polymarket", "import-sample"])
    assert code == 0, err
    return data_dir / "marketbot.db"


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stocked(tmp_path_factory.mktemp("synthetic"), market_frames(SYNTHETIC, payouts=PAYOUTS))


class Bot:
    """One data directory with a copy of a stocked database, and the bot's view of it."""

    def __init__(self, root: Path, database: Path) -> None:
        self.root = root
        self.data_dir = root / "var"
        self.data_dir.mkdir(parents=True)
        copy_database(database, self.data_dir / "marketbot.db")
        self.strategy_file = root / "first_up.py"
        self.strategy_file.write_text(FIRST_UP)

    def config(self, text: str) -> Path:
        path = self.root / "bot.toml"
        path.write_text(text)
        return path

    def cli(self, *args: str) -> tuple[int, str, str]:
        return cli_in_process(self.data_dir, list(args))

    def child(self, args: Sequence[str], fault: str) -> int:
        """``marketbot ARGS`` as a child process that a fault point SIGKILLs."""
        env = {"MARKETBOT_DATA_DIR": str(self.data_dir), "MARKETBOT_TESTING": "1",
               "MARKETBOT_FAULT_POINT": fault, "PATH": "/usr/bin:/bin"}  # fmt: skip
        done = subprocess.run(
            [str(MARKETBOT), *args], check=False, env=env, capture_output=True, timeout=120
        )
        return done.returncode

    def database(self) -> Database:
        return Database(f"sqlite:///{self.data_dir / 'marketbot.db'}")

    def trades(self) -> list[TradeRecord]:
        with self.database() as database:
            run = BotRunRepository(database).current_runs()[-1]
            return BotRecordRepository(database).trades(run.id)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        connection = sqlite3.connect(self.data_dir / "marketbot.db")
        try:
            return list(connection.execute(query))
        finally:
            connection.close()


def run_args(
    strategy: str, markets: Sequence[str], window: tuple[str, str], *extra: str
) -> list[str]:
    chosen = [item for slug in markets for item in ("--market", slug)]
    return ["run", "--paper", "--strategy", strategy, *chosen, "--replay", *window, *extra]


def backtest(database: Path, strategy: str, markets: Sequence[str], **options: Any) -> Any:
    with Database(f"sqlite:///{database}") as store:
        return BacktestingEngine(store).run_backtest(
            strategy, markets=list(markets), save=False, **options
        )


def assert_same_trades(mine: list[Any], result: Any) -> None:
    theirs = result.trades.to_dict("records")
    key = lambda t: (t["symbol"], t["entry_time"], t["exit_time"], t["outcome"])  # noqa: E731
    ours = sorted(
        ({"symbol": t.symbol, "outcome": t.entry_tag, "entry_time": t.entry_time,
          "exit_time": t.exit_time, "entry_price": t.entry_price, "exit_price": t.exit_price,
          "size": t.size, "pnl": t.pnl, "fees": t.fees, "exit_reason": t.exit_reason}
         for t in mine), key=key,
    )  # fmt: skip
    expected = sorted(theirs, key=key)
    assert [(t["symbol"], t["outcome"], t["exit_reason"]) for t in ours] == [
        (t["symbol"], t["outcome"], t["exit_reason"]) for t in expected
    ]
    for got, want in zip(ours, expected, strict=True):
        assert got["entry_time"] == want["entry_time"].to_pydatetime()
        assert got["exit_time"] == want["exit_time"].to_pydatetime()
        for name in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(got[name], want[name], rel_tol=1e-9, abs_tol=1e-9), name


def test_replay_when_the_sample_is_bought_at_first_quotes_makes_the_backtests_trades(
    tmp_path: Path, sample_db: Path
) -> None:
    bot = Bot(tmp_path, sample_db)
    strategy = f"{bot.strategy_file}:FirstUp"
    config = bot.config('sizing = "shares"\nsize = 100\n')
    code, out, err = bot.cli(*run_args(strategy, SAMPLE_MARKETS, SAMPLE_DAY,
                                       "--config", str(config)))  # fmt: skip
    assert code == 0, err
    assert "3 trades closed" in out
    expected = backtest(sample_db, strategy, SAMPLE_MARKETS, sizing="shares", size=100)
    assert sorted(expected.trades["size"].tolist()) == pytest.approx([43.4, 81.0, 100.0])
    assert_same_trades(bot.trades(), expected)
    code, out, err = bot.cli("status", "--json")
    assert code == 0, err
    shown = sorted(t["entry_time"] for t in json.loads(out)["trades"])
    assert shown == sorted(t["entry_time"] for t in expected.to_dict()["trades"])  # with ms


@pytest.mark.parametrize(("strategy", "params"), [
    ("polymarket_arbitrage", {}), ("binary_momentum", {"lookback_seconds": 20}),
])  # fmt: skip
def test_replay_when_hand_made_markets_trade_matches_the_backtest_at_a_fee(
    tmp_path: Path, synthetic_db: Path, strategy: str, params: dict[str, int]
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    config = bot.config('fee = 0.02\nsizing = "shares"\nsize = 1000\n')
    slugs = list(SYNTHETIC)
    options = [item for k, v in params.items() for item in ("--param", f"{k}={v}")]
    code, _, err = bot.cli(*run_args(strategy, slugs, SYNTHETIC_DAY, "--config", str(config),
                                     *options))  # fmt: skip
    assert code == 0, err
    expected = backtest(synthetic_db, strategy, slugs, fee=0.02, sizing="shares", size=1000.0,
                        params=params)  # fmt: skip
    assert len(expected.trades) >= 1
    assert_same_trades(bot.trades(), expected)
    if strategy == "polymarket_arbitrage":
        pnl = {t.symbol: 0.0 for t in bot.trades()}
        for trade in bot.trades():
            pnl[trade.symbol] += trade.pnl
        assert pnl["a-cheap"] == pytest.approx(40.25, abs=1e-9)  # the worked example
        assert pnl["b-later"] == pytest.approx(40.25, abs=1e-9)  # Down won: the same
        assert pnl["d-unresolved"] == pytest.approx(-19.75, abs=1e-9)  # end_of_data at mids
        assert pnl["e-thin"] == pytest.approx(600 * 0.04025, abs=1e-9)  # capped at 600 pairs
        assert "c-dear" not in pnl
    else:
        assert "signal" in {t.exit_reason for t in bot.trades()}


def test_replay_when_stopped_before_the_end_holds_the_group_then_settles_it_later(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    config = bot.config('fee = 0.02\nsizing = "shares"\nsize = 1000\n')
    args = run_args("polymarket_arbitrage", ["a-cheap"], ("2026-01-05", "2026-01-05T12:05"),
                    "--config", str(config))  # fmt: skip
    code, _, err = bot.cli(*args)
    assert code == 0, err
    state = load_state(StatePaths.in_data_dir(bot.data_dir).state_dir)
    assert state is not None
    assert sorted(p.symbol for p in state.open_positions) == ["a-cheap:Down", "a-cheap:Up"]
    assert [p.size for p in state.open_positions] == [1000.0, 1000.0]
    code, out, err = bot.cli("status", "--json")
    assert code == 0, err
    assert '"open_positions": [{' in out.replace("\n", "")
    code, _, err = bot.cli(*run_args("polymarket_arbitrage", ["a-cheap"], SYNTHETIC_DAY,
                                     "--config", str(config)))  # fmt: skip
    assert code == 0, err
    trades = bot.trades()
    assert [t.exit_reason for t in trades] == ["settlement", "settlement"]
    assert sum(t.pnl for t in trades) == pytest.approx(40.25, abs=1e-9)
    # Each order: an mb- id, its intent committed before it was sent, filled once.
    orders = bot.rows("SELECT client_order_id, status, created_at, sent_at FROM orders")
    assert len(orders) == 2
    assert all(cid.startswith("mb-") and status == "closed" and created <= sent
               for cid, status, created, sent in orders)  # fmt: skip
    submitted = bot.rows("SELECT client_order_id FROM order_events WHERE kind='order_submitted'")
    assert sorted(row[0] for row in submitted) == sorted(row[0] for row in orders)
    assert bot.rows("SELECT COUNT(*) FROM bot_runs") == [(1,)]


def test_replay_when_the_risk_limits_allow_one_group_refuses_the_others_as_the_backtest(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    config = bot.config('fee = 0.02\nsizing = "shares"\nsize = 1000\n\n[risk.limits]\n'
                        "max_positions = 1\n")  # fmt: skip
    slugs = ["a-cheap", "d-unresolved", "e-thin"]  # entries at 1 s, 6 s and 8 s
    code, _, err = bot.cli(*run_args("polymarket_arbitrage", slugs, SYNTHETIC_DAY,
                                     "--config", str(config)))  # fmt: skip
    assert code == 0, err
    expected = backtest(synthetic_db, "polymarket_arbitrage", slugs, fee=0.02, sizing="shares",
                        size=1000.0, risk=RiskLimits(max_positions=1))  # fmt: skip
    assert set(expected.trades["symbol"]) == {"a-cheap"}
    assert_same_trades(bot.trades(), expected)
    assert bot.rows("SELECT kind FROM risk_events") == [("entry_denied",), ("entry_denied",)]
    reasons = [row[0] for row in bot.rows(
        "SELECT details FROM order_events WHERE kind = 'order_canceled'")]  # fmt: skip
    # Two groups refused; the signals at those markets' last events never fill (as backtested).
    assert sorted(reasons) == ['{"reason":"risk_limit"}'] * 4 + ['{"reason":"settled"}'] * 2


@pytest.mark.parametrize("fault", ["after_intent_commit:1", "after_send:2", "after_rename:2"])
def test_restart_when_killed_mid_replay_sends_no_client_id_twice_and_ends_as_the_backtest(
    tmp_path: Path, synthetic_db: Path, fault: str
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    config = bot.config('fee = 0.02\nsizing = "shares"\nsize = 1000\n')
    slugs = ["a-cheap", "b-later", "d-unresolved"]
    args = run_args("polymarket_arbitrage", slugs, SYNTHETIC_DAY, "--config", str(config))
    assert bot.child(args, fault) == -9
    assert bot.trades() == []
    code, _, err = bot.cli(*args)
    assert code == 0, err
    expected = backtest(synthetic_db, "polymarket_arbitrage", slugs, fee=0.02, sizing="shares",
                        size=1000.0)  # fmt: skip
    assert_same_trades(bot.trades(), expected)
    ids = [row[0] for row in bot.rows("SELECT client_order_id FROM orders")]
    assert len(ids) == 6
    assert duplicates(ids) == []
    submitted = [row[0] for row in bot.rows(
        "SELECT client_order_id FROM order_events WHERE kind='order_submitted'")]  # fmt: skip
    assert sorted(submitted) == sorted(ids)  # each sent once
    filled = [row[0] for row in bot.rows(
        "SELECT client_order_id FROM order_events WHERE kind='order_filled'")]  # fmt: skip
    assert duplicates(filled) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--strategy", "polymarket_arbitrage", "--symbol", "bitcoin", "--replay", *SYNTHETIC_DAY],
     "error: polymarket_arbitrage is a binary-market strategy: use --market SLUG"),
    (["--strategy", "sma_crossover", "--market", "a-cheap", "--replay", *SYNTHETIC_DAY],
     "error: sma_crossover trades OHLCV bars, not binary markets: use --symbol, not --market"),
    (["--strategy", "polymarket_arbitrage", "--market", "nope", "--replay", *SYNTHETIC_DAY],
     "error: no order books stored for market(s) nope"),
])  # fmt: skip
def test_run_when_the_instrument_is_misnamed_is_one_line_and_stores_no_run(
    tmp_path: Path, synthetic_db: Path, args: list[str], message: str
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    code, _, err = bot.cli("run", *args)
    assert code == 1
    assert err.startswith(message), err
    assert len(err.strip().splitlines()) == 1
    assert bot.rows("SELECT COUNT(*) FROM bot_runs") == [(0,)]


@pytest.mark.parametrize(("line", "options", "reasons"), [
    ("stop_loss = 0.1", {"stop_loss": 0.1}, ["stop_loss", "stop_loss"]),  # 300 at 110 s, 700 next
    ('max_hold = "60s"', {"max_hold": "60s"}, ["max_hold"]),
    ("take_profit = 0.1", {"take_profit": 0.1}, ["take_profit"]),
])  # fmt: skip
def test_replay_when_a_rule_exit_is_configured_sells_as_the_backtest(
    tmp_path: Path, synthetic_db: Path, line: str, options: dict[str, Any], reasons: list[str]
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    strategy = f"{bot.strategy_file}:FirstUp"
    config = bot.config(f'fee = 0.02\nsizing = "shares"\nsize = 1000\n{line}\n')
    code, _, err = bot.cli(*run_args(strategy, ["s-drop"], SYNTHETIC_DAY, "--config", str(config)))
    assert code == 0, err
    expected = backtest(synthetic_db, strategy, ["s-drop"], fee=0.02, sizing="shares",
                        size=1000.0, **options)  # fmt: skip
    assert expected.trades["exit_reason"].tolist() == reasons
    assert_same_trades(bot.trades(), expected)
    intents = bot.rows("SELECT intent, status FROM orders ORDER BY id")
    assert intents == [("entry", "closed")] + [("protect", "closed")] * len(reasons)


def test_run_when_the_config_names_an_ohlcv_setting_is_one_line_naming_file_and_key(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    config = bot.config("trailing_stop = 0.05\n")
    code, _, err = bot.cli(*run_args("polymarket_arbitrage", ["a-cheap"], SYNTHETIC_DAY,
                                     "--config", str(config)))  # fmt: skip
    assert code == 1
    assert err.startswith(f"error: {config}: trailing_stop: not a setting of binary paper"), err


def test_lookahead_when_given_a_binary_strategy_is_one_line_naming_market(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    code, _, err = bot.cli("lookahead", "--strategy", "binary_momentum", "--symbol", "bitcoin")
    assert code == 1
    assert err == (
        "error: binary_momentum is a binary-market strategy: use --market (with backtest or "
        "run); lookahead checks strategies on OHLCV bars\n"
    )


def test_runs_report_when_the_run_was_binary_writes_its_html_again(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    for fee in ("0", "0.07"):  # trades; none (0.40 + 0.55 and the fee clear no 2 % margin)
        code, _, err = bot.cli("backtest", "--strategy", "polymarket_arbitrage", "--market",
                               "a-cheap", "--market", "b-later", "--fee", fee)  # fmt: skip
        assert code == 0, err
    for run_id in ("1", "2"):
        target = tmp_path / f"again-{run_id}.html"
        code, out, err = bot.cli("runs", "report", run_id, "--output", str(target))
        assert code == 0, err
        assert out.strip() == str(target)
    html = (tmp_path / "again-1.html").read_text(encoding="utf-8")
    assert "<h2>Per symbol" in html
    assert html.count("b-later") >= 2


def test_run_when_another_bot_holds_the_lock_is_refused_naming_its_pid(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    with BotLock.in_state_dir(StatePaths.in_data_dir(bot.data_dir).state_dir):
        code, _, err = bot.cli(*run_args("polymarket_arbitrage", ["a-cheap"], SYNTHETIC_DAY))
    assert code == 1
    assert err.startswith(f"error: another bot is running (pid {os.getpid()})"), err
    assert bot.rows("SELECT COUNT(*) FROM bot_runs") == [(0,)]


def test_ohlcv_plan_when_a_sleeve_names_a_binary_strategy_refuses_it_before_any_bar(
    tmp_path: Path, synthetic_db: Path
) -> None:
    """What `run --config` with [[strategies]] meets first: not a KeyError on 'ask_0'."""
    bot = Bot(tmp_path, synthetic_db)
    request = ReplayRequest(strategy="polymarket_arbitrage", symbol="bitcoin")
    with (
        bot.database() as database,
        pytest.raises(ConfigError, match=r"^polymarket_arbitrage is a binary-market strategy: "),
    ):
        plan_replay(database, Settings(data_dir=bot.data_dir), request)


def test_run_again_when_the_settings_changed_is_refused_until_fresh_archives_the_run(
    tmp_path: Path, synthetic_db: Path
) -> None:
    bot = Bot(tmp_path, synthetic_db)
    args = run_args("polymarket_arbitrage", ["a-cheap"], SYNTHETIC_DAY)
    assert bot.cli(*args)[0] == 0
    config = bot.config("fee = 0.0\n")
    code, _, err = bot.cli(*args, "--config", str(config))
    assert code == 1
    assert "--fresh" in err and len(err.strip().splitlines()) == 1, err
    code, _, err = bot.cli(*args, "--config", str(config), "--fresh")
    assert code == 0, err
    runs = bot.rows("SELECT archived_at IS NOT NULL FROM bot_runs ORDER BY id")
    assert runs == [(1,), (0,)]
