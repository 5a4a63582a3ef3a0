"""The HTML backtest report: content, units, escaping, decimation and size on huge runs."""

from __future__ import annotations

import dataclasses
import html
import json
import math
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from marketbot import BacktestingEngine
from marketbot.backtest.report import (
    MAX_HEADER_SYMBOLS,
    MAX_TABLE_TRADES,
    METRIC_FORMATS,
    drawdown_heading,
    format_metric,
    render_report,
    write_report,
)
from marketbot.backtest.report_charts import (
    EXIT_REASON_COLORS,
    MAX_CHART_POINTS,
    MAX_CHARTED_SYMBOLS,
    MAX_PORTFOLIO_CHART_VALUES,
    build_chart_data,
    drawdown_pct,
    min_max_indices,
)
from marketbot.backtest.report_tables import risk_rows, settings_rows
from marketbot.backtest.result import BacktestResult
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import DataError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.recommendation import Recommendation
from marketbot.core.risk_limits import RiskLimits
from tests.support.frames import SAMPLE_DIR, random_walk_frame, sample_daily_btc

PAYLOAD = "<script>alert('x')</script>"
VOID_ELEMENTS = {"meta", "link", "br", "hr", "img", "input", "col", "wbr", "source"}
SIZE_CAP_BYTES = 2_000_000
PORTFOLIO_SIZE_CAP_BYTES = 1_250_000


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


# --- What qualifies the result: drawdown heading, verdict, warnings, risk limits --------------


def _curve_result(equity: list[float], **changes: Any) -> BacktestResult:
    bars = random_walk_frame(len(equity), freq="D")
    return dataclasses.replace(_result(bars, equity=np.asarray(equity)), **changes)


def test_render_report_when_equity_falls_after_a_peak_heads_drawdown_with_max_and_current() -> None:
    result = _curve_result([100.0, 120.0, 90.0, 99.0])

    text = render_report(result)

    # 90 is 25 % below the 120 peak; 99 is still 17.5 % below it.
    assert "Drawdown (max \u221225.0 %)" in text
    assert "current \u221217.5 %" in text


@pytest.mark.parametrize(
    ("equity", "expected"),
    [
        ([100.0, 110.0, 120.0], {"max": "0.0 %", "current": "0.0 %"}),
        ([], {"max": "0.0 %", "current": "0.0 %"}),
        ([100.0, 50.0, 100.0], {"max": "\u221250.0 %", "current": "0.0 %"}),
        ([100.0, 99.99], {"max": "0.0 %", "current": "0.0 %"}),
    ],
)
def test_drawdown_heading_when_curve_is_given_formats_max_and_current(
    equity: list[float], expected: dict[str, str]
) -> None:
    assert drawdown_heading(np.asarray(equity, dtype=np.float64)) == expected


def test_render_report_when_buy_and_hold_made_more_shows_it_beside_the_verdict() -> None:
    result = _curve_result(
        [100.0, 101.0], metrics=_metrics(return_pct=1.0, buy_hold_return_pct=81.2)
    )

    text = render_report(result)

    assert ">GOOD</span>" in text
    assert '<span class="qualifier">buy &amp; hold made more (+81.2 %)</span>' in text


def test_render_report_when_result_has_warnings_and_no_trade_reason_shows_both() -> None:
    warning = "implausible Sharpe ratio: 6.10 (over 5); check with `marketbot lookahead`"
    reason = "no entry signal between 2020-01-01 and 2020-01-04"
    result = _curve_result(
        [100.0, 100.0, 100.0], warnings=(warning, PAYLOAD), no_trade_reason=reason
    )

    text = render_report(result)

    _assert_valid_html(text)
    assert f"<li>{warning}</li>" in text
    assert PAYLOAD not in text
    assert f"<b>No trades:</b> {reason}" in text
    assert f"No trades: {reason}" in text  # the trade list says why it is empty


def test_render_report_when_run_had_no_warnings_shows_no_warning_box() -> None:
    text = render_report(_curve_result([100.0, 101.0]))

    assert 'class="warnings"' not in text
    assert "<b>No trades:</b>" not in text
    assert "Risk limits" not in text


def test_render_report_when_risk_limits_were_in_force_lists_them_in_the_header() -> None:
    limits = RiskLimits(max_position_size_usd=1_000.0, max_daily_loss_usd=500.5)
    settings = {"initial_cash": 10_000.0, "risk": limits.model_dump()}
    result = _curve_result([100.0, 101.0], settings=settings)

    text = render_report(result)

    assert "<h3>Risk limits</h3>" in text
    for label, value in [
        ("Max position", "$1,000"),
        ("Daily loss", "$500.50"),
        ("Total exposure", "$5,000"),
        ("Max drawdown", "20 %"),
        ("Max positions", "10"),
        ("Daily reset", "00:00 UTC"),
    ]:
        assert f'<span class="chip">{label} <b>{value}</b></span>' in text
    assert "max_position_size_usd" not in text  # not dumped as a raw dict among the costs


