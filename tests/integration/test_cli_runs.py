"""``marketbot runs``: list, show, report and compare saved runs, on a real SQLite file.

Most runs are saved straight through the repository with known metrics (so the expected
output is known); the bars are the bundled Bitstamp sample, imported as ``bitcoin``, so that
``runs report`` finds them. One test runs a real backtest end to end.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from marketbot.config import load_settings
from marketbot.store import BacktestRecord, BacktestRunRepository, Database, PriceRepository
from marketbot.store.optimizations import OptimizationRunRepository
from marketbot.store.runs import file_sha256
from tests.support.cli import isolated_data_dir, run_cli
from tests.support.frames import SAMPLE_DIR

SAMPLE_CSV = SAMPLE_DIR / "btc_usd_1d_bitstamp.csv"
PERIOD = ("2020-01-01", "2020-12-31")
METRICS = {
    "return_pct": 12.5,
    "buy_hold_return_pct": 300.0,
    "cagr_pct": 12.5,
    "win_rate": 50.0,
    "sharpe": 1.25,
    "sortino": 1.5,
    "max_drawdown_pct": 8.0,
    "profit_factor": math.inf,
    "num_trades": 2.0,
    "total_fees": 81_090.0,
}


@pytest.fixture
def database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Database]:
    """The data directory's database, with the sample bitcoin bars imported."""
    isolated_data_dir(tmp_path, monkeypatch)
    code, _, err = run_cli(["data", "import", str(SAMPLE_CSV), "--symbol", "bitcoin"], capsys)
    assert code == 0, err
    with Database.from_settings(load_settings()) as db:
        yield db


def sample_bars(database: Database) -> pd.DataFrame:
    bars = PriceRepository(database).load_bars("bitcoin", start=PERIOD[0], end=PERIOD[1])
    assert len(bars) == 366
    return bars


def trade(bars: pd.DataFrame, entry: int, exit_: int, **changes: object) -> dict[str, object]:
    entry_price, exit_price = bars["open"].iloc[entry], bars["open"].iloc[exit_]
    fields: dict[str, object] = {
        "entry_time": bars.index[entry],
        "exit_time": bars.index[exit_],
        "entry_price": entry_price,
        "exit_price": exit_price,
        "size": 0.5,
        "pnl": 0.5 * (exit_price - entry_price),
        "pnl_pct": 100.0 * (exit_price / entry_price - 1.0),
        "exit_reason": "signal",
        "direction": "long",
        "fees": 3.25,
        "entry_bar": entry,
        "exit_bar": exit_,
        "tag": None,
    }
    return fields | changes


def record(bars: pd.DataFrame, **changes: Any) -> BacktestRecord:
    """A run on ``bars`` as the engine would save it, with the known METRICS."""
    close = bars["close"]
    fields: dict[str, Any] = {
        "strategy": "sma_crossover",
        "symbol": "bitcoin",
        "timeframe": "1d",
        "source": "csv",
        "start": bars.index[0],
        "end": bars.index[-1],
        "params": {"fast": 10, "slow": 30, "short": False},
        "settings": {
            "fee_rate": 0.002,
            "slippage_rate": 0.001,
            "initial_cash": 10_000.0,
            "sizing": "all_in",
            "size": None,
            "allow_short": None,
            "exits": {
                "stop_loss": 0.05,
                "take_profit": None,
                "trailing_stop": None,
                "trailing_activation": None,
                "max_hold_seconds": 0,
            },
            "risk": None,
        },
        "metrics": METRICS,
        "recommendation": "GOOD",
        "equity_curve": (10_000.0 * close / close.iloc[0]).rename("equity"),
        "trades": [
            trade(bars, 10, 40),
            trade(bars, 100, 150, exit_reason="stop_loss", pnl=-12.0, pnl_pct=-5.0),
        ],
    }
    fields.update(changes)
    return BacktestRecord(**fields)


def save(database: Database, run: BacktestRecord) -> int:
    return BacktestRunRepository(database).save(run)


def cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> Any:
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    return json.loads(out)


