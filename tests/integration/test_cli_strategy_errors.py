"""A broken strategy file, through the real console script: one line, exit 1, nothing stored.

Each case writes a strategy file with one mistake and runs ``marketbot backtest`` on stored
bars (a run that would be saved), as a user's shell would. Every failure must be exactly one
``error: `` line naming the file and the class (and the line, where there is one), with no
traceback and no run in the database.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "marketbot"
SAMPLE_CSV = Path(__file__).parents[2] / "data" / "sample" / "btc_usd_1d_bitstamp.csv"
HEADER = "import numpy as np\nfrom marketbot import Signals, Strategy\n\n\n"


def run_script(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MARKETBOT_")}
    env |= {"MARKETBOT_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def stored_runs(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "marketbot.db") as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM backtest_runs").fetchone()
    return int(count)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the bundled daily bitcoin bars, and no runs."""
    directory = tmp_path_factory.mktemp("strategy_errors") / "var"
    imported = run_script(["data", "import", str(SAMPLE_CSV), "--symbol", "bitcoin"], directory)
    assert imported.returncode == 0, imported.stderr
    assert stored_runs(directory) == 0
    return directory


def signals_returning(body: str) -> str:
    """A file whose MyStrategy's signals runs ``body`` (indented code, ``n`` = bars)."""
    return (
        f"{HEADER}class MyStrategy(Strategy):\n"
        "    def signals(self, frame, params):\n"
        "        n = len(frame)\n"
        f"{body}"
    )


# name: (file contents, or None for no file; pattern the message after "file:Class: " starts
# with)
BROKEN_FILES: dict[str, tuple[str | None, str]] = {
    "file not found": (None, r"no such file"),
    "syntax error": (
        f"{HEADER}class MyStrategy(Strategy)\n    pass\n",
        r"syntax error in my_strat\.py, line 5: expected ':'",
    ),
    "import error": (
        "import numpy as np\nimport talib_is_not_installed\n",
        r"importing the file raised ModuleNotFoundError: No module named "
        r"'talib_is_not_installed' \(my_strat\.py, line 2\)",
    ),
    "missing class": (
        f"{HEADER}class Alpha(Strategy):\n    def signals(self, frame, params): pass\n\n\n"
        "class Beta(Alpha):\n    pass\n",
        r"the file has no class 'MyStrategy' \(Strategy subclasses there: Alpha, Beta\)",
    ),
    "not a strategy": (
        "class MyStrategy:\n    def signals(self, frame, params): pass\n",
        r"MyStrategy is not a Strategy subclass",
    ),
    "signals not written": (
        f"{HEADER}class MyStrategy(Strategy):\n    def warmup_bars(self, params):\n"
        "        return 5\n",
        r"signals\(\) not implemented: expected def signals\(self, frame, params\) -> Signals",
    ),
    "constructor arguments": (
        f"{HEADER}class MyStrategy(Strategy):\n    def __init__(self, window):\n"
        "        self.window = window\n\n    def signals(self, frame, params): pass\n",
        r"MyStrategy\(\) needs arguments \(window\)",
    ),
    "signals takes only frame": (
        f"{HEADER}class MyStrategy(Strategy):\n    def signals(self, frame): pass\n",
        r"signals\(self, frame\) has the wrong arguments: "
        r"expected def signals\(self, frame, params\) -> Signals",
    ),
    "returns not Signals": (
        signals_returning("        return {'entries': np.zeros(n, bool)}\n"),
        r"signals\(\) returned a dict of 1 item, expected Signals\(entries_long, ",
    ),
    "wrong length": (
        signals_returning("        return Signals(np.zeros(n - 1, bool), np.zeros(n, bool))\n"),
        r"signals\(\) returned entries_long of length (\d+), expected \d+ \(one per bar\)",
    ),
    "NaN in entries": (
        signals_returning(
            "        entries = np.where(frame['close'] > frame['open'], 1.0, np.nan)\n"
            "        return Signals(entries, np.zeros(n, bool))\n"
        ),
        r"signals\(\) returned entries_long holding nan at bar \d+ \([-0-9T:+]+\), and at "
        r"\d+ more bars; expected True/False or 0/1 numbers",
    ),
    "exception in signals": (
        signals_returning("        ratio = n / 0\n        return Signals([], [])\n"),
        r"signals\(\) raised ZeroDivisionError: division by zero \(my_strat\.py, line 8\)$",
    ),
    "size above 1 on an entry": (
        signals_returning(
            "        entries = (frame['close'] > frame['open']).to_numpy()\n"
            "        return Signals(entries, ~entries, size_fraction=np.full(n, 1.5))\n"
        ),
        r"signals\(\) returned size_fraction holding 1\.5 at bar \d+ \([-0-9T:+]+\), where an "
        r"entry fires, and at \d+ more such bars; expected a fraction of equity from 0 to 1, "
        r"or NaN for the run's sizing",
    ),
}


