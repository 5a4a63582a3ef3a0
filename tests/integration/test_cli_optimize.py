"""`marketbot optimize` end to end: grid, ranges, walk-forward, report, stored runs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

BTC = str(SAMPLE_DIR / "btc_usd_1d_bitstamp.csv")


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    isolated_data_dir(tmp_path, monkeypatch)
    return tmp_path / "var"


def test_optimize_when_grid_and_range_given_prints_json_with_every_combination(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_cli(
        ["optimize", "--strategy", "sma_crossover", "--data", BTC, "--grid", "fast=5,10",
         "--range", "slow=50:150:50", "--jobs", "1", "--json"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert len(payload["results"]) == 6
    assert {(row["fast"], row["slow"]) for row in payload["results"]} == {
        (f, s) for f in (5, 10) for s in (50, 100, 150)
    }
    best = max(payload["results"], key=lambda row: row["sharpe"])
    assert payload["best_params"]["fast"] == best["fast"]
    assert "deflated_sharpe" in payload["diagnostics"] and "pbo" in payload["diagnostics"]


def test_optimize_when_symbol_stored_saves_the_run_and_writes_a_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["data", "import", BTC, "--symbol", "bitcoin"], capsys)[0] == 0
    report = tmp_path / "opt.html"
    code, out, err = run_cli(
        ["optimize", "--strategy", "sma_crossover", "--symbol", "bitcoin", "--grid",
         "fast=5,10", "--grid", "slow=50,100", "--walk-forward", "1460d:365d",
         "--report", str(report), "--jobs", "1"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "Walk-forward" in out and report.is_file()
    text = report.read_text()
    assert 'id="walk-forward"' in text and 'id="sensitivity"' in text
    from marketbot.config import load_settings
    from marketbot.store.database import Database
    from marketbot.store.optimizations import OptimizationRunRepository

    runs = OptimizationRunRepository(Database.from_settings(load_settings())).list_runs()
    assert [(run.strategy, run.symbol, run.combinations) for run in runs] == [
        ("sma_crossover", "bitcoin", 4)
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "fast"], "use KEY=V1,V2"),
        (["--range", "slow=200:50"], "slow"),
        (["--grid", "fast=5", "--metric", "luck"], "unknown metric 'luck'"),
        (["--grid", "speed=5"], "no parameter 'speed'"),
        (["--grid", "fast=5", "--method", "guess"], "--method 'guess'"),
        (["--grid", "fast=5", "--walk-forward", "365d"], "use IS:OOS"),
        ([], "give at least one --grid"),
    ],
)
def test_optimize_when_input_is_wrong_fails_with_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        ["optimize", "--strategy", "sma_crossover", "--data", BTC, *args], capsys
    )
    assert code == 1
    assert err.startswith("error: ") and err.count("\n") == 1
    assert message in err
