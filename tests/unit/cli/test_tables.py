"""The command line's tables: numbers for people, columns in words, titles that fit."""

from __future__ import annotations

import dataclasses
import io
import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from marketbot.backtest.result import BacktestResult
from marketbot.cli.tables import (
    comparison_table,
    gaps_table,
    human_number,
    metrics_table,
    optimization_table,
    per_symbol_table,
    result_messages,
    run_title,
    series_table,
    strategies_table,
    walk_forward_table,
)
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.recommendation import Recommendation
from marketbot.core.risk_limits import RiskLimits
from marketbot.optimize.optimizer import OptimizationResult
from marketbot.optimize.walk_forward import WalkForwardResult, WalkForwardWindow

WIDTH = 100
SHARPE_WARNING = "implausible Sharpe ratio: 6.10 (over 5); check with `marketbot lookahead`"


def _metrics(**overrides: float) -> dict[str, float | int]:
    metrics: dict[str, float | int] = {key: 1.5 for key in METRIC_KEYS}
    metrics.update(
        return_pct=81_093.4,
        buy_hold_return_pct=12.5,
        total_fees=123_456.789,
        expectancy=-54_321.5,
        num_trades=1234,
        max_drawdown_bars=10_500,
    )
    metrics.update(overrides)
    return metrics


def _result(
    *,
    start: str = "2018-01-01",
    end: str = "2021-01-01",
    freq: str = "D",
    symbol: str = "bitcoin",
    **changes: Any,
) -> BacktestResult:
    """A finished run over ``start``..``end``; ``changes`` replace fields (metrics, ...)."""
    index = pd.date_range(start, end, freq=freq, tz="UTC", name="timestamp")
    equity = pd.Series(np.linspace(10_000.0, 20_000.0, len(index)), index=index)
    result = BacktestResult(
        strategy="sma_crossover",
        symbol=symbol,
        params={"fast": 20, "slow": 50, "threshold": 1e-7},
        settings={"initial_cash": 10_000.0, "risk": None},
        metrics=_metrics(),
        recommendation=Recommendation.GOOD,
        trades=pd.DataFrame(),
        equity_curve=equity,
        bars=pd.DataFrame({"close": equity.to_numpy()}, index=index),
    )
    return dataclasses.replace(result, **changes)


def _render(table: Table, width: int = WIDTH) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.export_text()


def _assert_fits(text: str, width: int = WIDTH) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert too_wide == []
    assert "e+" not in text and "e-0" not in text


def _optimization() -> OptimizationResult:
    rows = [
        {"fast": 10, "slow": 200, **_metrics(sharpe=1.9), "eligible": True},
        {"fast": 20, "slow": 50, **_metrics(sharpe=2.5, return_pct=123_456.7), "eligible": True},
        {"fast": 5, "slow": 30, **_metrics(sharpe=9.0), "eligible": False},
    ]
    return OptimizationResult(
        strategy="sma_crossover",
        metric="sharpe",
        minimise=False,
        best_params={"fast": 20, "slow": 50},
        best_metric=2.5,
        results=pd.DataFrame(rows),
        skipped=1500,
        symbol="bitcoin",
    )


def _walk_forward() -> WalkForwardResult:
    optimization = _optimization()
    window = WalkForwardWindow(
        number=1,
        in_sample_start=pd.Timestamp("2018-01-01", tz="UTC"),
        in_sample_end=pd.Timestamp("2019-01-01", tz="UTC"),
        out_of_sample_start=pd.Timestamp("2019-01-02", tz="UTC"),
        out_of_sample_end=pd.Timestamp("2019-06-30", tz="UTC"),
        params={"fast": 20, "slow": 50},
        in_sample_metrics=_metrics(sharpe=2.5),
        out_of_sample_metrics=_metrics(sharpe=0.75, return_pct=45_678.9, num_trades=2500),
        efficiency=0.3,
        optimization=optimization,
    )
    return WalkForwardResult(
        strategy="sma_crossover",
        metric="sharpe",
        minimise=False,
        anchored=False,
        in_sample="365d",
        out_of_sample="180d",
        windows=(window,),
        equity=pd.Series([10_000.0, 11_000.0]),
        trades=pd.DataFrame(),
        out_of_sample_metrics=_metrics(sharpe=0.75, return_pct=45_678.9),
        in_sample_metrics={"sharpe": 2.5},
        efficiency=0.3,
        recommendation=Recommendation.MARGINAL,
    )


# --- metrics_table ---------------------------------------------------------------------------


