"""Usage and marketbot errors through the real console script, as a user's shell runs it.

Each case is a subprocess of the installed ``marketbot`` script: usage errors exit 2 with
typer's short usage message, marketbot's own errors exit 1 with one line, and nothing prints a
traceback unless ``MARKETBOT_DEBUG=1``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "marketbot"
SAMPLE_CSV = Path(__file__).parents[2] / "data" / "sample" / "btc_usd_1d_bitstamp.csv"


def run_script(
    args: list[str], data_dir: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKETBOT_")}
    env |= {"MARKETBOT_DATA_DIR": str(data_dir), "COLUMNS": "100"} | extra_env
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


USAGE_ERRORS = {
    "unknown command": (["nosuchcommand"], "No such command 'nosuchcommand'"),
    "unknown option": (["backtest", "--bogus"], "No such option: --bogus"),
    "missing strategy": (["backtest"], "Missing option '--strategy'"),
    "cash not a number": (
        ["backtest", "--strategy", "sma_crossover", "--cash", "abc"],
        "Invalid value for '--cash'",
    ),
    "limit not a number": (["runs", "list", "--limit", "x"], "Invalid value for '--limit'"),
    "missing import file": (["data", "import"], "Missing argument"),
    "unknown data command": (["data", "nosuch"], "No such command 'nosuch'"),
    "extra argument": (["strategies", "extra"], "Got unexpected extra argument"),
    "run without a strategy": (
        ["run", "--replay", "2020-01-01", "2020-02-01"],
        "give --strategy NAME and --symbol S",
    ),
}


@pytest.mark.parametrize("case", USAGE_ERRORS, ids=list(USAGE_ERRORS))
def test_console_script_when_usage_error_exits_2_with_short_usage(
    case: str, tmp_path: Path
) -> None:
    args, message = USAGE_ERRORS[case]
    finished = run_script(args, tmp_path / "var")
    assert finished.returncode == 2, finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout
    assert finished.stderr.startswith("Usage: marketbot")
    assert "Try 'marketbot" in finished.stderr
    assert message in finished.stderr
    assert len(finished.stderr.strip().splitlines()) <= 6


@pytest.mark.parametrize("args", [[], ["data"], ["runs"], ["polymarket"]], ids=str)
def test_console_script_when_group_without_command_prints_help(
    args: list[str], tmp_path: Path
) -> None:
    finished = run_script(args, tmp_path / "var")
    assert finished.returncode in (0, 2)
    output = finished.stdout + finished.stderr
    assert "Traceback" not in output
    assert "Usage: marketbot" in output
    assert "Commands:" in output


MARKETBOT_ERRORS = {
    "unknown strategy": (
        ["backtest", "--strategy", "nope", "--symbol", "bitcoin"],
        "unknown strategy 'nope'",
    ),
    "unknown symbol": (
        ["backtest", "--strategy", "sma_crossover", "--symbol", "dogecoin"],
        "dogecoin",
    ),
    "missing csv": (
        ["backtest", "--strategy", "sma_crossover", "--data", "missing.csv"],
        "missing.csv",
    ),
    "bad param": (
        ["backtest", "--strategy", "sma_crossover", "--data", str(SAMPLE_CSV), "--param", "x"],
        "--param 'x'",
    ),
    "unknown param": (
        ["backtest", "--strategy", "sma_crossover", "--data", str(SAMPLE_CSV), "--param", "y=1"],
        "no parameter 'y'",
    ),
    "symbol and data": (
        ["backtest", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--data",
         str(SAMPLE_CSV)],
        "--symbol and --data",
    ),
    "bad grid": (["optimize", "--strategy", "sma_crossover", "--grid", "fast"], "--grid"),
    "unknown run": (["runs", "show", "424242"], "424242"),
}  # fmt: skip


@pytest.mark.parametrize("case", MARKETBOT_ERRORS, ids=list(MARKETBOT_ERRORS))
def test_console_script_when_marketbot_error_exits_1_with_one_line(
    case: str, tmp_path: Path
) -> None:
    args, fragment = MARKETBOT_ERRORS[case]
    finished = run_script(args, tmp_path / "var")
    assert finished.returncode == 1, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1, finished.stderr
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in finished.stdout


def test_console_script_when_debug_set_shows_the_traceback(tmp_path: Path) -> None:
    args = ["backtest", "--strategy", "nope", "--symbol", "bitcoin"]
    finished = run_script(args, tmp_path / "var", MARKETBOT_DEBUG="1")
    assert finished.returncode == 1
    assert "Traceback (most recent call last)" in finished.stderr
    assert "StrategyError: unknown strategy 'nope'" in finished.stderr
