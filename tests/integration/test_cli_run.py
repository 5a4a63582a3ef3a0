"""``marketbot run`` refuses bad input with one line, exit 1, and stores nothing.

Each case runs the command in-process on a real SQLite file holding the bundled daily BTC;
after a refusal no bot run, order or state file exists.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from marketbot.config import load_settings
from marketbot.store.database import Database
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

BASE = ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=10",
        "--param", "slow=50"]  # fmt: skip
REPLAY = ["--replay", "2018-01-01", "2018-03-01"]


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    directory = isolated_data_dir(tmp_path, monkeypatch)
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, _, err = run_cli(["data", "import", str(csv), "--symbol", "bitcoin"], capsys)
    assert code == 0, err
    return directory


def stored_bot_rows() -> int:
    with Database.from_settings(load_settings()) as database, database.session() as session:
        runs = session.execute(sa.text("SELECT COUNT(*) FROM bot_runs")).scalar_one()
        orders = session.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar_one()
        return int(runs) + int(orders)


CASES = {
    "unknown strategy": (["run", "--strategy", "nope", "--symbol", "bitcoin", *REPLAY],
                         "unknown strategy 'nope'"),
    "unknown symbol": (["run", "--strategy", "sma_crossover", "--symbol", "dogecoin", *REPLAY],
                       "dogecoin"),
    "unknown timeframe": ([*BASE, "--timeframe", "4h", *REPLAY], "4h"),
    "unknown parameter": ([*BASE, "--param", "slowest=3", *REPLAY], "no parameter 'slowest'"),
    "start after end": ([*BASE, "--replay", "2019-01-01", "2018-01-01"], "is after end date"),
    "start before the data": ([*BASE, "--replay", "2010-01-01", "2018-01-01"],
                              "before the first stored"),
    "start after the data": ([*BASE, "--replay", "2030-01-01", "2030-02-01"], "2030-01-01"),
    "no replay": (BASE, "--replay START END"),
    "unknown exchange": ([*BASE, "--exchange", "binanse"], "unknown exchange 'binanse'"),
    "exchange and replay": ([*BASE, *REPLAY, "--exchange", "binance"], "--exchange with --replay"),
    "negative speed": ([*BASE, *REPLAY, "--speed", "-1"], "--speed -1"),
    "fresh and reset": ([*BASE, *REPLAY, "--fresh", "--reset-state"], "--fresh and --reset-state"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_run_when_input_is_bad_fails_with_one_line_and_stores_nothing(
    case: str, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, fragment = CASES[case]
    code, _, err = run_cli(args, capsys)
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert stored_bot_rows() == 0
    assert not (data_dir / "state" / "bot_state.json").exists()


def test_run_when_config_key_is_bad_names_the_file_and_key(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bot.toml"
    config.write_text("stop_los = 0.05\n")
    code, _, err = run_cli([*BASE, *REPLAY, "--config", str(config)], capsys)
    assert code == 1
    assert err.strip().startswith("error: ")
    assert "bot.toml" in err
    assert "stop_los" in err
    assert "stop_loss" in err  # the close match
    assert stored_bot_rows() == 0


def test_run_when_identity_changes_refuses_naming_fresh(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli([*BASE, *REPLAY], capsys)
    assert code == 0, err
    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=12",
         "--param", "slow=50", *REPLAY],
        capsys,
    )  # fmt: skip
    assert code == 1
    assert "--fresh" in err
    code, _, err = run_cli(
        ["run", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--param", "fast=12",
         "--param", "slow=50", *REPLAY, "--fresh"],
        capsys,
    )  # fmt: skip
    assert code == 0, err


def test_run_when_run_again_with_a_later_end_resumes_after_the_last_bar(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli([*BASE, "--replay", "2018-01-01", "2018-02-01"], capsys)
    assert code == 0, err
    assert "32 bars" in out
    code, out, err = run_cli([*BASE, "--replay", "2018-01-01", "2018-03-01"], capsys)
    assert code == 0, err
    assert "28 bars" in out
    code, out, _ = run_cli(["status", "--json"], capsys)
    assert '"last_bar_time": "2018-03-01' in out