def test_metrics_table_when_numbers_are_large_writes_thousands_separators_not_exponents() -> None:
    text = _render(metrics_table(_result()))

    for shown in ("+81,093.40 %", "123,456.79", "-54,321.50", "1,234", "10,500 bars"):
        assert shown in text
    assert "threshold=0.0000001" in text  # a parameter too
    _assert_fits(text)


def test_metrics_table_when_rendered_names_metrics_in_words() -> None:
    text = _render(metrics_table(_result()))

    for label in ("Return", "Buy & hold", "Max drawdown", "Win rate", "Fees paid"):
        assert label in text
    assert "return_pct" not in text and "max_drawdown_pct" not in text


def test_metrics_table_when_rendered_titles_symbol_timeframe_and_dates_on_one_line() -> None:
    title = "sma_crossover on bitcoin, 1d, 2018-01-01 to 2021-01-01"

    text = _render(metrics_table(_result()))

    assert run_title(_result()) == title
    assert text.splitlines()[0].strip() == title
    _assert_fits(text)


def test_metrics_table_when_bars_are_hourly_titles_the_timeframe_1h() -> None:
    result = _result(start="2024-03-01", end="2024-03-05", freq="1h")

    assert run_title(result) == "sma_crossover on bitcoin, 1h, 2024-03-01 to 2024-03-05"


def test_metrics_table_when_title_is_wider_than_the_terminal_breaks_it_between_words() -> None:
    symbol = " ".join(["a-very-long-prediction-market-question"] * 4)
    result = _result(symbol=symbol)
    title = run_title(result)

    text = _render(metrics_table(result))

    lines = text.splitlines()
    title_lines = [
        line.strip() for line in lines[: lines.index(next(ln for ln in lines if "┏" in ln))]
    ]
    assert len(title) > WIDTH
    assert " ".join(title_lines) == title  # every break falls on a space
    _assert_fits(text)


def test_metrics_table_when_buy_and_hold_made_more_shows_the_verdict_line() -> None:
    result = _result(
        metrics=_metrics(return_pct=10.0, buy_hold_return_pct=81.2),
        recommendation=Recommendation.FAILED,
    )

    text = _render(metrics_table(result))

    verdict_row = next(line for line in text.splitlines() if "Verdict" in line)
    assert "FAILED; buy & hold made more (+81.2 %)" in verdict_row


def test_metrics_table_when_value_is_nan_or_infinite_shows_a_symbol() -> None:
    result = _result(metrics=_metrics(profit_factor=math.inf, sqn=math.nan))

    text = _render(metrics_table(result))

    assert "∞" in text and "—" in text and "nan" not in text and "inf" not in text


# --- result_messages ---------------------------------------------------------------------------


def test_result_messages_when_run_has_warnings_no_trades_and_limits_lists_them_in_order() -> None:
    limits = RiskLimits(max_position_size_usd=1_000.0, max_daily_loss_usd=500.0)
    result = _result(
        settings={"initial_cash": 10_000.0, "risk": limits.model_dump()},
        warnings=(SHARPE_WARNING, "implausible return: 50,000 % a year"),
        no_trade_reason="every entry was refused by a risk limit",
    )

    assert result_messages(result) == [
        f"warning: {SHARPE_WARNING}",
        "warning: implausible return: 50,000 % a year",
        "no trades: every entry was refused by a risk limit",
        "risk limits: max position $1,000, daily loss $500, total exposure $5,000, "
        "max drawdown 20 %, max positions 10, daily reset 00:00 UTC",
    ]


def test_result_messages_when_run_is_clean_is_empty() -> None:
    assert result_messages(_result()) == []


def test_result_messages_when_settings_lack_the_risk_key_is_empty() -> None:
    assert result_messages(_result(settings={"initial_cash": 10_000.0})) == []


# --- comparison_table --------------------------------------------------------------------------


def test_comparison_table_when_runs_share_a_period_ends_the_title_with_it() -> None:
    rows = [("sma_crossover / bitcoin", _result()), ("momentum / bitcoin", _result())]

    text = _render(comparison_table(rows, "Built-in strategies"))

    assert text.splitlines()[0].strip() == "Built-in strategies, 1d, 2018-01-01 to 2021-01-01"
    assert "+81,093.40 %" in text and "1,234" in text
    assert text.count("bitcoin: buy & hold +12.50 %") == 1  # once for the data, not per run
    _assert_fits(text)


def test_comparison_table_when_periods_differ_lists_each_series_below() -> None:
    rows = [
        ("sma_crossover / bitcoin 1d", _result()),
        ("sma_crossover / ethereum 1h", _result(symbol="ethereum", freq="1h", end="2018-03-01")),
    ]

    text = _render(comparison_table(rows, "Built-in strategies"))

    assert "bitcoin, 1d, 2018-01-01 to 2021-01-01: buy & hold +12.50 %" in text
    assert "ethereum, 1h, 2018-01-01 to 2018-03-01: buy & hold +12.50 %" in text
    _assert_fits(text)


