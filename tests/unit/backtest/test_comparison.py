"""compare_runs: the best value per row, and refusing runs on different data."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
import pytest

from marketbot.backtest.comparison import ComparisonRow, best_flags, compare_runs
from marketbot.core.errors import ConfigError
from marketbot.store.runs import BacktestRunSummary

SHA_A = "a" * 64
SHA_B = "b" * 64


def run(run_id: int, **changes: object) -> BacktestRunSummary:
    fields: dict[str, object] = {
        "id": run_id,
        "created_at": pd.Timestamp("2025-01-01", tz="UTC"),
        "strategy": "sma_crossover",
        "symbol": "bitcoin",
        "timeframe": "1d",
        "source": "bitstamp",
        "start": pd.Timestamp("2020-01-01", tz="UTC"),
        "end": pd.Timestamp("2024-12-31", tz="UTC"),
        "params": {"fast": 10, "slow": 30},
        "metrics": {},
        "recommendation": "MARGINAL",
        "trade_count": 0,
    }
    fields.update(changes)
    return BacktestRunSummary(**fields)  # type: ignore[arg-type]


def metrics(**values: float) -> dict[str, float]:
    base = {
        "return_pct": 10.0,
        "buy_hold_return_pct": 50.0,
        "cagr_pct": 2.0,
        "win_rate": 40.0,
        "sharpe": 0.5,
        "sortino": 0.7,
        "max_drawdown_pct": 30.0,
        "profit_factor": 1.2,
        "num_trades": 10.0,
    }
    return base | values


def best_of(rows: Sequence[ComparisonRow], key: str) -> tuple[bool, ...]:
    return next(row.best for row in rows if row.key == key)


def test_compare_runs_when_metrics_known_marks_the_best_of_each_row() -> None:
    runs = [
        run(1, metrics=metrics(return_pct=25.0, sharpe=1.1, max_drawdown_pct=12.0,
                               profit_factor=math.inf, num_trades=40.0),
            recommendation="GOOD"),
        run(2, metrics=metrics(return_pct=-5.0, sharpe=1.4, max_drawdown_pct=8.5,
                               win_rate=55.0, num_trades=3.0),
            recommendation="FAILED"),
        run(3, metrics=metrics(return_pct=25.0, sortino=2.0, max_drawdown_pct=20.0,
                               cagr_pct=9.0)),
    ]  # fmt: skip

    comparison = compare_runs(runs)

    rows = comparison.rows
    assert comparison.run_ids == (1, 2, 3)
    assert [row.key for row in rows] == [
        "return_pct", "buy_hold_return_pct", "cagr_pct", "win_rate", "sharpe", "sortino",
        "max_drawdown_pct", "profit_factor", "num_trades", "verdict",
    ]  # fmt: skip
    assert best_of(rows, "return_pct") == (True, False, True)  # a tie: both marked
    assert best_of(rows, "buy_hold_return_pct") == (True, True, True)  # the same bars
    assert best_of(rows, "cagr_pct") == (False, False, True)
    assert best_of(rows, "win_rate") == (False, True, False)
    assert best_of(rows, "sharpe") == (False, True, False)
    assert best_of(rows, "sortino") == (False, False, True)
    assert best_of(rows, "max_drawdown_pct") == (False, True, False)  # the shallowest
    assert best_of(rows, "profit_factor") == (True, False, False)  # inf: no losing trade
    assert best_of(rows, "num_trades") == (False, False, False)
    assert best_of(rows, "verdict") == (True, False, False)
    assert rows[0].values == (25.0, -5.0, 25.0)
    assert rows[-1].values == (
        "GOOD; buy & hold made more (+50.0 %)",
        "FAILED; buy & hold made more (+50.0 %)",
        "MARGINAL; buy & hold made more (+50.0 %)",
    )


def test_best_flags_when_drawdown_given_negative_marks_smallest_magnitude() -> None:
    assert best_flags([-12.0, 8.0, -30.0], "smaller_magnitude") == (False, True, False)


def test_best_flags_when_a_value_is_nan_never_marks_it() -> None:
    assert best_flags([math.nan, 1.0, 2.0], "higher") == (False, False, True)
    assert best_flags([math.nan, math.nan], "higher") == (False, False)


def test_compare_runs_when_a_metric_missing_shows_nan_and_marks_the_others() -> None:
    comparison = compare_runs([run(1, metrics={"sharpe": 1.0}), run(2, metrics={})])

    sharpe = next(row for row in comparison.rows if row.key == "sharpe")
    assert math.isnan(float(sharpe.values[1]))
    assert sharpe.best == (True, False)


def test_compare_runs_when_verdicts_tie_marks_all_of_them() -> None:
    comparison = compare_runs(
        [run(1, recommendation="GOOD"), run(2, recommendation="GOOD"), run(3)]
    )

    assert comparison.rows[-1].best == (True, True, False)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"timeframe": "1h"}, r"timeframe 1d vs 1h"),
        ({"symbol": "ethereum"}, r"symbol bitcoin vs ethereum"),
        ({"source": "coingecko"}, r"source bitstamp vs coingecko"),
        ({"start": pd.Timestamp("2021-01-01", tz="UTC")}, r"first bar 2020-01-01 vs 2021-01-01"),
        (
            {"end": pd.Timestamp("2024-06-30 12:00", tz="UTC")},
            r"last bar 2024-12-31 vs 2024-06-30 12:00",
        ),
    ],
)
def test_compare_runs_when_data_differs_raises_naming_what(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^runs 1 and 2 are on different data \(" + message):
        compare_runs([run(1), run(2, **changes)])


def test_compare_runs_when_several_fields_differ_names_each() -> None:
    with pytest.raises(ConfigError) as error:
        compare_runs([run(1), run(2), run(3, timeframe="1h", symbol="ethereum")])

    assert str(error.value) == (
        "runs 1 and 3 are on different data (symbol bitcoin vs ethereum, timeframe 1d vs 1h): "
        "compare runs on the same bars"
    )


def test_compare_runs_when_same_file_name_but_other_content_raises() -> None:
    on_file = {"symbol": "data", "source": "csv", "data_file": "prices.csv"}

    with pytest.raises(ConfigError, match=r"data file prices\.csv \(sha256 aaaaaaaaaaaa…\) vs "):
        compare_runs([run(1, **on_file, data_sha256=SHA_A), run(2, **on_file, data_sha256=SHA_B)])


def test_compare_runs_when_renamed_copy_of_the_same_file_compares_them() -> None:
    on_file = {"symbol": "data", "source": "csv", "data_sha256": SHA_A}

    comparison = compare_runs(
        [run(1, **on_file, data_file="prices.csv"), run(2, **on_file, data_file="copy.csv")]
    )

    assert comparison.run_ids == (1, 2)


def test_compare_runs_when_file_run_and_stored_run_raises() -> None:
    with pytest.raises(ConfigError, match=r"data file none vs prices\.csv"):
        compare_runs([run(1), run(2, data_file="prices.csv", data_sha256=SHA_A)])


@pytest.mark.parametrize("count", [1, 5])
def test_compare_runs_when_not_two_to_four_runs_raises(count: int) -> None:
    with pytest.raises(ConfigError, match=f"compare 2 to 4 runs, got {count}"):
        compare_runs([run(number) for number in range(count)])


def test_compare_runs_when_a_run_given_twice_raises() -> None:
    with pytest.raises(ConfigError, match="run 1 is given twice"):
        compare_runs([run(1), run(1)])
