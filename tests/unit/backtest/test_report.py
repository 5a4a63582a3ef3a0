"""The HTML backtest report: content, units, escaping, decimation and size on huge runs."""

from __future__ import annotations

import html
import math
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from marketbot import BacktestingEngine
from marketbot.backtest.report import (
    MAX_TABLE_TRADES,
    METRIC_FORMATS,
    format_metric,
    render_report,
    write_report,
)
from marketbot.backtest.report_charts import (
    EXIT_REASON_COLORS,
    MAX_CHART_POINTS,
    build_chart_data,
    drawdown_pct,
    min_max_indices,
)
from marketbot.backtest.result import BacktestResult
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.recommendation import Recommendation
from tests.support.frames import random_walk_frame, sample_daily_btc

PAYLOAD = "<script>alert('x')</script>"
VOID_ELEMENTS = {"meta", "link", "br", "hr", "img", "input", "col", "wbr", "source"}
SIZE_CAP_BYTES = 2_000_000


class _TagBalance(HTMLParser):
    """Records elements closed out of order or never closed (void elements aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID_ELEMENTS:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()


def _assert_valid_html(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    checker = _TagBalance()
    checker.feed(text)
    checker.close()
    assert checker.errors == []
    assert checker.stack == []


def _metrics(**overrides: float) -> dict[str, float | int]:
    metrics: dict[str, float | int] = {key: 1.5 for key in METRIC_KEYS}
    metrics.update(num_trades=2, max_drawdown_bars=12)
    metrics.update(overrides)
    return metrics


def _trades(index: pd.DatetimeIndex, rows: list[dict[str, object]]) -> pd.DataFrame:
    """A trades frame whose bars (entry_bar, exit_bar) are looked up in ``index``."""
    records = []
    for row in rows:
        entry_bar, exit_bar = int(str(row["entry_bar"])), int(str(row["exit_bar"]))
        records.append(
            {
                "entry_time": index[entry_bar],
                "exit_time": index[exit_bar],
                "entry_price": 100.0,
                "exit_price": 110.0,
                "size": 0.5,
                "pnl": 5.0,
                "pnl_pct": 10.0,
                "exit_reason": "signal",
                "direction": "long",
                "fees": 0.2,
                "tag": None,
                **row,
            }
        )
    columns = [
        "entry_time",
        "exit_time",
        "entry_price",
        "exit_price",
        "size",
        "pnl",
        "pnl_pct",
        "exit_reason",
        "direction",
        "fees",
        "entry_bar",
        "exit_bar",
        "tag",
    ]
    return pd.DataFrame(records, columns=columns)


def _result(
    bars: pd.DataFrame,
    trades: pd.DataFrame | None = None,
    *,
    equity: np.ndarray | None = None,
    strategy: str = "test_strategy",
    params: dict[str, object] | None = None,
    metrics: dict[str, float | int] | None = None,
    notes: tuple[str, ...] = (),
) -> BacktestResult:
    curve = (
        10_000.0 * bars["close"].to_numpy() / bars["close"].iloc[0] if equity is None else equity
    )
    return BacktestResult(
        strategy=strategy,
        symbol="TEST/USD",
        params=params if params is not None else {"fast": 10},
        settings={"fee_rate": 0.002, "slippage_rate": 0.001, "initial_cash": 10_000.0},
        metrics=metrics if metrics is not None else _metrics(),
        recommendation=Recommendation.GOOD,
        trades=trades if trades is not None else _trades(bars.index, []),
        equity_curve=pd.Series(curve, index=bars.index, name="equity"),
        bars=bars,
        notes=notes,
    )


def _metric_cell(text: str, key: str) -> str:
    match = re.search(rf'<tr data-metric="{key}"[^>]*>.*?<td class="num[^"]*">(.*?)</td>', text)
    assert match is not None, key
    return match.group(1)


@pytest.fixture(scope="module")
def btc_result() -> BacktestResult:
    return BacktestingEngine().run_backtest("sma_crossover", data=sample_daily_btc())


def test_write_report_when_sample_btc_writes_page_with_every_metric_and_trade(
    btc_result: BacktestResult, tmp_path: Path
) -> None:
    path = write_report(btc_result, tmp_path / "reports" / "btc.html")

    text = path.read_text(encoding="utf-8")
    assert path.is_absolute()
    _assert_valid_html(text)
    for key, spec in METRIC_FORMATS.items():
        assert html.escape(spec.label) in text
        assert _metric_cell(text, key) == html.escape(format_metric(key, btc_result.metrics[key]))
    trades = btc_result.trades
    assert len(trades) == btc_result.metrics["num_trades"] > 0
    for row in trades.itertuples():
        assert f"<td>{row.entry_time:%Y-%m-%d}</td><td>{row.exit_time:%Y-%m-%d}</td>" in text
    assert f">{btc_result.recommendation}</span>" in text
    assert "badge-marginal" in text or str(btc_result.recommendation) != "MARGINAL"
    assert "fast = <b>10</b>" in text


def test_render_report_when_page_is_written_loads_nothing_from_the_network(
    btc_result: BacktestResult,
) -> None:
    text = render_report(btc_result)

    assert re.search(r"<(script|link|img)[^>]+(src|href)=", text) is None
    assert "window.LightweightCharts" in text
    assert "TradingView Lightweight Charts" in text  # the licence's attribution notice
    assert 'href="https://www.tradingview.com/"' in text


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("return_pct", 12.5, "12.50 %"),
        ("max_drawdown_pct", 65.8637, "65.86 %"),
        ("win_rate", 41.891, "41.89 %"),
        ("max_drawdown_bars", 1107, "1,107 bars"),
        ("avg_hold_bars", 29.324, "29.3 bars"),
        ("profit_factor", math.inf, "∞"),
        ("profit_factor", 1.76, "1.76"),
        ("num_trades", 1234, "1,234"),
        ("total_fees", 183886.5948, "183,886.59"),
        ("sharpe", math.nan, "—"),
        ("not_a_metric", 0.123, "0.12"),
    ],
)
def test_format_metric_when_unit_differs_shows_the_unit(
    key: str, value: float, expected: str
) -> None:
    assert format_metric(key, value) == expected


def test_render_report_when_profit_factor_is_inf_shows_infinity_sign() -> None:
    bars = random_walk_frame(50, freq="D")
    result = _result(bars, metrics=_metrics(profit_factor=math.inf))

    text = render_report(result)

    assert _metric_cell(text, "profit_factor") == "∞"
    assert "Infinity" not in text.split("const REPORT", 1)[1]


def test_render_report_when_user_text_holds_script_escapes_it() -> None:
    bars = random_walk_frame(60, freq="1h")
    trades = _trades(bars.index, [{"entry_bar": 3, "exit_bar": 9, "tag": PAYLOAD}])
    result = _result(
        bars,
        trades,
        strategy=PAYLOAD,
        params={PAYLOAD: PAYLOAD, "window": 5},
        notes=(PAYLOAD,),
    )

    text = render_report(result)

    assert PAYLOAD not in text
    assert "&lt;script&gt;alert(" in text
    assert text.count("<script>") == 3  # the chart library, the data and the page's code
    _assert_valid_html(text)


def test_render_report_when_no_trades_says_so_and_draws_no_markers() -> None:
    bars = random_walk_frame(120, freq="D")
    result = _result(bars, metrics=_metrics(num_trades=0, profit_factor=0.0))

    text = render_report(result)

    _assert_valid_html(text)
    assert "No trades" in text
    assert '"markers": []' in text
    assert "Trade breakdown" not in text


def test_render_report_when_few_bars_draws_candles_with_entry_and_exit_markers() -> None:
    bars = random_walk_frame(200, freq="1h")
    trades = _trades(
        bars.index,
        [
            {"entry_bar": 10, "exit_bar": 20, "exit_reason": "stop_loss"},
            {"entry_bar": 30, "exit_bar": 45, "direction": "short", "exit_reason": "take_profit"},
        ],
    )

    data = build_chart_data(_result(bars, trades))

    assert data["price"]["kind"] == "candles"
    assert data["points"] == data["bars"] == 200
    assert data["intraday"] is True
    markers = data["markers"]
    assert [marker["time"] for marker in markers] == sorted(marker["time"] for marker in markers)
    assert [marker["shape"] for marker in markers] == ["arrowUp", "circle", "arrowDown", "circle"]
    assert markers[1]["color"] == EXIT_REASON_COLORS["stop_loss"]
    assert markers[3]["color"] == EXIT_REASON_COLORS["take_profit"]
    assert markers[0]["time"] == bars.index[10].timestamp()


def test_write_report_when_million_bars_stays_small_and_fast(tmp_path: Path) -> None:
    count = 1_000_000
    rng = np.random.default_rng(7)
    index = pd.date_range("2020-01-01", periods=count, freq="1min", tz="UTC", name="timestamp")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, count)))
    bars = pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0},
        index=index,
    )
    equity = 10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0005, count)))
    entry = np.arange(0, count - 10, 20)
    trades = pd.DataFrame(
        {
            "entry_time": index[entry],
            "exit_time": index[entry + 5],
            "entry_price": close[entry],
            "exit_price": close[entry + 5],
            "size": 1.0,
            "pnl": close[entry + 5] - close[entry],
            "pnl_pct": (close[entry + 5] / close[entry] - 1.0) * 100.0,
            "exit_reason": "signal",
            "direction": "long",
            "fees": 0.1,
            "entry_bar": entry,
            "exit_bar": entry + 5,
            "tag": None,
        }
    )
    result = _result(bars, trades, equity=equity)

    started = time.perf_counter()
    path = write_report(result, tmp_path / "big.html")
    elapsed = time.perf_counter() - started

    size = path.stat().st_size
    assert size < SIZE_CAP_BYTES
    assert elapsed < 10.0
    text = path.read_text(encoding="utf-8")
    half = MAX_TABLE_TRADES // 2
    assert f"Showing the first and last {half:,} of {len(trades):,} trades" in text
    assert text.count("<tr data-row>") == MAX_TABLE_TRADES
    assert f"<td>{trades['entry_time'].iloc[-1]:%Y-%m-%d %H:%M}</td>" in text


def test_build_chart_data_when_decimated_shares_times_and_keeps_extremes() -> None:
    bars = random_walk_frame(50_000, freq="1h", seed=3)
    equity = 10_000.0 * np.exp(np.cumsum(np.random.default_rng(3).normal(0.0, 0.01, 50_000)))

    data = build_chart_data(_result(bars, equity=equity))

    assert data["bars"] == 50_000
    assert data["points"] <= MAX_CHART_POINTS
    assert data["price"]["kind"] == "line"
    lengths = {len(data[key]) for key in ("time", "equity", "buy_hold", "drawdown")}
    assert lengths == {len(data["price"]["close"]), data["points"]}
    assert data["time"] == sorted(set(data["time"]))
    assert max(data["equity"]) == pytest.approx(equity.max(), rel=1e-7)
    assert min(data["equity"]) == pytest.approx(equity.min(), rel=1e-7)
    assert min(data["drawdown"]) == pytest.approx(drawdown_pct(equity).min(), rel=1e-4)
    assert max(data["price"]["close"]) == pytest.approx(bars["close"].max(), rel=1e-7)


def test_drawdown_pct_when_backtest_ran_matches_max_drawdown_metric(
    btc_result: BacktestResult,
) -> None:
    curve = drawdown_pct(btc_result.equity_curve.to_numpy())

    assert curve.max() == 0.0
    assert -curve.min() == pytest.approx(btc_result.metrics["max_drawdown_pct"], rel=1e-9)


@given(
    values=arrays(
        np.float64,
        st.integers(1, 400),
        elements=st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    ),
    buckets=st.integers(1, 60),
)
def test_min_max_indices_when_series_is_random_keeps_global_min_and_max(
    values: np.ndarray, buckets: int
) -> None:
    kept = min_max_indices(values, buckets)

    assert np.all(np.diff(kept) > 0)
    assert kept[0] == 0
    assert kept[-1] == values.size - 1
    if values.size <= 2 * buckets:
        assert kept.size == values.size
    else:
        assert kept.size <= 2 * buckets + 2
    assert values[kept].min() == values.min()
    assert values[kept].max() == values.max()


def test_min_max_indices_when_values_hold_nan_keeps_the_finite_extremes() -> None:
    values = np.array([np.nan, 3.0, np.nan, -7.0, 2.0, np.nan, 9.0, 1.0, np.nan, 0.0])

    kept = min_max_indices(values, 2)

    assert np.nanmin(values[kept]) == -7.0
    assert np.nanmax(values[kept]) == 9.0


def test_min_max_indices_when_buckets_below_one_raises() -> None:
    with pytest.raises(ValueError, match="buckets=0"):
        min_max_indices(np.arange(5.0), 0)
