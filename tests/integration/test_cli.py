"""The command line end to end, on a real SQLite file in a temporary data directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

GOOD_CSV = "timestamp,open,high,low,close,volume\n" + "\n".join(
    f"2024-01-{day:02d},{100 + day},{102 + day},{99 + day},{101 + day},10" for day in range(1, 29)
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    isolated_data_dir(tmp_path, monkeypatch)
    yield tmp_path / "var"


def stored_rows(capsys: pytest.CaptureFixture[str]) -> str:
    code, out, _ = run_cli(["data", "list"], capsys)
    assert code == 0
    return out


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_backtest_when_csv_given_prints_one_json_object(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, out, err = run_cli(
        ["backtest", "--strategy", "sma_crossover", "--data", str(csv), "--json",
         "--param", "fast=20", "--param", "slow=50", "--start", "2020-01-01"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert set(payload) >= {"metrics", "recommendation", "trades", "equity_curve"}
    assert payload["params"] == {"fast": 20, "slow": 50, "short": False}
    assert payload["equity_curve"][0]["time"] == "2020-01-01T00:00:00Z"
    assert payload["metrics"]["num_trades"] == len(payload["trades"])


def test_import_then_backtest_symbol_saves_the_run(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, out, err = run_cli(["data", "import", str(csv), "--symbol", "bitcoin"], capsys)
    assert code == 0, err
    assert "imported 3872 1d bars of bitcoin" in out
    report = tmp_path / "r.html"
    code, out, err = run_cli(
        ["backtest", "--strategy", "momentum", "--symbol", "bitcoin", "--report", str(report)],
        capsys,
    )
    assert code == 0, err
    assert "Sharpe" in out and report.is_file()
    code, out, _ = run_cli(["runs", "list"], capsys)
    assert code == 0 and "momentum" in out and "bitcoin" in out
    listing = stored_rows(capsys)
    assert "bitcoin" in listing and "3,872" in listing


def test_strategies_when_listed_shows_parameters_and_ranges(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run_cli(["strategies"], capsys)
    assert code == 0
    for text in ("sma_crossover", "momentum", "mean_reversion", "fast", "2 .. 500"):
        assert text in out


BAD_CSVS = {
    "missing column": ("timestamp,open,high,low,volume\n2024-01-01,1,2,0.5,3\n", "missing column"),
    "empty": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,,3\n",
        "empty close at line 2",
    ),
    "nan": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,nan,3\n",
        "NaN or infinite close at 2024-01-01 (line 2)",
    ),
    "non-positive": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0,1,3\n",
        "non-positive low at 2024-01-01 (line 2)",
    ),
    "high below low": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,1,2,1,3\n",
        "high < low at 2024-01-01 (line 2)",
    ),
    "unsorted": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,3\n2024-01-03,1,2,0.5,1,3\n"
        "2024-01-02,1,2,0.5,1,3\n",
        "neither oldest-first nor newest-first: 2024-01-02 (line 4) follows 2024-01-03 (line 3)",
    ),
    "duplicate": (
        "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1,3\n2024-01-01,1,2,0.5,2,3\n",
        "lines 2 and 3 are both 2024-01-01, with different values (close 1 and 2)",
    ),
    "empty file": ("", "the file is empty"),
    "header only": ("timestamp,open,high,low,close,volume\n", "no bars"),
    "bad dates": (
        "timestamp,open,high,low,close,volume\nyesterday,1,2,0.5,1,3\n",
        "timestamp 'yesterday' (line 2) is not an ISO 8601 date",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CSVS))
def test_data_import_when_csv_is_bad_fails_with_one_line_and_stores_nothing(
    case: str, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text, message = BAD_CSVS[case]
    good = write(tmp_path, "good.csv", GOOD_CSV)
    assert run_cli(["data", "import", str(good), "--symbol", "kept"], capsys)[0] == 0
    before = stored_rows(capsys)
    bad = write(tmp_path, "bad.csv", text)
    code, _, err = run_cli(["data", "import", str(bad), "--symbol", "kept"], capsys)
    assert code == 1
    assert err.startswith("error: bad.csv") and err.count("\n") == 1
    assert message in err
    assert stored_rows(capsys) == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy 'nope'"),
        (["--strategy", "sma_crossover", "--param", "speed=3"], "no parameter 'speed'"),
        (["--strategy", "sma_crossover", "--param", "fast"], "use KEY=VALUE"),
        (
            ["--strategy", "sma_crossover", "--start", "2024-02-01", "--end", "2024-01-01"],
            "is after end date",
        ),
        (["--strategy", "sma_crossover", "--fee", "-1"], "fee=-1.0"),
    ],
)
def test_backtest_when_input_is_wrong_fails_with_one_clear_line(
    args: list[str], message: str, data_dir: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    csv = write(tmp_path, "good.csv", GOOD_CSV)
    code, _, err = run_cli(["backtest", "--data", str(csv), *args], capsys)
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err


def test_backtest_when_symbol_unknown_names_it(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["backtest", "--strategy", "sma_crossover", "--symbol", "doge"], capsys)
    assert code == 1
    assert "doge" in err


def test_lookahead_when_builtin_on_csv_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
    code, out, _ = run_cli(
        ["lookahead", "--strategy", "sma_crossover", "--data", str(csv), "--cuts", "10"], capsys
    )
    assert code == 0
    assert "no lookahead found" in out


def test_lookahead_when_user_strategy_peeks_exits_1_and_lists_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write(
        tmp_path,
        "peek.py",
        "from marketbot import Signals, Strategy\n"
        "class Peek(Strategy):\n"
        "    def warmup_bars(self, params): return 0\n"
        "    def signals(self, frame, params):\n"
        "        c = frame['close']\n"
        "        return Signals((c.shift(-1) > c).to_numpy(), (c.shift(-1) < c).to_numpy())\n",
    )
    csv = write(tmp_path, "good.csv", GOOD_CSV)
    code, out, _ = run_cli(
        ["lookahead", "--strategy", f"{source}:Peek", "--data", str(csv), "--cuts", "5"], capsys
    )
    assert code == 1
    assert "LOOKAHEAD BIAS" in out and "entries_long" in out


def test_console_script_when_run_as_a_process_reports_errors_on_stderr(tmp_path: Path) -> None:
    executable = shutil.which("marketbot", path=str(Path(sys.executable).parent))
    assert executable is not None
    completed = subprocess.run(
        [executable, "backtest", "--strategy", "nope", "--data", str(tmp_path / "x.csv")],
        capture_output=True,
        text=True,
        env={**os.environ, "MARKETBOT_DATA_DIR": str(tmp_path)},
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.strip() == f"error: {tmp_path / 'x.csv'}: no such file"


def test_demo_when_run_imports_sample_and_writes_report(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(["demo", "--sample-dir", str(SAMPLE_DIR)], capsys)
    assert code == 0, err
    assert "imported 33402 1h bars of bitcoin" in out
    assert "HTML report:" in out
    reports = list((data_dir / "reports").glob("*.html"))
    assert len(reports) == 1
    # Running it again is idempotent: the same rows, no duplicates.
    assert run_cli(["demo", "--sample-dir", str(SAMPLE_DIR)], capsys)[0] == 0
    listing = stored_rows(capsys)
    assert "33,402" in listing and "3,872" in listing and "2,795" in listing
    assert pd.Timestamp("2025-07-04").strftime("%Y-%m-%d") in listing