def test_settings_rows_when_risk_is_off_leaves_it_out() -> None:
    rows = settings_rows({"fee_rate": 0.002, "risk": None})

    assert rows == [("Fee", "0.2 %")]
    assert risk_rows({"risk": None}) == []


def test_render_report_when_charts_are_drawn_keeps_axis_labels_whole() -> None:
    text = render_report(_curve_result([100.0, 120.0, 90.0, 99.0]))

    # Tick labels at the top and bottom edge are dropped, not cut in half.
    assert "entireTextOnly: true" in text
    # The library's log ticks (2,800, 6,000, 13,000) are replaced by round ones.
    assert "function logTicks(" in text


# --- Portfolio reports -----------------------------------------------------------------------


class _TableRows(HTMLParser):
    """The text of every cell of the <table> whose class list holds ``table_class``."""

    def __init__(self, table_class: str) -> None:
        super().__init__()
        self.table_class = table_class
        self.depth = 0  # > 0 inside the wanted table
        self.section = ""
        self.head: list[str] = []
        self.body: list[list[str]] = []
        self.foot: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "table" and (self.depth or self.table_class in classes):
            self.depth += 1
        elif self.depth and tag in {"thead", "tbody", "tfoot"}:
            self.section = tag
        elif self.depth and tag == "tr" and self.section != "thead":
            (self.body if self.section == "tbody" else self.foot).append([])
        elif self.depth and tag in {"td", "th"}:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in {"td", "th"} and self.cell is not None:
            text = "".join(self.cell).strip()
            if self.section == "thead":
                self.head.append(text)
            else:
                (self.body if self.section == "tbody" else self.foot)[-1].append(text)
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _table(text: str, table_class: str) -> _TableRows:
    parser = _TableRows(table_class)
    parser.feed(text)
    parser.close()
    return parser