def test_comparison_table_when_buy_and_hold_made_more_marks_the_verdict_with_a_note() -> None:
    beaten = _result(metrics=_metrics(return_pct=10.0, buy_hold_return_pct=81.2))

    text = _render(comparison_table([("beaten", beaten), ("winner", _result())], "Runs"))

    beaten_row = next(line for line in text.splitlines() if "beaten" in line)
    winner_row = next(line for line in text.splitlines() if "winner" in line)
    assert "GOOD*" in beaten_row and "GOOD*" not in winner_row
    assert "* buy & hold made more" in text
    assert "(+81.2 %)" not in text  # the number is below, with the data it belongs to
    assert "bitcoin: buy & hold +81.20 %" in text


# --- the other tables --------------------------------------------------------------------------


def test_optimization_table_when_rendered_uses_words_and_separators() -> None:
    text = _render(optimization_table(_optimization(), top=5))

    assert "1,500 skipped" in text and "by highest Sharpe" in text
    assert "+123,456.70 %" in text and "drawdown" in text and "rate" in text
    assert "best: fast=20, slow=50 → Sharpe 2.50" in text
    assert "return_pct" not in text and "num_trades" not in text
    _assert_fits(text)


def test_walk_forward_table_when_rendered_names_columns_in_words() -> None:
    text = _render(walk_forward_table(_walk_forward()))
    wide = _render(walk_forward_table(_walk_forward()), width=160)

    assert "2018-01-01 to 2019-01-01" in wide and "2019-01-02 to 2019-06-30" in wide
    assert "+45,678.90 %" in text and "2,500" in text and "Efficiency" in text
    assert "Train" in text and "Test" in text and "in-sample window" in text
    assert "out_of_sample" not in text and "in_sample" not in text
    assert "…" not in text  # nothing cut short at 100 columns
    _assert_fits(text)


def test_series_table_when_counts_are_large_writes_thousands_separators() -> None:
    item = SimpleNamespace(
        source="bitstamp",
        symbol="bitcoin",
        timeframe="1h",
        first=pd.Timestamp("2018-05-15 06:00"),
        last=pd.Timestamp("2022-01-01 00:00"),
        rows=33402,
        gaps=12,
        missing_bars=1048,
    )

    text = _render(series_table([item]))

    assert "33,402" in text and "1,048" in text and "Missing bars" in text
    _assert_fits(text)


def test_gaps_table_when_gap_is_long_writes_thousands_separators() -> None:
    gap = SimpleNamespace(
        after=pd.Timestamp("2020-01-01"), before=pd.Timestamp("2021-01-01"), missing_bars=8783
    )

    text = _render(gaps_table([gap], title="Gaps"))

    assert "8,783" in text


def test_per_symbol_table_when_rendered_writes_separators_and_units() -> None:
    breakdown = pd.DataFrame(
        {
            "symbol": ["bitcoin"],
            "num_trades": [1500],
            "win_rate": [45.0],
            "pnl": [123_456.5],
            "fees": [2_345.25],
            "contribution_pct": [1_234.5],
        }
    )

    text = _render(per_symbol_table(breakdown))

    for shown in ("1,500", "45.0 %", "+123,456.50", "2,345.25", "+1,234.50 %", "Contribution"):
        assert shown in text


def test_strategies_table_when_rendered_has_no_exponent_notation() -> None:
    text = _render(strategies_table(), width=200)

    assert "2 .. 500" in text and "3 .. 2,000" in text
    assert "False" not in text  # booleans are spelt as --param takes them: false
    _assert_fits(text, width=200)


# --- human_number ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (81_093.4, "81,093"),
        (1234, "1,234"),
        (np.int64(3872), "3,872"),
        (20.0, "20"),
        (1.23456, "1.235"),
        (0.000012345, "0.00001234"),
        (-0.5, "-0.5"),
        (math.inf, "∞"),
        (math.nan, "—"),
        (True, "True"),
        ("rsi", "rsi"),
    ],
)
def test_human_number_when_value_is_given_writes_it_for_people(value: Any, expected: str) -> None:
    assert human_number(value) == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_human_number_when_value_is_any_finite_float_never_uses_exponent_notation(
    value: float,
) -> None:
    text = human_number(value)

    assert "e" not in text.lower()
    # Thousands separators aside, the text reads back within the rounding it promises.
    number = float(text.replace(",", ""))
    assert math.isclose(number, value, rel_tol=1e-3, abs_tol=0.5)
