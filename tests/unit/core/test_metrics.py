"""Known-answer tests for compute_metrics: every expected value is worked out by hand below."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import METRIC_KEYS, ClosedTrades, compute_metrics, equity_curve_stats_nb
from marketbot.core.metrics_nb import equity_stats_nb

DAY_NS = 86_400 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000
SQRT_DAILY = math.sqrt(365)  # bars per year of daily bars
SQRT_HOURLY = math.sqrt(365 * 24)  # bars per year of hourly bars
DOCS = Path(__file__).resolve().parents[3] / "docs" / "metrics.md"


def metrics_of(
    equity: list[float],
    *,
    spacing_ns: int = DAY_NS,
    times_ns: list[int] | None = None,
    close: list[float] | None = None,
    pnl: list[float] | None = None,
    pnl_pct: list[float] | None = None,
    hold_bars: list[int] | None = None,
    exposed_bars: int = 0,
    total_fees: float = 0.0,
    initial_cash: float | None = None,
) -> dict[str, float | int]:
    """compute_metrics with defaults: evenly spaced bars, close = equity, no trades."""
    pnl = pnl or []
    times = times_ns if times_ns is not None else [i * spacing_ns for i in range(len(equity))]
    return compute_metrics(
        np.array(equity, dtype=np.float64),
        np.array(times, dtype=np.int64),
        np.array(close if close is not None else equity, dtype=np.float64),
        ClosedTrades(
            np.array(pnl, dtype=np.float64),
            np.array(pnl_pct if pnl_pct is not None else [0.0] * len(pnl), dtype=np.float64),
            np.array(hold_bars if hold_bars is not None else [1] * len(pnl), dtype=np.int64),
        ),
        exposed_bars=exposed_bars,
        total_fees=total_fees,
        initial_cash=initial_cash if initial_cash is not None else equity[0],
    )


# --- shape of the result ------------------------------------------------------------------


def test_compute_metrics_when_called_returns_exactly_the_metric_keys_in_order() -> None:
    result = metrics_of([100.0, 101.0, 99.0], pnl=[1.0, -2.0])

    assert tuple(result) == METRIC_KEYS
    assert len(METRIC_KEYS) == 19


def test_compute_metrics_when_called_returns_plain_python_numbers() -> None:
    result = metrics_of([100.0, 101.0, 99.0], pnl=[1.0, -2.0], hold_bars=[1, 2])

    for key, value in result.items():
        expected_type = int if key in ("num_trades", "max_drawdown_bars") else float
        assert type(value) is expected_type, key


def test_metric_keys_when_docs_are_read_every_key_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")

    missing = [key for key in METRIC_KEYS if f"`{key}`" not in text]

    assert missing == []


def test_docs_example_when_run_passes_its_own_asserts() -> None:
    text = DOCS.read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]
    examples = [block for block in blocks if block.startswith("import")]

    assert examples, "docs/metrics.md has no runnable example"
    for example in examples:
        exec(compile(example, str(DOCS), "exec"), {})


# --- no trades, flat equity ---------------------------------------------------------------


def test_compute_metrics_when_no_trades_and_flat_equity_everything_is_zero() -> None:
    result = metrics_of([100.0, 100.0, 100.0, 100.0], close=[10.0, 11.0, 12.0, 12.5])

    assert result["return_pct"] == 0.0
    assert result["buy_hold_return_pct"] == pytest.approx(25.0)  # 12.5 / 10 - 1 = 0.25
    assert result["sharpe"] == 0.0  # std of (0, 0, 0) is 0
    assert result["sortino"] == 0.0  # no negative return
    assert result["max_drawdown_pct"] == 0.0
    assert result["max_drawdown_bars"] == 0
    assert result["cagr_pct"] == 0.0  # 1 ** (365 / 3) - 1 = 0
    assert result["calmar"] == 0.0  # no drawdown
    assert result["num_trades"] == 0
    assert result["profit_factor"] == 0.0  # nothing won, nothing lost
    for key in ("win_rate", "expectancy", "sqn", "avg_trade_pct", "best_trade_pct"):
        assert result[key] == 0.0, key
    assert result["worst_trade_pct"] == 0.0
    assert result["avg_hold_bars"] == 0.0
    assert result["exposure_pct"] == 0.0
    assert result["total_fees"] == 0.0


# --- trade statistics ---------------------------------------------------------------------


def test_compute_metrics_when_one_winning_trade_gives_its_own_stats() -> None:
    result = metrics_of(
        [1000.0, 1000.0, 1020.0, 1050.0, 1050.0],
        pnl=[50.0],
        pnl_pct=[5.0],
        hold_bars=[3],
        exposed_bars=3,
        total_fees=4.0,
    )

    assert result["num_trades"] == 1
    assert result["win_rate"] == 100.0  # 1 of 1
    assert result["profit_factor"] == math.inf  # won 50, lost nothing
    assert result["expectancy"] == 50.0
    assert result["sqn"] == 0.0  # needs at least 2 trades
    assert result["avg_trade_pct"] == 5.0
    assert result["best_trade_pct"] == 5.0
    assert result["worst_trade_pct"] == 5.0
    assert result["avg_hold_bars"] == 3.0
    assert result["exposure_pct"] == pytest.approx(60.0)  # 100 * 3 / 5
    assert result["total_fees"] == 4.0
    assert result["return_pct"] == pytest.approx(5.0)  # 1050 / 1000 - 1


def test_compute_metrics_when_all_trades_win_profit_factor_is_inf() -> None:
    result = metrics_of(
        [100.0, 160.0], pnl=[10.0, 20.0, 30.0], pnl_pct=[1.0, 2.0, 3.0], hold_bars=[1, 2, 6]
    )

    assert result["win_rate"] == 100.0
    assert result["profit_factor"] == math.inf
    assert result["expectancy"] == pytest.approx(20.0)  # 60 / 3
    # deviations from 20: -10, 0, 10; variance (100 + 0 + 100) / (3 - 1) = 100; std 10
    # sqn = sqrt(3) * 20 / 10 = 2 * sqrt(3)
    assert result["sqn"] == pytest.approx(2.0 * math.sqrt(3.0))
    assert result["avg_trade_pct"] == pytest.approx(2.0)  # (1 + 2 + 3) / 3
    assert result["best_trade_pct"] == 3.0
    assert result["worst_trade_pct"] == 1.0
    assert result["avg_hold_bars"] == pytest.approx(3.0)  # (1 + 2 + 6) / 3


def test_compute_metrics_when_all_trades_lose_profit_factor_is_zero() -> None:
    result = metrics_of([100.0, 60.0], pnl=[-10.0, -30.0], pnl_pct=[-1.0, -3.0], hold_bars=[2, 4])

    assert result["win_rate"] == 0.0
    assert result["profit_factor"] == 0.0  # won 0, lost 40: 0 / 40
    assert result["expectancy"] == pytest.approx(-20.0)
    # deviations from -20: 10, -10; variance 200 / 1; std 10 * sqrt(2)
    # sqn = sqrt(2) * -20 / (10 * sqrt(2)) = -2
    assert result["sqn"] == pytest.approx(-2.0)
    assert result["avg_trade_pct"] == pytest.approx(-2.0)
    assert result["best_trade_pct"] == -1.0
    assert result["worst_trade_pct"] == -3.0
    assert result["avg_hold_bars"] == pytest.approx(3.0)


def test_compute_metrics_when_trades_are_mixed_counts_break_even_as_not_a_win() -> None:
    result = metrics_of(
        [100.0, 120.0],
        pnl=[30.0, -10.0, 20.0, -20.0, 0.0],
        pnl_pct=[3.0, -1.0, 2.0, -2.0, 0.0],
        hold_bars=[1, 2, 3, 4, 5],
    )

    assert result["num_trades"] == 5
    assert result["win_rate"] == pytest.approx(40.0)  # 2 of 5; the 0 is not a win
    assert result["profit_factor"] == pytest.approx(50.0 / 30.0)  # (30 + 20) / (10 + 20)
    assert result["expectancy"] == pytest.approx(4.0)  # 20 / 5
    # deviations from 4: 26, -14, 16, -24, -4; squares 676 + 196 + 256 + 576 + 16 = 1720
    # variance 1720 / 4 = 430; sqn = sqrt(5) * 4 / sqrt(430) = 4 / sqrt(86)
    assert result["sqn"] == pytest.approx(4.0 / math.sqrt(86.0))
    assert result["avg_trade_pct"] == pytest.approx(0.4)  # 2 / 5
    assert result["best_trade_pct"] == 3.0
    assert result["worst_trade_pct"] == -2.0
    assert result["avg_hold_bars"] == pytest.approx(3.0)  # 15 / 5


def test_compute_metrics_when_only_break_even_trades_profit_factor_and_sqn_are_zero() -> None:
    result = metrics_of([100.0, 100.0], pnl=[0.0, 0.0])

    assert result["profit_factor"] == 0.0  # won 0, lost 0
    assert result["win_rate"] == 0.0
    assert result["sqn"] == 0.0  # std 0


def test_compute_metrics_when_trade_pnls_are_equal_sqn_is_zero_not_rounding_noise() -> None:
    # mean(0.1, 0.1, 0.1) rounds to 0.10000000000000002, which would give a std of ~1e-17
    result = metrics_of([100.0, 100.3], pnl=[0.1, 0.1, 0.1])

    assert result["sqn"] == 0.0


# --- drawdown -----------------------------------------------------------------------------


def test_drawdown_when_never_regained_runs_to_the_last_bar() -> None:
    # peak 120 at bar 1, low 90: depth 1 - 90 / 120 = 25 %; still below at bar 4: 4 - 1 = 3
    result = metrics_of([100.0, 120.0, 90.0, 100.0, 110.0])

    assert result["max_drawdown_pct"] == pytest.approx(25.0)
    assert result["max_drawdown_bars"] == 3


def test_drawdown_when_regained_exactly_ends_at_the_bar_equal_to_the_peak() -> None:
    # peak 100 at bar 0, low 80: 20 %; bar 3 equals the peak again: 3 - 0 = 3
    result = metrics_of([100.0, 80.0, 90.0, 100.0, 105.0])

    assert result["max_drawdown_pct"] == pytest.approx(20.0)
    assert result["max_drawdown_bars"] == 3


def test_drawdown_when_longer_one_is_shallower_reports_each_maximum() -> None:
    # first: bar 0 -> bar 2, 1 - 50 / 100 = 50 %, 2 bars
    # second: bar 2 -> bar 7, 1 - 95 / 100 = 5 %, 5 bars
    result = metrics_of([100.0, 50.0, 100.0, 95.0, 96.0, 97.0, 98.0, 100.0])

    assert result["max_drawdown_pct"] == pytest.approx(50.0)
    assert result["max_drawdown_bars"] == 5


def test_drawdown_when_peak_is_repeated_counts_from_its_last_bar() -> None:
    # 100 at bars 0 and 1, low at bar 2, regained at bar 3: 3 - 1 = 2 bars, 10 %
    result = metrics_of([100.0, 100.0, 90.0, 100.0])

    assert result["max_drawdown_pct"] == pytest.approx(10.0)
    assert result["max_drawdown_bars"] == 2


def test_drawdown_when_curve_never_falls_is_zero() -> None:
    result = metrics_of([100.0, 100.0, 110.0, 120.0])

    assert result["max_drawdown_pct"] == 0.0
    assert result["max_drawdown_bars"] == 0


def test_drawdown_when_fall_is_on_the_last_bar_lasts_one_bar() -> None:
    # peak 110 at bar 1, 105 at bar 2: 1 - 105 / 110 = 1 / 22; 2 - 1 = 1 bar
    result = metrics_of([100.0, 110.0, 105.0])

    assert result["max_drawdown_pct"] == pytest.approx(100.0 / 22.0)
    assert result["max_drawdown_bars"] == 1


def test_drawdown_when_one_bar_is_zero() -> None:
    result = metrics_of([100.0])

    assert result["max_drawdown_pct"] == 0.0
    assert result["max_drawdown_bars"] == 0


# --- sharpe, sortino, bars per year -------------------------------------------------------

# Equity 100 -> 110 -> 99 -> 118.8 -> 112.86 has the returns +10 %, -10 %, +20 %, -5 %:
#   mean = (0.10 - 0.10 + 0.20 - 0.05) / 4 = 0.0375
#   deviations 0.0625, -0.1375, 0.1625, -0.0875; squares sum to
#   0.00390625 + 0.01890625 + 0.02640625 + 0.00765625 = 0.056875; std = sqrt(0.056875 / 3)
#   downside: (0.10^2 + 0.05^2) / 4 = 0.0125 / 4 = 0.003125; deviation sqrt(0.003125)
FOUR_RETURNS_EQUITY = [100.0, 110.0, 99.0, 118.8, 112.86]
FOUR_RETURNS_MEAN_OVER_STD = 0.0375 / math.sqrt(0.056875 / 3)
FOUR_RETURNS_MEAN_OVER_DOWNSIDE = 0.0375 / math.sqrt(0.003125)


def test_sharpe_and_sortino_when_four_daily_returns_match_hand_computation() -> None:
    result = metrics_of(FOUR_RETURNS_EQUITY, spacing_ns=DAY_NS)

    assert result["sharpe"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_STD * SQRT_DAILY)
    assert result["sortino"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_DOWNSIDE * SQRT_DAILY)


def test_sharpe_and_sortino_when_four_hourly_returns_annualise_with_8760_bars() -> None:
    result = metrics_of(FOUR_RETURNS_EQUITY, spacing_ns=HOUR_NS)

    assert result["sharpe"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_STD * SQRT_HOURLY)
    assert result["sortino"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_DOWNSIDE * SQRT_HOURLY)


def test_sharpe_when_times_have_a_gap_uses_the_median_spacing() -> None:
    # spacings 1 h, 1 h, 3 h, 1 h: the median is 1 h, so 8760 bars per year
    times = [0, HOUR_NS, 2 * HOUR_NS, 5 * HOUR_NS, 6 * HOUR_NS]

    result = metrics_of(FOUR_RETURNS_EQUITY, times_ns=times)

    assert result["sharpe"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_STD * SQRT_HOURLY)


def test_sharpe_when_median_falls_between_two_spacings_averages_them() -> None:
    # spacings 1 h and 2 h: median 1.5 h, 8760 / 1.5 = 5840 bars per year
    # returns 0.1 and 0.3: mean 0.2, std sqrt((0.1^2 + 0.1^2) / 1) = sqrt(0.02)
    result = metrics_of([100.0, 110.0, 143.0], times_ns=[0, HOUR_NS, 3 * HOUR_NS])

    assert result["sharpe"] == pytest.approx(0.2 / math.sqrt(0.02) * math.sqrt(5840.0))


@pytest.mark.parametrize("regular", [True, False], ids=["regular_with_gaps", "irregular"])
def test_sharpe_when_series_is_long_uses_the_exact_median_spacing(regular: bool) -> None:
    rng = np.random.default_rng(7)
    n = 5_000
    if regular:  # hourly bars with a few gaps of 2..5 hours
        spacings = np.where(rng.random(n - 1) < 0.05, rng.integers(2, 6, n - 1), 1) * HOUR_NS
    else:  # no two spacings alike: the sampled guess cannot be the median
        spacings = rng.integers(HOUR_NS // 2, 2 * HOUR_NS, n - 1)
    times = np.concatenate([[0], np.cumsum(spacings)]).astype(np.int64)
    equity = 100.0 * np.cumprod(1.0 + rng.normal(0.0002, 0.01, n))
    returns = equity[1:] / equity[:-1] - 1.0
    bars_per_year = 365 * DAY_NS / np.median(np.diff(times))

    result = compute_metrics(
        equity,
        times,
        equity,
        ClosedTrades(np.array([]), np.array([]), np.array([], dtype=np.int64)),
        exposed_bars=0,
        total_fees=0.0,
        initial_cash=100.0,
    )

    expected = returns.mean() / returns.std(ddof=1) * math.sqrt(bars_per_year)
    assert result["sharpe"] == pytest.approx(expected, rel=1e-9)


def test_compute_metrics_when_given_the_measured_spacing_skips_measuring_it() -> None:
    # The engine measures a window's median spacing once and passes it on: the metrics
    # with it are the metrics without it, and a different spacing is what they annualise
    # by (hourly bars said to be daily: the daily annualiser).
    times = np.array([0, HOUR_NS, 2 * HOUR_NS, 5 * HOUR_NS, 6 * HOUR_NS], dtype=np.int64)
    equity = np.array(FOUR_RETURNS_EQUITY, dtype=np.float64)

    def metrics_with(spacing_ns: float | None) -> dict[str, float | int]:
        return compute_metrics(
            equity,
            times,
            equity,
            ClosedTrades(np.array([]), np.array([]), np.array([], dtype=np.int64)),
            exposed_bars=0,
            total_fees=0.0,
            initial_cash=float(equity[0]),
            bar_spacing_ns=spacing_ns,
        )

    measured = metrics_with(None)
    given = metrics_with(float(HOUR_NS))
    said_daily = metrics_with(float(DAY_NS))

    assert given == measured
    assert said_daily["sharpe"] == pytest.approx(FOUR_RETURNS_MEAN_OVER_STD * SQRT_DAILY)


def test_sharpe_when_one_return_is_zero_but_sortino_is_defined() -> None:
    # one return of -10 %: no std (needs 2), downside sqrt(0.01 / 1) = 0.1; -0.1 / 0.1 = -1
    result = metrics_of([100.0, 90.0])

    assert result["sharpe"] == 0.0
    assert result["sortino"] == pytest.approx(-1.0 * SQRT_DAILY)


def test_sharpe_and_sortino_when_one_bar_are_zero() -> None:
    result = metrics_of([100.0])

    assert result["sharpe"] == 0.0
    assert result["sortino"] == 0.0


def test_sortino_when_no_return_is_negative_is_zero() -> None:
    result = metrics_of([100.0, 110.0, 121.0, 125.0])

    assert result["sortino"] == 0.0
    assert result["sharpe"] > 0.0


# --- cagr, calmar, return -----------------------------------------------------------------


def test_cagr_when_span_is_365_days_equals_the_total_return() -> None:
    equity = [100.0] * 365 + [121.0]  # 366 daily bars: span 365 days

    result = metrics_of(equity)

    assert result["cagr_pct"] == pytest.approx(21.0)  # 1.21 ** (365 / 365) - 1
    assert result["return_pct"] == pytest.approx(21.0)


def test_cagr_when_span_is_730_days_is_the_square_root() -> None:
    equity = [100.0] * 730 + [121.0]  # span 730 days

    result = metrics_of(equity)

    assert result["cagr_pct"] == pytest.approx(10.0)  # 1.21 ** (365 / 730) = 1.1


def test_cagr_when_span_is_zero_is_zero() -> None:
    result = metrics_of([100.0], initial_cash=50.0)

    assert result["cagr_pct"] == 0.0
    assert result["return_pct"] == pytest.approx(100.0)  # 100 / 50 - 1


def test_calmar_when_cagr_10_and_drawdown_20_is_one_half() -> None:
    # bars a year apart: span 730 days, 121 / 100 -> cagr 10 %; 100 -> 80 is a 20 % drawdown
    result = metrics_of([100.0, 80.0, 121.0], spacing_ns=365 * DAY_NS)

    assert result["cagr_pct"] == pytest.approx(10.0)
    assert result["max_drawdown_pct"] == pytest.approx(20.0)
    assert result["calmar"] == pytest.approx(0.5)


def test_calmar_when_no_drawdown_is_zero() -> None:
    result = metrics_of([100.0, 110.0, 121.0])

    assert result["cagr_pct"] > 0.0
    assert result["calmar"] == 0.0


def test_cagr_when_huge_gain_in_one_minute_is_clipped_to_a_finite_value() -> None:
    # 2 ** (365 * 1440) overflows float64
    result = metrics_of([100.0, 200.0], spacing_ns=60 * 1_000_000_000)

    assert result["cagr_pct"] == np.finfo(np.float64).max
    assert math.isfinite(result["calmar"])


def test_return_pct_when_initial_cash_differs_from_first_equity_uses_initial_cash() -> None:
    result = metrics_of([99.0, 110.0], initial_cash=100.0)

    assert result["return_pct"] == pytest.approx(10.0)  # 110 / 100 - 1


def test_exposure_when_three_of_four_bars_exposed_is_75_pct() -> None:
    result = metrics_of([100.0, 100.0, 100.0, 100.0], exposed_bars=3)

    assert result["exposure_pct"] == pytest.approx(75.0)


# --- equity going to zero -----------------------------------------------------------------


def test_compute_metrics_when_equity_goes_to_zero_counts_minus_one_then_zero_returns() -> None:
    # returns: 50 / 100 - 1 = -0.5; 0 / 50 - 1 = -1; then 0 and 0 (equity already 0)
    # mean = -1.5 / 4 = -0.375; deviations -0.125, -0.625, 0.375, 0.375
    # squares 0.015625 + 0.390625 + 0.140625 + 0.140625 = 0.6875; std = sqrt(0.6875 / 3)
    # downside (0.25 + 1) / 4 = 0.3125
    result = metrics_of([100.0, 50.0, 0.0, 0.0, 0.0])

    assert result["return_pct"] == -100.0
    assert result["cagr_pct"] == -100.0
    assert result["max_drawdown_pct"] == pytest.approx(100.0)
    assert result["max_drawdown_bars"] == 4  # never regained: bar 0 -> bar 4
    assert result["calmar"] == pytest.approx(-1.0)  # -100 / 100
    assert result["sharpe"] == pytest.approx(-0.375 / math.sqrt(0.6875 / 3) * SQRT_DAILY)
    assert result["sortino"] == pytest.approx(-0.375 / math.sqrt(0.3125) * SQRT_DAILY)


def test_compute_metrics_when_equity_goes_negative_caps_the_return_at_minus_one() -> None:
    # 100 -> -20: the bar's return is -1 (not -1.2); drawdown 1 - (-20 / 100) = 120 %
    result = metrics_of([100.0, -20.0])

    assert result["sortino"] == pytest.approx(-1.0 * SQRT_DAILY)  # -1 / sqrt(1 / 1)
    assert result["max_drawdown_pct"] == pytest.approx(120.0)
    assert result["cagr_pct"] == -100.0
    assert result["return_pct"] == pytest.approx(-120.0)


# --- never NaN ----------------------------------------------------------------------------


@st.composite
def backtest_outputs(draw: st.DrawFn) -> dict[str, np.ndarray]:
    """Random positive equity curves, increasing bar times and random trade arrays."""
    n = draw(st.integers(1, 60))
    k = draw(st.integers(0, 20))
    money = st.floats(1e-3, 1e9, allow_nan=False, allow_infinity=False)
    signed = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False)
    spacings = draw(hnp.arrays(np.int64, n - 1, elements=st.integers(1, 400 * DAY_NS)))
    return {
        "equity": draw(hnp.arrays(np.float64, n, elements=money)),
        "times_ns": np.concatenate([[0], np.cumsum(spacings)]).astype(np.int64),
        "close": draw(hnp.arrays(np.float64, n, elements=money)),
        "trade_pnl": draw(hnp.arrays(np.float64, k, elements=signed)),
        "trade_pnl_pct": draw(hnp.arrays(np.float64, k, elements=signed)),
        "trade_hold_bars": draw(hnp.arrays(np.int64, k, elements=st.integers(0, 10_000))),
    }


@settings(max_examples=300, deadline=None)
@given(arrays=backtest_outputs(), initial_cash=st.floats(1e-3, 1e9), exposed=st.floats(0, 1))
def test_compute_metrics_when_inputs_are_random_every_value_is_finite(
    arrays: dict[str, np.ndarray], initial_cash: float, exposed: float
) -> None:
    n = len(arrays["equity"])

    trades = ClosedTrades(arrays["trade_pnl"], arrays["trade_pnl_pct"], arrays["trade_hold_bars"])
    result = compute_metrics(
        arrays["equity"], arrays["times_ns"], arrays["close"], trades,
        exposed_bars=int(exposed * n), total_fees=1.0, initial_cash=initial_cash,
    )  # fmt: skip

    for key, value in result.items():
        assert not math.isnan(value), key
        if key == "profit_factor":
            assert value >= 0.0
        else:
            assert math.isfinite(value), key
    assert 0.0 <= result["max_drawdown_pct"] <= 100.0
    assert 0 <= result["max_drawdown_bars"] <= n - 1
    assert 0.0 <= result["win_rate"] <= 100.0


def brute_force_drawdown(equity: list[float]) -> tuple[float, int]:
    """The drawdown definitions read literally, in O(n^2): (depth %, longest in bars)."""
    depth = max(1.0 - value / max(equity[: t + 1]) for t, value in enumerate(equity)) * 100.0
    longest = 0
    for start, peak in enumerate(equity):
        is_last_bar_at_peak = peak == max(equity[: start + 1]) and (
            start + 1 == len(equity) or equity[start + 1] < peak
        )
        if not is_last_bar_at_peak or start + 1 == len(equity):
            continue
        later = [t for t in range(start + 1, len(equity)) if equity[t] >= peak]
        longest = max(longest, (later[0] if later else len(equity) - 1) - start)
    return depth, longest


@settings(max_examples=300, deadline=None)
@given(equity=st.lists(st.sampled_from([90.0, 95.0, 100.0, 105.0, 110.0]), min_size=1))
def test_drawdown_when_curve_is_random_matches_the_literal_definition(
    equity: list[float],
) -> None:
    depth, longest = brute_force_drawdown(equity)

    result = metrics_of(equity)

    assert result["max_drawdown_pct"] == pytest.approx(depth)
    assert result["max_drawdown_bars"] == longest


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([100.0, 90.0, 110.0, 100.5, 1e-3, 0.0, -0.0, -5.0, math.nan]),
            st.integers(1, 6),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_equity_curve_stats_when_curve_has_flat_runs_equal_bar_by_bar_stats_bit_for_bit(
    steps: list[tuple[float, int]],
) -> None:
    # The flat-run shortcut of compute_metrics against the plain bar-by-bar pass, on curves
    # of repeated levels (zeros of both signs, negatives and NaN included).
    equity = np.repeat([value for value, _ in steps], [count for _, count in steps])

    shortcut = equity_curve_stats_nb(equity)
    plain = equity_stats_nb(equity)

    assert shortcut[0] == plain[0]
    if plain[0]:  # a curve that is not finite is refused, whatever its statistics
        assert np.array(shortcut[1:]).tobytes() == np.array(plain[1:]).tobytes()


# --- input validation ---------------------------------------------------------------------


def test_compute_metrics_when_times_are_datetime64_accepts_them() -> None:
    times = np.array(["2024-01-01", "2024-01-02", "2024-01-03"], dtype="datetime64[ns]")
    empty = np.array([])

    result = compute_metrics(
        np.array([100.0, 110.0, 99.0]),
        times,
        np.array([1.0, 1.0, 1.0]),
        ClosedTrades(empty, empty, np.array([], dtype=np.int64)),
        exposed_bars=0,
        total_fees=0.0,
        initial_cash=100.0,
    )

    assert result["return_pct"] == pytest.approx(-1.0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"equity": []}, "empty"),
        ({"equity": [100.0, float("nan"), 100.0]}, "finite"),
        ({"equity": [100.0, 100.0, float("inf")]}, "finite"),
        ({"times_ns": [0, DAY_NS]}, "one value per bar"),
        ({"times_ns": [0, DAY_NS, DAY_NS]}, "strictly increasing"),
        ({"times_ns": [0, 2 * DAY_NS, DAY_NS]}, "strictly increasing"),
        ({"close": [0.0, 1.0, 1.0]}, "close"),
        ({"pnl": [1.0], "pnl_pct": [1.0, 2.0], "hold_bars": [1]}, "one value per trade"),
        ({"pnl": [float("nan")], "pnl_pct": [1.0], "hold_bars": [1]}, "finite"),
        ({"exposed_bars": 4}, "exposed_bars"),
        ({"exposed_bars": -1}, "exposed_bars"),
    ],
)
def test_compute_metrics_when_input_is_malformed_raises_data_error(
    overrides: dict[str, Any], message: str
) -> None:
    arguments: dict[str, Any] = {
        "equity": [100.0, 101.0, 102.0],
        "times_ns": [0, DAY_NS, 2 * DAY_NS],
        "close": [1.0, 1.0, 1.0],
        "pnl": [],
        "pnl_pct": [],
        "hold_bars": [],
        "exposed_bars": 0,
    } | overrides

    with pytest.raises(DataError, match=message):
        compute_metrics(
            np.array(arguments["equity"], dtype=np.float64),
            np.array(arguments["times_ns"], dtype=np.int64),
            np.array(arguments["close"], dtype=np.float64),
            ClosedTrades(
                np.array(arguments["pnl"], dtype=np.float64),
                np.array(arguments["pnl_pct"], dtype=np.float64),
                np.array(arguments["hold_bars"], dtype=np.int64),
            ),
            exposed_bars=arguments["exposed_bars"],
            total_fees=0.0,
            initial_cash=100.0,
        )


@pytest.mark.parametrize("initial_cash", [0.0, -100.0, float("nan"), float("inf")])
def test_compute_metrics_when_initial_cash_is_not_positive_raises_config_error(
    initial_cash: float,
) -> None:
    with pytest.raises(ConfigError, match="initial_cash"):
        metrics_of([100.0, 101.0], initial_cash=initial_cash)