def test_runs_list_when_runs_saved_shows_every_column_newest_first(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    first = save(database, record(bars))
    second = save(database, record(bars, symbol="prices.csv", data_file="prices.csv",
                                   data_sha256="ab" * 32, recommendation="FAILED"))  # fmt: skip

    code, out, err = run_cli(["runs", "list"], capsys)

    assert code == 0, err
    for header in ("ID", "Saved", "Strategy", "Parameters", "Symbol or file", "Source",
                   "Timeframe", "Period", "Return", "Sharpe", "Max drawdown", "Trades",
                   "Verdict"):  # fmt: skip
        assert header in out
    assert out.index(f"│  {second} │") < out.index(f"│  {first} │")
    for text in ("sma_crossover", "fast=10", "slow=30", "short=false", "prices.csv", "bitcoin",
                 "csv", "1d", "2020-01-01 ..", "2020-12-31", "+12.50 %", "1.25", "8.00 %",
                 "GOOD", "FAILED"):  # fmt: skip
        assert text in out
    assert "e+0" not in out


def test_runs_list_when_json_prints_an_array_of_the_same_fields(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    run_id = save(database, record(bars, data_file="prices.csv", data_sha256="ab" * 32))

    (listed,) = cli_json(["runs", "list", "--json"], capsys)

    assert listed.pop("saved").endswith("Z")
    assert listed == {
        "id": run_id,
        "strategy": "sma_crossover",
        "params": {"fast": 10, "slow": 30, "short": False},
        "symbol": "bitcoin",
        "data_file": "prices.csv",
        "data_sha256": "ab" * 32,
        "source": "csv",
        "timeframe": "1d",
        "start": "2020-01-01T00:00:00Z",
        "end": "2020-12-31T00:00:00Z",
        "return_pct": 12.5,
        "sharpe": 1.25,
        "max_drawdown_pct": 8.0,
        "trades": 2,
        "recommendation": "GOOD",
        "verdict": "GOOD; buy & hold made more (+300.0 %)",
    }


def test_runs_list_when_filtered_lists_only_matching_runs(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    sma = save(database, record(bars))
    rsi = save(database, record(bars, strategy="rsi"))
    on_file = save(database, record(bars, strategy="rsi", symbol="data",
                                    data_file="prices.csv", data_sha256="ab" * 32))  # fmt: skip

    def ids(*options: str) -> list[int]:
        return [run["id"] for run in cli_json(["runs", "list", "--json", *options], capsys)]

    assert ids() == [on_file, rsi, sma]
    assert ids("--strategy", "rsi") == [on_file, rsi]
    assert ids("--symbol", "bitcoin") == [rsi, sma]
    assert ids("--symbol", "prices.csv") == [on_file]
    assert ids("--strategy", "sma_crossover", "--symbol", "bitcoin") == [sma]
    assert ids("--limit", "2") == [on_file, rsi]


def test_runs_list_when_optimizations_lists_grid_metric_best_and_combinations(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    results = [
        {"fast": fast, "slow": slow, "sharpe": fast / slow, "num_trades": 5}
        for fast in (5, 10, 20)
        for slow in range(50, 201, 25)
    ]
    run_id = OptimizationRunRepository(database).save(
        {"strategy": "sma_crossover", "symbol": "bitcoin", "method": "grid", "metric": "sharpe",
         "best_params": {"fast": 20, "slow": 50}, "best_metric": 0.4, "results": results}
    )  # fmt: skip

    code, out, err = run_cli(["runs", "list", "--optimizations"], capsys)
    (listed,) = cli_json(["runs", "list", "--optimizations", "--json"], capsys)

    assert code == 0, err
    for text in ("Grid", "Metric", "Best parameters", "Best value", "Combinations",
                 "fast 5, 10, 20; slow 50 .. 200 (7 values)", "fast=20, slow=50", "0.40",
                 "21"):  # fmt: skip
        assert text in out
    assert listed.pop("saved").endswith("Z")
    assert listed == {
        "id": run_id,
        "strategy": "sma_crossover",
        "symbol": "bitcoin",
        "method": "grid",
        "grid": {"fast": [5, 10, 20], "slow": [50, 75, 100, 125, 150, 175, 200]},
        "metric": "sharpe",
        "best_params": {"fast": 20, "slow": 50},
        "best_value": 0.4,
        "combinations": 21,
    }
    assert cli_json(["runs", "list", "--optimizations", "--json", "--symbol", "eth"], capsys) == []


def test_runs_show_when_run_saved_prints_metrics_costs_risk_exits_and_trades(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))

    code, out, err = run_cli(["runs", "show", str(run_id)], capsys)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"Run {run_id}: sma_crossover on bitcoin (csv, 1d), 2020-01-01 .. 2020-12-31"
    assert "Parameters: fast=10, slow=30, short=false" in out
    assert "Verdict: GOOD; buy & hold made more (+300.0 %)" in out
    assert "Risk limits: none" in out
    for text in ("Total return", "+12.50 %", "Profit factor", "∞", "Total fees", "81,090.00",
                 "Fee", "0.2 %", "Slippage", "0.1 %", "Initial cash", "10,000.00", "Sizing",
                 "all_in", "Stop-loss", "5 %", "Trades (2)", "stop_loss",
                 "2020-01-11"):  # fmt: skip
        assert text in out
    assert all(len(line) <= 100 for line in lines[:4])
    assert "e+0" not in out


def test_runs_show_when_risk_limits_set_lists_them(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    risk = {"max_position_size_usd": 1000.0, "max_daily_loss_usd": 500.0,
            "max_total_exposure_usd": 5000.0, "max_drawdown_pct": 20.0, "max_positions": 10,
            "daily_reset_hour_utc": 0}  # fmt: skip
    base = record(bars)
    run_id = save(database, record(bars, settings={**base.settings, "risk": risk}))

    code, out, err = run_cli(["runs", "show", str(run_id)], capsys)

    assert code == 0, err
    assert "Risk limits: none" not in out
    # The HTML report's words for them (backtest.report_tables.risk_rows).
    for text in ("Max position", "$1,000", "Daily loss", "$500", "Total exposure", "$5,000",
                 "Max drawdown", "20 %", "Max positions", "10"):  # fmt: skip
        assert text in out


def test_runs_show_when_json_prints_the_run_with_its_trades(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))

    payload = cli_json(["runs", "show", str(run_id), "--json"], capsys)

    assert payload["id"] == run_id
    assert (payload["source"], payload["timeframe"], payload["data_file"]) == ("csv", "1d", None)
    assert payload["metrics"]["profit_factor"] is None  # JSON has no infinity
    assert payload["settings"]["exits"]["stop_loss"] == 0.05
    assert payload["verdict"] == "GOOD; buy & hold made more (+300.0 %)"
    assert [trade["exit_reason"] for trade in payload["trades"]] == ["signal", "stop_loss"]
    assert payload["trades"][0]["entry_time"] == "2020-01-11T00:00:00Z"
    assert "equity_curve" not in payload


def test_runs_report_when_run_on_stored_bars_writes_html_to_the_default_path(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))

    code, out, err = run_cli(["runs", "report", str(run_id)], capsys)

    target = tmp_path / "var" / "reports" / f"run-{run_id}.html"
    assert code == 0, err
    assert out.strip() == str(target)
    html = target.read_text("utf-8")
    assert '<span class="strategy">sma_crossover</span>' in html
    assert "2 trades · click a column to sort" in html


def test_runs_report_when_output_given_writes_there(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))
    target = tmp_path / "out" / "mine.html"

    code, out, err = run_cli(["runs", "report", str(run_id), "--output", str(target)], capsys)

    assert code == 0, err
    assert out.strip() == str(target) and target.is_file()


def test_runs_report_when_run_on_a_data_file_needs_the_file_again(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "prices.csv"
    shutil.copyfile(SAMPLE_CSV, csv)
    on_file = {"symbol": "prices.csv", "data_file": "prices.csv", "data_sha256": file_sha256(csv)}
    run_id = save(database, record(sample_bars(database), **on_file))
    target = tmp_path / "r.html"

    refused = run_cli(["runs", "report", str(run_id)], capsys)
    code, _out, err = run_cli(
        ["runs", "report", str(run_id), "--data", str(csv), "--output", str(target)], capsys
    )

    assert refused[0] == 1
    assert refused[2] == (
        f"error: run {run_id} was on the data file prices.csv, whose bars are not stored: "
        "give the file again with --data prices.csv\n"
    )
    assert code == 0, err
    assert "2 trades · click a column to sort" in target.read_text("utf-8")


def test_runs_report_when_data_file_changed_since_the_run_refuses(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "prices.csv"
    shutil.copyfile(SAMPLE_CSV, csv)
    on_file = {"symbol": "prices.csv", "data_file": "prices.csv", "data_sha256": file_sha256(csv)}
    run_id = save(database, record(sample_bars(database), **on_file))
    csv.write_text(SAMPLE_CSV.read_text() + "\n")

    code, _out, err = run_cli(["runs", "report", str(run_id), "--data", str(csv)], capsys)

    assert code == 1
    assert err.startswith(f"error: prices.csv: not the file run {run_id} traded on")
    assert err.count("\n") == 1


def test_runs_report_when_bars_no_longer_stored_refuses_in_one_line(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))
    PriceRepository(database).delete_series("csv", "bitcoin", "1d")

    code, _out, err = run_cli(["runs", "report", str(run_id)], capsys)

    assert code == 1
    assert err.startswith(f"error: run {run_id}: its bars are no longer stored (")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_runs_report_when_stored_bars_changed_refuses_naming_the_missing_bars(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    curve = record(bars).equity_curve
    later = curve.copy()
    later.index = later.index + pd.Timedelta(hours=12)  # bar times the series never had
    run_id = save(database, record(bars, equity_curve=later))

    code, _out, err = run_cli(["runs", "report", str(run_id)], capsys)

    assert code == 1
    assert "bars lack 366 of the run's 366 bar times" in err


def test_runs_compare_when_runs_on_same_data_marks_the_best_of_each_row(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    first = save(database, record(bars))
    second = save(database, record(
        bars, params={"fast": 5, "slow": 20, "short": False}, recommendation="MARGINAL",
        metrics=METRICS | {"return_pct": 30.0, "sharpe": 0.9, "max_drawdown_pct": -4.0,
                           "profit_factor": 2.5, "num_trades": 9.0},
    ))  # fmt: skip

    code, out, err = run_cli(["runs", "compare", str(first), str(second)], capsys)
    payload = cli_json(["runs", "compare", str(first), str(second), "--json"], capsys)

    assert code == 0, err
    best = {row["key"]: row["best"] for row in payload["rows"]}
    assert best == {
        "return_pct": [False, True],
        "buy_hold_return_pct": [True, True],
        "cagr_pct": [True, True],
        "win_rate": [True, True],
        "sharpe": [True, False],
        "sortino": [True, True],
        "max_drawdown_pct": [False, True],
        "profit_factor": [True, False],
        "num_trades": [False, False],
        "verdict": [True, False],
    }
    assert [run["id"] for run in payload["runs"]] == [first, second]
    values = {row["key"]: row["values"] for row in payload["rows"]}
    assert values["profit_factor"] == [None, 2.5]
    assert "Runs compared on bitcoin (csv, 1d), 2020-01-01 .. 2020-12-31" in out
    assert "+30.00 % *" in out and "1.25 *" in out and "-4.00 % *" in out
    assert "9 *" not in out and "2 *" not in out


def test_runs_compare_when_runs_on_different_data_refuses_naming_what_differs(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    first = save(database, record(bars))
    second = save(database, record(bars.iloc[:200], timeframe="1h"))

    code, _out, err = run_cli(["runs", "compare", str(first), str(second)], capsys)

    assert code == 1
    assert err == (
        f"error: runs {first} and {second} are on different data (timeframe 1d vs 1h, "
        "last bar 2020-12-31 vs 2020-07-18): compare runs on the same bars\n"
    )


@pytest.mark.parametrize("ids", [["1"], ["1", "2", "3", "4", "5"]])
def test_runs_compare_when_not_two_to_four_ids_refuses(
    database: Database, ids: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _out, err = run_cli(["runs", "compare", *ids], capsys)

    assert code == 1
    assert err == f"error: compare 2 to 4 runs, got {len(ids)}\n"


@pytest.mark.parametrize(
    "command",
    [["runs", "show", "42"], ["runs", "show", "42", "--json"], ["runs", "report", "42"]],
)
def test_runs_command_when_id_unknown_prints_one_line_error(
    database: Database, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(command, capsys)

    assert (code, out, err) == (1, "", "error: no backtest run with id 42\n")


def test_runs_compare_when_an_id_unknown_prints_one_line_error(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    run_id = save(database, record(sample_bars(database)))

    code, _out, err = run_cli(["runs", "compare", str(run_id), "42"], capsys)

    assert (code, err) == (1, "error: no backtest run with id 42\n")


def test_runs_after_a_real_backtest_list_show_and_report_it(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(
        ["backtest", "--strategy", "sma_crossover", "--symbol", "bitcoin",
         "--start", PERIOD[0], "--end", PERIOD[1], "--stop-loss", "0.05"],
        capsys,
    )  # fmt: skip
    assert code == 0, err

    (listed,) = cli_json(["runs", "list", "--json"], capsys)
    shown = cli_json(["runs", "show", str(listed["id"]), "--json"], capsys)
    code, out, err = run_cli(["runs", "report", str(listed["id"])], capsys)

    assert (listed["source"], listed["timeframe"], listed["start"]) == (
        "csv",
        "1d",
        "2020-01-01T00:00:00Z",
    )
    assert shown["settings"]["exits"]["stop_loss"] == 0.05
    assert len(shown["trades"]) == listed["trades"]
    assert code == 0, err
    html = Path(out.strip()).read_text("utf-8")
    assert f"{listed['trades']} trades · click a column to sort" in html


def test_runs_show_when_numbers_large_or_tiny_writes_them_without_exponents(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    params = {"threshold": 0.000012, "budget": 81_090.0, "window": 1_000_000, "max_hold": math.inf}
    run_id = save(database, record(sample_bars(database), params=params))

    code, out, err = run_cli(["runs", "show", str(run_id)], capsys)

    assert code == 0, err
    assert "Parameters: threshold=0.000012, budget=81,090, window=1,000,000, max_hold=∞" in out
    assert "e+0" not in out and "e-0" not in out


def test_runs_show_when_many_trades_lists_the_first_and_last_twenty(
    database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sample_bars(database)
    trades = [trade(bars, 2 * number, 2 * number + 1) for number in range(50)]
    run_id = save(database, record(bars, trades=trades))

    code, out, err = run_cli(["runs", "show", str(run_id)], capsys)

    assert code == 0, err
    assert "Trades: the first and last 20 of 50 (--json lists them all)" in out
    assert "│ 20 │" in out and "│ 31 │" in out and "│ 50 │" in out
    assert "│ 21 │" not in out and "│ 30 │" not in out
    assert "│  … │" in out


def test_runs_after_a_backtest_on_a_data_file_list_it_and_report_it_with_the_file(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "prices.csv"
    shutil.copyfile(SAMPLE_CSV, csv)
    code, _, err = run_cli(
        ["backtest", "--strategy", "sma_crossover", "--data", str(csv),
         "--start", PERIOD[0], "--end", PERIOD[1]],
        capsys,
    )  # fmt: skip
    assert code == 0, err

    (listed,) = cli_json(["runs", "list", "--json", "--symbol", "prices.csv"], capsys)
    code, out, err = run_cli(["runs", "report", str(listed["id"]), "--data", str(csv)], capsys)

    assert (listed["data_file"], listed["data_sha256"]) == ("prices.csv", file_sha256(csv))
    assert (listed["source"], listed["timeframe"]) == ("csv", "1d")
    assert code == 0, err
    assert f"{listed['trades']} trades" in Path(out.strip()).read_text("utf-8")
