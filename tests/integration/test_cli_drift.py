"""``marketbot drift``: a paper replay's trades against the backtest of its config.

On paper the two agree trade for trade (the parity the bot is built for); a trade changed in
the store shows up as exactly that difference.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from marketbot.sources.csv_file import import_csv
from marketbot.store import Database, PriceRepository
from marketbot.store.models import BotTrade
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

CONFIG = (
    'sizing = "fixed_cash"\nsize = 1000\nstop_loss = 0.05\ntrailing_stop = 0.1\n'
    "take_profit = false\nmax_hold = false\n"
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = isolated_data_dir(tmp_path, monkeypatch)
    directory.mkdir(parents=True)
    with Database(f"sqlite:///{directory / 'marketbot.db'}") as database:
        database.migrate()
        import_csv(PriceRepository(database), SAMPLE_DIR / "btc_usd_1d_bitstamp.csv",
                   symbol="bitcoin")  # fmt: skip
    return directory


def replay(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(CONFIG)
    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=5",
         "--param", "slow=20", "--config", str(config), "--replay", "2020-09-01", "2021-01-01"],
        capsys,
    )  # fmt: skip
    assert code == 0, err


def drift_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_cli(["drift", "--json"], capsys)
    assert code == 0, err
    payload: dict[str, Any] = json.loads(out)
    return payload


def test_drift_when_no_run_says_how_to_start_one(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["drift"], capsys)

    assert code == 1
    assert err == (
        "error: no bot run to compare: start one with `marketbot run`, then run `marketbot drift`\n"
    )


def test_drift_when_paper_replay_matches_the_backtest_and_a_changed_fill_shows_its_difference(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    replay(data_dir, tmp_path, capsys)
    code, backtest_out, err = run_cli(
        ["backtest", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=5",
         "--param", "slow=20", "--config", str(tmp_path / "bot.toml"), "--start", "2020-09-01",
         "--end", "2021-01-01", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    backtest = json.loads(backtest_out)["trades"]

    payload = drift_json(capsys)

    summary = payload["summary"]
    assert summary["bot_trades"] == summary["backtest_trades"] == summary["matched"] == 4
    assert summary["same_exits"] == 4
    assert summary["pnl_difference"] == pytest.approx(0.0, abs=1e-9)
    assert [p["entry_time"] for p in payload["trades"]] == [t["entry_time"] for t in backtest]
    for pair in payload["trades"]:
        for key in ("entry_price", "exit_price", "size", "pnl", "fees"):
            assert pair["differences"][key] == pytest.approx(0.0, abs=1e-9), key
    _, text, _ = run_cli(["drift"], capsys)
    assert "4 paired by entry time, 4 with the same exit" in text

    # A fill that differs (as a live one would) shows as exactly that difference.
    url = f"sqlite:///{data_dir / 'marketbot.db'}"
    with Database(url) as database, database.engine.begin() as connection:
        first = connection.execute(sa.select(sa.func.min(BotTrade.id))).scalar_one()
        connection.execute(
            sa.update(BotTrade)
            .where(BotTrade.id == first)
            .values(exit_price=BotTrade.exit_price + 100.0, pnl=BotTrade.pnl + 25.0)
        )

    changed = drift_json(capsys)

    first_pair, *others = changed["trades"]
    assert first_pair["differences"]["exit_price"] == pytest.approx(100.0)
    assert first_pair["differences"]["pnl"] == pytest.approx(25.0)
    assert changed["summary"]["pnl_difference"] == pytest.approx(25.0)
    assert all(p["differences"]["exit_price"] == pytest.approx(0.0, abs=1e-9) for p in others)
