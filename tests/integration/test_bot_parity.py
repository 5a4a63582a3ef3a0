"""A paper replay gives the backtest's trades for the same configuration (pinned choice 5).

Both go through the real command line on a real SQLite file: ``backtest --config`` and
``run --config --replay`` over the bundled daily BTC, then ``status --json``. The trades must
agree in times and exit reasons, and in prices and sizes to a relative 1e-9; a position open
at the end must be the backtest's ``end_of_data`` trade.
"""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

ACCEPTANCE_CONFIG = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.05\ntrailing_stop = 0.1\n'
    "take_profit = false\nmax_hold = false\n"
)


@pytest.fixture
def daily_btc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    isolated_data_dir(tmp_path, monkeypatch)
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, _, err = run_cli(["data", "import", str(csv), "--symbol", "bitcoin"], capsys)
    assert code == 0, err
    return tmp_path


def backtest_and_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, extra: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    config_file = tmp_path / "bot.toml"
    config_file.write_text(config)
    common = ["--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=10",
              "--param", "slow=50", "--config", str(config_file), *extra]  # fmt: skip
    code, out, err = run_cli(
        ["backtest", *common, "--start", "2018-01-01", "--end", "2021-01-01", "--json"], capsys
    )
    assert code == 0, err
    backtest = json.loads(out)
    code, _, err = run_cli(["run", *common, "--replay", "2018-01-01", "2021-01-01"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["status", "--json"], capsys)
    assert code == 0, err
    return backtest, json.loads(out)


def assert_same_trades(backtest: dict[str, Any], status: dict[str, Any]) -> None:
    expected = [t for t in backtest["trades"] if t["exit_reason"] != "end_of_data"]
    still_open = [t for t in backtest["trades"] if t["exit_reason"] == "end_of_data"]
    got = status["trades"]
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["entry_time"] == theirs["entry_time"]
        assert mine["exit_time"] == theirs["exit_time"]
        assert mine["exit_reason"] == theirs["exit_reason"]
        for key in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert math.isclose(mine[key], theirs[key], rel_tol=1e-9, abs_tol=1e-9), key
    positions = status["open_positions"]
    assert len(positions) == len(still_open)
    for position, trade in zip(positions, still_open, strict=True):
        assert position["entry_time"].replace("+00:00", "Z") == trade["entry_time"]
        assert math.isclose(position["entry_price"], trade["entry_price"], rel_tol=1e-9)
        assert math.isclose(position["size"], trade["size"], rel_tol=1e-9)


def test_replay_when_acceptance_config_gives_the_backtests_14_trades(
    daily_btc: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backtest, status = backtest_and_replay(daily_btc, capsys, ACCEPTANCE_CONFIG, [])
    reasons = [t["exit_reason"] for t in backtest["trades"]]
    assert len(reasons) == 14
    assert (reasons.count("stop_loss"), reasons.count("trailing_stop")) == (7, 6)
    assert reasons.count("signal") == 1
    assert_same_trades(backtest, status)
    assert status["last_bar_time"].startswith("2021-01-01")
    # Each closed trade got one journal draft, linked to it, for the dashboard's journal.
    with sqlite3.connect(daily_btc / "var" / "marketbot.db") as connection:
        drafts = connection.execute(
            "SELECT trade_ref, strategy, symbol FROM trade_journal ORDER BY id"
        ).fetchall()
    assert len(drafts) == 14
    assert len({ref for ref, _, _ in drafts}) == 14
    assert {(strategy, symbol) for _, strategy, symbol in drafts} == {("sma_crossover", "bitcoin")}


@pytest.mark.parametrize(
    "config",
    [
        'sizing = "all_in"\nstop_loss = 0.05\ntake_profit = 0.1\nmax_hold = false\n',
        'sizing = "fraction"\nsize = 0.5\ntrailing_stop = 0.08\ntrailing_activation = 0.02\n'
        "stop_loss = false\ntake_profit = false\nmax_hold = false\n",
        'sizing = "fixed_cash"\nsize = 2500\nstop_loss = false\ntake_profit = false\n'
        'max_hold = "5d"\n',
    ],
    ids=["all-in-stop-target", "fraction-trailing-activation", "fixed-cash-max-hold"],
)
def test_replay_when_sizing_and_exits_vary_matches_the_backtest(
    daily_btc: Path, capsys: pytest.CaptureFixture[str], config: str
) -> None:
    backtest, status = backtest_and_replay(daily_btc, capsys, config, [])
    assert backtest["trades"], "the configuration should trade"
    assert_same_trades(backtest, status)
