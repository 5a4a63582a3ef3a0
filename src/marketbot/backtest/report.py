"""The HTML report of one backtest: a single self-contained file that opens offline.

:func:`write_report` saves and :func:`render_report` returns one HTML page with the run's
header (strategy, symbol, parameters, period, costs, risk limits, the verdict with what
qualifies it), the result's warnings and why it made no trade, every metric with its unit,
the equity curve against buy and hold, the drawdown curve headed by its deepest and current
value, the price with the trades marked, the trade list (sortable), trade breakdowns and the
data notes.

A portfolio run (``result.symbols`` not empty) gets the same page plus what only a portfolio
has: the symbols and the portfolio rules in the header, a gross-exposure chart, a sortable
per-symbol table, a symbol column in the trade list, and a price chart with a symbol selector.
That chart needs each symbol's bars, which the result does not hold (``result.bars`` is the
first symbol's): pass them as ``prices``, else only the first symbol is charted.

The charts are drawn in the browser by TradingView Lightweight Charts 5, vendored under
``marketbot/assets/vendor/lightweight-charts`` and inlined into the page together with the
chart data (see :mod:`marketbot.backtest.report_charts` for the decimation that keeps a
1,000,000-bar report at a few hundred kilobytes). The page makes no network request.

All text that comes from the user (strategy and symbol names, parameters, tags, notes) goes
through Jinja2's autoescaping, and the chart data is serialised with ``tojson``, which escapes
``<``, ``>`` and ``&``, so nothing in a result can inject markup or script.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import jinja2
import numpy as np
import numpy.typing as npt
import pandas as pd

from marketbot.backtest.report_charts import (
    EXIT_REASON_COLORS,
    LONG_ENTRY_COLOR,
    MAX_CHARTED_SYMBOLS,
    MAX_MARKER_TRADES,
    SHORT_ENTRY_COLOR,
    build_chart_data,
    drawdown_pct,
)
from marketbot.backtest.report_tables import (
    MAX_TABLE_TRADES,
    breakdowns,
    format_value,
    per_symbol_table,
    portfolio_rows,
    risk_rows,
    settings_rows,
    trade_table,
)
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult

__all__ = [
    "MAX_HEADER_SYMBOLS",
    "MAX_TABLE_TRADES",
    "METRIC_FORMATS",
    "MetricFormat",
    "axes_script",
    "drawdown_heading",
    "format_metric",
    "render_report",
    "write_report",
]

Unit = Literal["pct", "ratio", "bars", "count", "money"]


@dataclass(frozen=True, slots=True)
class MetricFormat:
    """How the report labels and formats one metric.

    Attributes:
        label: The row label.
        unit: ``pct`` (percent), ``ratio``, ``bars`` (a duration), ``count`` or ``money``
            (quote currency).
        group: The metrics table section: ``Returns``, ``Risk`` or ``Trades``.
        hint: One line on what the metric means (the row's tooltip).
    """

    label: str
    unit: Unit
    group: str
    hint: str


METRIC_FORMATS: Final[Mapping[str, MetricFormat]] = {
    "return_pct": MetricFormat("Total return", "pct", "Returns", "Final equity vs starting cash"),
    "buy_hold_return_pct": MetricFormat(
        "Buy & hold return", "pct", "Returns", "Holding the asset from first to last close"
    ),
    "cagr_pct": MetricFormat("CAGR", "pct", "Returns", "Compound annual growth rate"),
    "exposure_pct": MetricFormat("Exposure", "pct", "Returns", "Share of bars in a position"),
    "total_fees": MetricFormat("Total fees", "money", "Returns", "Fees paid, quote currency"),
    "sharpe": MetricFormat("Sharpe ratio", "ratio", "Risk", "Annualised, risk-free rate 0"),
    "sortino": MetricFormat("Sortino ratio", "ratio", "Risk", "Annualised, downside deviation"),
    "calmar": MetricFormat("Calmar ratio", "ratio", "Risk", "CAGR / max drawdown"),
    "max_drawdown_pct": MetricFormat(
        "Max drawdown", "pct", "Risk", "Deepest fall below a running equity peak"
    ),
    "max_drawdown_bars": MetricFormat(
        "Max drawdown duration", "bars", "Risk", "Longest time below a peak"
    ),
    "num_trades": MetricFormat("Trades", "count", "Trades", "Closed trades, incl. end of data"),
    "win_rate": MetricFormat("Win rate", "pct", "Trades", "Share of trades with P&L > 0"),
    "profit_factor": MetricFormat(
        "Profit factor", "ratio", "Trades", "Gross profit / gross loss (∞: no losing trade)"
    ),
    "expectancy": MetricFormat("Expectancy", "money", "Trades", "Mean P&L per trade"),
    "sqn": MetricFormat("SQN", "ratio", "Trades", "System quality number"),
    "avg_trade_pct": MetricFormat("Average trade", "pct", "Trades", "Mean trade return"),
    "best_trade_pct": MetricFormat("Best trade", "pct", "Trades", "Highest trade return"),
    "worst_trade_pct": MetricFormat("Worst trade", "pct", "Trades", "Lowest trade return"),
    "avg_hold_bars": MetricFormat("Average hold", "bars", "Trades", "Mean bars per trade"),
}
"""Label, unit and section of every metric of docs/metrics.md, in report order."""

_PORTFOLIO_FORMATS: Final[Mapping[str, MetricFormat]] = {
    "buy_hold_return_pct": MetricFormat(
        "Equal-weight buy & hold",
        "pct",
        "Returns",
        "Every symbol bought with an equal share of the cash at its first close and held",
    ),
    "exposure_pct": MetricFormat("Exposure", "pct", "Returns", "Share of bars with a position"),
}
"""What a portfolio run's metrics mean where it differs from a single-symbol run."""
MAX_HEADER_SYMBOLS: Final = 12
"""Symbols the header of a portfolio report lists; the rest fold into a "more" list."""

_HEADLINE_METRICS: Final = (
    "return_pct",
    "buy_hold_return_pct",
    "cagr_pct",
    "sharpe",
    "max_drawdown_pct",
    "profit_factor",
    "win_rate",
    "num_trades",
)
_TEMPLATE_NAME: Final = "report_template.html.j2"
_CHART_LIBRARY: Final = ("assets", "vendor", "lightweight-charts")
_CHART_LIBRARY_FILE: Final = "lightweight-charts.standalone.production.js"
_AXES_SCRIPT: Final = "report_axes.js"
_BADGE_CLASSES: Final = {"EXCELLENT": "excellent", "GOOD": "good", "MARGINAL": "marginal"}


def format_metric(key: str, value: float | int | None) -> str:
    """A metric value as the report shows it, with its unit.

    Percent metrics get `` %`` (``12.50 %``), durations `` bars``, money two decimals with
    thousands separators; +inf is ``∞`` (a profit factor with no losing trade), NaN or None
    is ``—``. Keys not in :data:`METRIC_FORMATS` are formatted as plain numbers.
    """
    unit = METRIC_FORMATS[key].unit if key in METRIC_FORMATS else "ratio"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return _UNIT_FORMATS[unit](float(value))


def _format_bars(value: float) -> str:
    return f"{value:,.0f} bars" if value.is_integer() else f"{value:,.1f} bars"


_UNIT_FORMATS: Final[Mapping[Unit, Callable[[float], str]]] = {
    "pct": lambda value: f"{value:,.2f} %",
    "ratio": lambda value: f"{value:,.2f}",
    "bars": _format_bars,
    "count": lambda value: f"{value:,.0f}",
    "money": lambda value: f"{value:,.2f}",
}


def render_report(
    result: BacktestResult, *, prices: Mapping[str, pd.DataFrame] | None = None
) -> str:
    """The report of ``result`` as one self-contained HTML document.

    Args:
        result: A finished backtest.
        prices: Portfolio runs only: each symbol's bars (the frames the run traded on: a
            ``close`` column and a DatetimeIndex or ``timestamp`` column), for the price
            chart's symbol selector and the equal-weight buy and hold curve. Without it the
            price chart shows the first symbol (``result.bars``) alone. Ignored for a
            single-symbol run. Default: ``result.prices`` (set by portfolio backtests).

    Returns:
        The HTML text (UTF-8 safe), with the chart library and the data inlined.

    Raises:
        DataError: a frame of ``prices`` has no ``close`` column or unusable times.
    """
    return package_template("marketbot.backtest", _TEMPLATE_NAME).render(
        **_context(result, prices if prices is not None else result.prices)
    )


def write_report(
    result: BacktestResult,
    path: str | Path,
    *,
    prices: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write the report of ``result`` to ``path`` (parent folders are created).

    Args:
        result: A finished backtest.
        path: Where to write the ``.html`` file; an existing file is replaced.
        prices: Portfolio runs only: each symbol's bars, as for :func:`render_report`.

    Returns:
        The absolute path written.

    Raises:
        DataError: a frame of ``prices`` has no ``close`` column or unusable times.
    """
    return write_html(render_report(result, prices=prices), path)


def write_html(html: str, path: str | Path) -> Path:
    """Write a rendered report to ``path`` (folders created); return the absolute path."""
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target


@functools.cache
def package_template(package: str, name: str) -> jinja2.Template:
    """A report template shipped in ``package``: autoescaped, strict about missing values."""
    source = resources.files(package).joinpath(name).read_text("utf-8")
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.from_string(source)


@functools.cache
def axes_script() -> str:
    """The reports' shared chart-axis code (``ReportAxes``), to inline before the page's code.

    It gives log scales round 1, 2, 5 x 10^k ticks, keeps tick labels whole at the chart edges
    and fits the bars with room either side; it needs the chart library loaded first.
    """
    return resources.files("marketbot.backtest").joinpath(_AXES_SCRIPT).read_text("utf-8")


@functools.cache
def _chart_library() -> str:
    folder = resources.files("marketbot").joinpath(*_CHART_LIBRARY)
    return folder.joinpath(_CHART_LIBRARY_FILE).read_text("utf-8")


def _context(result: BacktestResult, prices: Mapping[str, pd.DataFrame] | None) -> dict[str, Any]:
    index = pd.DatetimeIndex(result.equity_curve.index)
    time_format = _time_format(index)
    trades = result.trades
    recommendation = str(result.recommendation)
    portfolio = bool(result.symbols)
    formats = {**METRIC_FORMATS, **_PORTFOLIO_FORMATS} if portfolio else METRIC_FORMATS
    chart_data = build_chart_data(result, prices)
    context = {
        "title": f"{result.strategy} on {_symbols_title(result.symbols, result.symbol)}",
        "strategy": result.strategy,
        "symbol": result.symbol,
        "portfolio": portfolio,
        "recommendation": recommendation,
        "verdict_line": result.verdict_line,
        "verdict_qualifier": _qualifier(result.verdict_line, recommendation),
        "badge_class": _BADGE_CLASSES.get(recommendation.upper(), "failed"),
        "warnings": [str(warning) for warning in result.warnings],
        "no_trade_reason": result.no_trade_reason,
        "risk_limits": risk_rows(result.settings),
        "drawdown": drawdown_heading(result.equity_curve.to_numpy(dtype=np.float64)),
        "params": [(str(key), format_value(value)) for key, value in result.params.items()],
        "period": _period(index, time_format),
        "costs": settings_rows(result.settings),
        "headline": [_metric_row(key, result.metrics, formats) for key in _HEADLINE_METRICS],
        "metric_groups": _metric_groups(result.metrics, formats),
        "notes": [str(note) for note in result.notes],
        "table": trade_table(trades, time_format, with_symbol=portfolio),
        "breakdowns": breakdowns(trades),
        "num_trades": len(trades),
        "markers_shown": 0 < len(trades) <= MAX_MARKER_TRADES,
        "max_marker_trades": MAX_MARKER_TRADES,
        "exit_colors": sorted(EXIT_REASON_COLORS.items()),
        "long_color": LONG_ENTRY_COLOR,
        "short_color": SHORT_ENTRY_COLOR,
        "chart_data": chart_data,
        "chart_library": _chart_library(),
        "axes_script": axes_script(),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if portfolio:
        context |= _portfolio_context(result, chart_data)
    return context


def _portfolio_context(result: BacktestResult, chart_data: Mapping[str, Any]) -> dict[str, Any]:
    """What only a portfolio report shows: symbols, rules, per-symbol table, chart selector."""
    symbols = [str(symbol) for symbol in result.symbols]
    charted: list[Mapping[str, Any]] = chart_data["symbols"]
    names = [str(entry["name"]) for entry in charted]
    per_symbol = result.per_symbol
    return {
        "symbol_count": f"{len(symbols):,}",
        "symbols_head": symbols[:MAX_HEADER_SYMBOLS],
        "symbols_rest": symbols[MAX_HEADER_SYMBOLS:],
        "portfolio_rules": portfolio_rows(result.settings.get("portfolio")),
        "per_symbol": None
        if per_symbol is None
        else per_symbol_table(per_symbol, result.trades, names),
        "charted": [
            {"name": name, "trades": f"{int(entry['trades']):,}"}
            for name, entry in zip(names, charted, strict=True)
        ],
        "charted_note": _charted_note(symbols, names),
        "markers_shown": any(entry["marked"] for entry in charted),
        "benchmark_drawn": any(value is not None for value in chart_data["buy_hold"]),
        "exposure_drawn": result.exposure is not None,
    }


def drawdown_heading(equity: npt.ArrayLike) -> dict[str, str]:
    """The deepest and the current drawdown of an equity curve, as the report heads them.

    Both are percent below the running peak, one decimal, signed with a true minus sign
    (U+2212), e.g. ``-23.4 %`` written with U+2212; a curve that never fell (or is empty)
    gives ``0.0 %``.
    """
    below = drawdown_pct(equity)
    if below.size == 0:
        return {"max": _signed_pct(0.0), "current": _signed_pct(0.0)}
    return {"max": _signed_pct(float(below.min())), "current": _signed_pct(float(below[-1]))}


def _signed_pct(value: float) -> str:
    # A real minus sign: the hyphen looks like a dash beside the heading's parenthesis.
    text = f"{value:,.1f}"
    if float(text.replace(",", "")) == 0.0:
        return "0.0 %"
    return text.replace("-", "\u2212") + " %"


def _qualifier(verdict: str, recommendation: str) -> str:
    """What the verdict line adds to the bare recommendation (e.g. buy and hold did better)."""
    if not verdict.startswith(recommendation):
        return verdict
    return verdict[len(recommendation) :].lstrip("; ")


def _charted_note(symbols: Sequence[str], charted: Sequence[str]) -> str:
    """Why the price chart's selector offers fewer symbols than the run has, if it does."""
    if len(charted) == len(symbols):
        return ""
    if len(charted) <= 1:
        return (
            f"Only {charted[0] if charted else symbols[0]} is charted: this report was made "
            "without the other symbols' prices."
        )
    if len(charted) < min(len(symbols), MAX_CHARTED_SYMBOLS):
        return f"{len(charted):,} of the {len(symbols):,} symbols have prices and are charted."
    return (
        f"The selector offers the {len(charted):,} symbols with the most trades "
        f"(of {len(symbols):,}); the per-symbol table lists them all."
    )


def _symbols_title(symbols: Sequence[str], symbol: str) -> str:
    if not symbols:
        return symbol
    if len(symbols) <= 3:
        return ", ".join(symbols)
    return f"{len(symbols):,} symbols"


def _metric_row(
    key: str,
    metrics: Mapping[str, float | int],
    formats: Mapping[str, MetricFormat],
) -> dict[str, str]:
    spec = formats.get(key, MetricFormat(key, "ratio", "Other", ""))
    value = metrics.get(key)
    return {
        "key": key,
        "label": spec.label,
        "hint": spec.hint,
        "value": format_metric(key, value),
        "tone": _tone(key, value),
    }


def _metric_groups(
    metrics: Mapping[str, float | int], formats: Mapping[str, MetricFormat]
) -> list[tuple[str, list[dict[str, str]]]]:
    groups: dict[str, list[dict[str, str]]] = {"Returns": [], "Risk": [], "Trades": []}
    for key, spec in formats.items():
        if key in metrics:
            groups[spec.group].append(_metric_row(key, metrics, formats))
    others = [_metric_row(key, metrics, formats) for key in metrics if key not in formats]
    if others:
        groups["Other"] = others
    return [(name, rows) for name, rows in groups.items() if rows]


def _tone(key: str, value: float | int | None) -> str:
    """``pos``/``neg`` for return-like metrics, so the page can colour gains and losses."""
    signed = ("return_pct", "buy_hold_return_pct", "cagr_pct", "avg_trade_pct", "expectancy")
    if value is None or key not in signed or not math.isfinite(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


def _time_format(index: pd.DatetimeIndex) -> str:
    """Dates alone for daily (or longer) bars at midnight, else minutes (seconds if needed)."""
    if len(index) == 0:
        return "%Y-%m-%d"
    seconds = np.floor_divide(index.as_unit("ns").asi8, 1_000_000_000)
    if np.all(seconds % 86_400 == 0):
        return "%Y-%m-%d"
    return "%Y-%m-%d %H:%M:%S" if np.any(seconds % 60 != 0) else "%Y-%m-%d %H:%M"


def _period(index: pd.DatetimeIndex, time_format: str) -> dict[str, str]:
    if len(index) == 0:
        return {"start": "—", "end": "—", "bars": "0", "timeframe": "—"}
    timeframe = seconds_to_timeframe(infer_bar_seconds(index.as_unit("ns").asi8))
    return {
        "start": index[0].strftime(time_format),
        "end": index[-1].strftime(time_format),
        "bars": f"{len(index):,}",
        "timeframe": timeframe,
    }