def _report_data(text: str) -> dict[str, Any]:
    match = re.search(r"const REPORT = (.*?);</script>", text, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def _sample_daily(name: str) -> pd.DataFrame:
    return pd.read_csv(SAMPLE_DIR / f"{name}_usd_1d_bitstamp.csv")


@pytest.fixture(scope="module")
def crypto_prices() -> dict[str, pd.DataFrame]:
    return {"bitcoin": _sample_daily("btc"), "ethereum": _sample_daily("eth")}


@pytest.fixture(scope="module")
def crypto_portfolio(crypto_prices: dict[str, pd.DataFrame]) -> BacktestResult:
    return BacktestingEngine().run_backtest("sma_crossover", data=crypto_prices, max_exposure=1.0)


@pytest.fixture(scope="module")
def wide_prices() -> dict[str, pd.DataFrame]:
    return {
        f"SYM{number:02d}/USDT": random_walk_frame(10_000, seed=100 + number, freq="1h")
        for number in range(50)
    }


@pytest.fixture(scope="module")
def wide_portfolio(wide_prices: dict[str, pd.DataFrame]) -> BacktestResult:
    return BacktestingEngine().run_backtest(
        "sma_crossover", data=wide_prices, max_open_positions=10
    )


def test_render_report_when_portfolio_lists_every_symbol_in_the_per_symbol_table(
    crypto_portfolio: BacktestResult, crypto_prices: dict[str, pd.DataFrame]
) -> None:
    text = render_report(crypto_portfolio, prices=crypto_prices)

    _assert_valid_html(text)
    table = _table(text, "per-symbol")
    assert table.head == ["Symbol", "Trades", "Win rate", "P&L", "Fees", "Contribution"]
    per_symbol = crypto_portfolio.per_symbol
    assert per_symbol is not None
    expected = [
        [
            str(row.symbol),
            f"{row.num_trades:,}",
            f"{row.win_rate:.1f} %",
            f"{row.pnl:,.2f}",
            f"{row.fees:,.2f}",
            f"{row.contribution_pct:,.2f} %",
        ]
        for row in per_symbol.sort_values("contribution_pct", ascending=False).itertuples()
    ]
    assert table.body == expected
    total = table.foot[0]
    assert total[:2] == ["All symbols", f"{len(crypto_portfolio.trades):,}"]
    assert total[-1] == format_metric("return_pct", crypto_portfolio.metrics["return_pct"])


def test_render_report_when_portfolio_shows_symbols_rules_and_symbol_column(
    crypto_portfolio: BacktestResult,
) -> None:
    text = render_report(crypto_portfolio)

    assert 'on a portfolio of</span> <span class="symbol">2 symbols' in text
    assert '<span class="chip">bitcoin</span>' in text
    assert '<span class="chip">ethereum</span>' in text
    assert "Max exposure <b>100 % of equity</b>" in text
    assert "Max positions <b>one per symbol</b>" in text
    assert "max_open_positions" not in text.split("<main>")[0]  # no raw settings dict
    assert "Equal-weight buy &amp; hold" in text
    table = _table(text, "trades")
    assert table.head[:3] == ["#", "Symbol", "Direction"]
    trades = crypto_portfolio.trades
    assert [row[1] for row in table.body] == trades["symbol"].astype(str).tolist()
    assert [row[3] for row in table.body] == [f"{t:%Y-%m-%d}" for t in trades["entry_time"]]


def test_build_chart_data_when_portfolio_draws_exposure_in_percent_of_equity(
    crypto_portfolio: BacktestResult,
) -> None:
    data = build_chart_data(crypto_portfolio)

    assert crypto_portfolio.exposure is not None
    full = 100.0 * crypto_portfolio.exposure / crypto_portfolio.equity_curve
    assert len(data["exposure"]) == len(data["time"]) == data["points"]
    assert data["exposure"][-1] == pytest.approx(full.iloc[-1], rel=1e-3, abs=1e-9)
    assert max(data["exposure"]) == pytest.approx(full.max(), rel=1e-3)
    assert data["exposure_cap"] == pytest.approx(100.0)
    assert 'id="chart-exposure"' in render_report(crypto_portfolio)


def test_build_chart_data_when_prices_given_charts_each_symbol_and_equal_weight_hold(
    crypto_portfolio: BacktestResult, crypto_prices: dict[str, pd.DataFrame]
) -> None:
    data = build_chart_data(crypto_portfolio, crypto_prices)

    cash = float(crypto_portfolio.settings["initial_cash"])
    assert data["buy_hold"][-1] / cash - 1.0 == pytest.approx(
        crypto_portfolio.metrics["buy_hold_return_pct"] / 100.0, rel=1e-6
    )
    counts = crypto_portfolio.trades["symbol"].value_counts()
    assert [entry["name"] for entry in data["symbols"]] == ["bitcoin", "ethereum"]  # most trades
    for entry in data["symbols"]:
        name = entry["name"]
        close = normalize_ohlcv(crypto_prices[name])["close"]
        assert entry["trades"] == counts[name]
        assert len(entry["marker_time"]) == len(entry["marker_style"]) == 2 * counts[name]
        assert entry["marker_time"] == sorted(entry["marker_time"])
        assert max(v for v in entry["close"] if v is not None) == pytest.approx(close.max())
        assert len(entry["close"]) == data["points"]
    styles = {json.dumps(style, sort_keys=True) for style in data["marker_styles"]}
    assert len(styles) == len(data["marker_styles"])  # each style sent once


def test_render_report_when_prices_given_offers_a_symbol_selector(
    crypto_portfolio: BacktestResult, crypto_prices: dict[str, pd.DataFrame]
) -> None:
    text = render_report(crypto_portfolio, prices=crypto_prices)

    assert '<select id="symbol-picker">' in text
    assert re.findall(r'<option value="(\d+)">([^<]*)</option>', text) == [
        ("0", "bitcoin · 74 trades"),
        ("1", "ethereum · 44 trades"),
    ]
    assert 'data-chart-symbol="1"' in text  # the per-symbol row links to its chart


def test_render_report_when_portfolio_result_carries_prices_uses_them(
    crypto_portfolio: BacktestResult,
) -> None:
    data = _report_data(render_report(crypto_portfolio))
    assert {entry["name"] for entry in data["symbols"]} == {"bitcoin", "ethereum"}


def test_render_report_when_portfolio_has_no_prices_charts_only_the_first_symbol(
    crypto_portfolio: BacktestResult,
) -> None:
    text = render_report(dataclasses.replace(crypto_portfolio, prices=None))

    data = _report_data(text)
    assert [entry["name"] for entry in data["symbols"]] == ["bitcoin"]
    first = crypto_portfolio.bars["close"]
    assert max(v for v in data["symbols"][0]["close"] if v is not None) == pytest.approx(
        first.max()
    )
    assert all(value is None for value in data["buy_hold"])
    assert "<select" not in text
    assert "Only bitcoin is charted" in text
    assert "needs every symbol's prices" in text


def test_render_report_when_prices_frame_has_no_close_raises_data_error(
    crypto_portfolio: BacktestResult, crypto_prices: dict[str, pd.DataFrame]
) -> None:
    prices = {"bitcoin": crypto_prices["bitcoin"].drop(columns="close")}

    with pytest.raises(DataError, match=r"prices\['bitcoin'\]: needs a 'close' column"):
        render_report(crypto_portfolio, prices=prices)


def test_render_report_when_symbol_name_holds_script_escapes_it() -> None:
    frames = {
        PAYLOAD: random_walk_frame(400, seed=1, freq="1h"),
        "plain": random_walk_frame(400, seed=2, freq="1h"),
    }
    result = BacktestingEngine().run_backtest(
        "sma_crossover", data=frames, params={"fast": 5, "slow": 20}
    )
    assert (result.trades["symbol"] == PAYLOAD).any()

    text = render_report(result, prices=frames)

    assert PAYLOAD not in text
    assert "&lt;script&gt;alert(" in text  # header, selector, tables
    assert "\\u003cscript\\u003ealert(" in text  # the chart data
    assert text.count("<script>") == 3
    assert text.count("</script>") == 3
    _assert_valid_html(text)


def test_write_report_when_50_symbols_of_10k_bars_stays_small(
    wide_portfolio: BacktestResult, wide_prices: dict[str, pd.DataFrame], tmp_path: Path
) -> None:
    started = time.perf_counter()
    path = write_report(wide_portfolio, tmp_path / "wide.html", prices=wide_prices)
    elapsed = time.perf_counter() - started

    assert path.stat().st_size < PORTFOLIO_SIZE_CAP_BYTES
    assert elapsed < 10.0
    text = path.read_text(encoding="utf-8")
    _assert_valid_html(text)
    data = _report_data(text)
    series = 5 + MAX_CHARTED_SYMBOLS  # time, equity, buy & hold, drawdown, exposure, closes
    assert data["bars"] == 10_000
    assert data["points"] <= min(MAX_CHART_POINTS, MAX_PORTFOLIO_CHART_VALUES // series)
    counts = wide_portfolio.trades["symbol"].value_counts()
    charted = [entry["name"] for entry in data["symbols"]]
    assert len(charted) == MAX_CHARTED_SYMBOLS
    assert [entry["trades"] for entry in data["symbols"]] == sorted(
        (int(count) for count in counts), reverse=True
    )[:MAX_CHARTED_SYMBOLS]
    assert f"the {MAX_CHARTED_SYMBOLS} symbols with the most trades (of 50)" in text
    assert f"+ {50 - MAX_HEADER_SYMBOLS} more" in text
    assert len(_table(text, "per-symbol").body) == 50
    equity = wide_portfolio.equity_curve
    assert max(data["equity"]) == pytest.approx(equity.max(), rel=1e-7)
    assert min(data["equity"]) == pytest.approx(equity.min(), rel=1e-7)


@settings(max_examples=25, deadline=None)
@given(symbols=st.integers(1, 60), bars=st.integers(2, 30_000), seed=st.integers(0, 2**16))
def test_build_chart_data_when_portfolio_is_wide_keeps_the_value_budget_and_extremes(
    symbols: int, bars: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-01", periods=bars, freq="1h", tz="UTC", name="timestamp")
    names = tuple(f"S{number}" for number in range(symbols))
    closes = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (bars, symbols)), axis=0))
    prices = {
        name: pd.DataFrame({"close": closes[:, k]}, index=index) for k, name in enumerate(names)
    }
    equity = pd.Series(10_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.005, bars))), index=index)
    result = BacktestResult(
        strategy="test_strategy",
        symbol=",".join(names),
        params={},
        settings={"initial_cash": 10_000.0},
        metrics=_metrics(),
        recommendation=Recommendation.GOOD,
        trades=_trades(index, []).assign(symbol=pd.Series(dtype=object)),
        equity_curve=equity,
        bars=prices[names[0]],
        symbols=names,
        per_symbol=pd.DataFrame(
            {"symbol": names, "num_trades": 0, "win_rate": 0.0, "pnl": 0.0, "fees": 0.0,
             "contribution_pct": 0.0}
        ),
        exposure=equity * rng.uniform(0.0, 1.0, bars),
    )  # fmt: skip

    data = build_chart_data(result, prices)

    shown = min(symbols, MAX_CHARTED_SYMBOLS)
    values = data["points"] * (5 + shown)
    assert data["points"] == bars or values <= MAX_PORTFOLIO_CHART_VALUES
    assert data["points"] <= MAX_CHART_POINTS
    assert max(data["equity"]) == pytest.approx(equity.max(), rel=1e-7)
    assert min(data["drawdown"]) == pytest.approx(drawdown_pct(equity.to_numpy()).min(), rel=1e-4)
    for entry in data["symbols"]:
        close = prices[entry["name"]]["close"]
        assert max(entry["close"]) == pytest.approx(close.max(), rel=1e-5)
        assert min(entry["close"]) == pytest.approx(close.min(), rel=1e-5)