@pytest.mark.parametrize("case", BROKEN_FILES, ids=list(BROKEN_FILES))
def test_backtest_when_strategy_file_is_broken_prints_one_error_line_and_stores_nothing(
    case: str, data_dir: Path, tmp_path: Path
) -> None:
    source, pattern = BROKEN_FILES[case]
    path = tmp_path / "my_strat.py"
    if source is not None:
        path.write_text(source, encoding="utf-8")
    spec = f"{path}:MyStrategy"
    finished = run_script(["backtest", "--strategy", spec, "--symbol", "bitcoin"], data_dir)
    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "Traceback" not in finished.stdout + finished.stderr
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, finished.stderr
    assert re.match(f"error: {re.escape(spec)}: {pattern}", lines[0]), lines[0]
    assert stored_runs(data_dir) == 0


def test_backtest_when_signals_are_series_and_lists_runs(tmp_path: Path) -> None:
    path = tmp_path / "forgiven.py"
    path.write_text(
        signals_returning(
            "        up = frame['close'] > frame['close'].rolling(20).mean()\n"
            "        return Signals(up & ~up.shift(1, fill_value=False), list(~up))\n"
        ),
        encoding="utf-8",
    )
    finished = run_script(
        ["backtest", "--strategy", str(path), "--data", str(SAMPLE_CSV), "--json"],
        tmp_path / "var",
    )
    assert finished.returncode == 0, finished.stderr
    assert '"strategy": "MyStrategy"' in finished.stdout


def test_lookahead_when_strategy_peeks_at_many_bars_lists_50_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cheat.py"
    path.write_text(
        signals_returning(
            "        close = frame['close']\n"
            "        return Signals(close.shift(-1) > close, close.shift(-1) < close)\n"
        ),
        encoding="utf-8",
    )
    args = ["lookahead", "--strategy", f"{path}:MyStrategy", "--data", str(SAMPLE_CSV)]
    finished = run_script([*args, "--cuts", "80"], tmp_path / "var")
    assert finished.returncode == 1, finished.stderr
    assert finished.stderr == ""
    lines = finished.stdout.splitlines()
    found = re.match(r"MyStrategy: LOOKAHEAD BIAS: (\d+) signal value", lines[0])
    assert found is not None, lines[0]
    total = int(found.group(1))
    assert total > 50
    assert len(lines) == 1 + 50 + 1
    assert all("entries_long" in line or "exits_long" in line for line in lines[1:51])
    assert lines[-1] == f"  ... and {total - 50} more"


def test_lookahead_when_csv_columns_are_mapped_reads_them_and_passes(tmp_path: Path) -> None:
    rows = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()[1:301]
    csv = tmp_path / "renamed.csv"
    csv.write_text("\n".join(["Date,o,h,l,Price,v", *rows]) + "\n", encoding="utf-8")
    mapping = "timestamp=Date,open=o,high=h,low=l,close=Price,volume=v"
    args = ["lookahead", "--strategy", "sma_crossover", "--data", str(csv), "--columns", mapping]
    finished = run_script([*args, "--cuts", "5"], tmp_path / "var")
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.startswith("sma_crossover: no lookahead found (5 cut points, 300 bars")
