"""The HTML report of one backtest: a single self-contained file that opens offline.

:func:`write_report` saves and :func:`render_report` returns one HTML page with the run's
header (strategy, symbol, parameters, period, costs, recommendation), every metric with its
unit, the equity curve against buy and hold, the drawdown curve, the price with the trades
marked, the trade list (sortable), trade breakdowns and the data notes.

The charts are drawn in the browser by TradingView Lightweight Charts 4, vendored under
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
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import jinja2
import numpy as np
import pandas as pd

from marketbot.backtest.report_charts import (
    EXIT_REASON_COLORS,
    LONG_ENTRY_COLOR,
    MAX_MARKER_TRADES,
    SHORT_ENTRY_COLOR,
    build_chart_data,
)
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult

__all__ = [
    "MAX_TABLE_TRADES",
    "METRIC_FORMATS",
    "MetricFormat",
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
MAX_TABLE_TRADES: Final = 1000
"""Most trades listed; a longer run lists its first and last ``MAX_TABLE_TRADES // 2``."""
_TRADE_COLUMNS: Final = (
    ("#", "num"),
    ("Direction", "text"),
    ("Entry time", "text"),
    ("Exit time", "text"),
    ("Entry price", "num"),
    ("Exit price", "num"),
    ("Size", "num"),
    ("P&L", "num"),
    ("P&L %", "num"),
    ("Fees", "num"),
    ("Exit reason", "text"),
    ("Entry bar", "num"),
    ("Exit bar", "num"),
    ("Bars held", "num"),
    ("Tag", "text"),
)
_TEMPLATE_NAME: Final = "report_template.html.j2"
_CHART_LIBRARY: Final = ("assets", "vendor", "lightweight-charts")
_CHART_LIBRARY_FILE: Final = "lightweight-charts.standalone.production.js"
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


def render_report(result: BacktestResult) -> str:
    """The report of ``result`` as one self-contained HTML document.

    Args:
        result: A finished backtest.

    Returns:
        The HTML text (UTF-8 safe), with the chart library and the data inlined.
    """
    return _template().render(**_context(result))


def write_report(result: BacktestResult, path: str | Path) -> Path:
    """Write the report of ``result`` to ``path`` (parent folders are created).

    Args:
        result: A finished backtest.
        path: Where to write the ``.html`` file; an existing file is replaced.

    Returns:
        The absolute path written.
    """
    target = Path(path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_report(result), encoding="utf-8")
    return target


@functools.cache
def _template() -> jinja2.Template:
    source = resources.files("marketbot.backtest").joinpath(_TEMPLATE_NAME).read_text("utf-8")
    environment = jinja2.Environment(
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment.from_string(source)


@functools.cache
def _chart_library() -> str:
    folder = resources.files("marketbot").joinpath(*_CHART_LIBRARY)
    return folder.joinpath(_CHART_LIBRARY_FILE).read_text("utf-8")


def _context(result: BacktestResult) -> dict[str, Any]:
    index = pd.DatetimeIndex(result.equity_curve.index)
    time_format = _time_format(index)
    trades = result.trades
    recommendation = str(result.recommendation)
    return {
        "title": f"{result.strategy} on {result.symbol}",
        "strategy": result.strategy,
        "symbol": result.symbol,
        "recommendation": recommendation,
        "badge_class": _BADGE_CLASSES.get(recommendation.upper(), "failed"),
        "params": [(str(key), _format_value(value)) for key, value in result.params.items()],
        "period": _period(index, time_format),
        "costs": _costs(result.settings),
        "headline": [_metric_row(key, result.metrics) for key in _HEADLINE_METRICS],
        "metric_groups": _metric_groups(result.metrics),
        "notes": [str(note) for note in result.notes],
        "table": _trade_table(trades, time_format),
        "breakdowns": _breakdowns(trades),
        "num_trades": len(trades),
        "markers_shown": 0 < len(trades) <= MAX_MARKER_TRADES,
        "max_marker_trades": MAX_MARKER_TRADES,
        "exit_colors": sorted(EXIT_REASON_COLORS.items()),
        "long_color": LONG_ENTRY_COLOR,
        "short_color": SHORT_ENTRY_COLOR,
        "chart_data": build_chart_data(result),
        "chart_library": _chart_library(),
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _metric_row(key: str, metrics: Mapping[str, float | int]) -> dict[str, str]:
    spec = METRIC_FORMATS.get(key, MetricFormat(key, "ratio", "Other", ""))
    value = metrics.get(key)
    return {
        "key": key,
        "label": spec.label,
        "hint": spec.hint,
        "value": format_metric(key, value),
        "tone": _tone(key, value),
    }


def _metric_groups(metrics: Mapping[str, float | int]) -> list[tuple[str, list[dict[str, str]]]]:
    groups: dict[str, list[dict[str, str]]] = {"Returns": [], "Risk": [], "Trades": []}
    for key, spec in METRIC_FORMATS.items():
        if key in metrics:
            groups[spec.group].append(_metric_row(key, metrics))
    others = [_metric_row(key, metrics) for key in metrics if key not in METRIC_FORMATS]
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


def _costs(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's settings as (label, text) pairs, exits only when set."""
    rows: list[tuple[str, str]] = []
    for key, label in (("fee_rate", "Fee"), ("slippage_rate", "Slippage")):
        if key in settings:
            rows.append((label, _fraction_as_pct(settings[key])))
    if "initial_cash" in settings:
        rows.append(("Initial cash", _format_value(settings["initial_cash"], money=True)))
    sizing = settings.get("sizing")
    if sizing is not None:
        size = settings.get("size")
        text = str(sizing) if size is None else f"{sizing} ({_format_value(size)})"
        rows.append(("Sizing", text))
    if "allow_short" in settings:
        allow = settings["allow_short"]
        rows.append(("Shorts", "if the strategy emits them" if allow is None else _yes_no(allow)))
    exits = settings.get("exits")
    if isinstance(exits, Mapping):
        rows.extend(_exit_rows(exits))
    known = {"fee_rate", "slippage_rate", "initial_cash", "sizing", "size", "allow_short", "exits"}
    rows.extend(
        (str(key), _format_value(value)) for key, value in settings.items() if key not in known
    )
    return rows


def _exit_rows(exits: Mapping[str, Any]) -> list[tuple[str, str]]:
    labels = {
        "stop_loss": "Stop-loss",
        "take_profit": "Take-profit",
        "trailing_stop": "Trailing stop",
        "trailing_activation": "Trailing activation",
    }
    rows = [
        (label, _fraction_as_pct(exits[key]))
        for key, label in labels.items()
        if exits.get(key) is not None
    ]
    hold = exits.get("max_hold_seconds")
    if isinstance(hold, int | float) and hold > 0:
        rows.append(("Max hold", _duration(float(hold))))
    rows.extend(
        (str(key), _format_value(value))
        for key, value in exits.items()
        if key not in labels and key != "max_hold_seconds" and value is not None
    )
    return rows or [("Exits", "signals only")]


def _fraction_as_pct(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:g} %"
    return _format_value(value)


def _duration(seconds: float) -> str:
    for unit, length in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{seconds / length:g}{unit}"
    return f"{seconds:g}s"


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _format_value(value: Any, *, money: bool = False) -> str:
    """A parameter or setting value as short text (the template escapes it)."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        if money:
            return f"{value:,.2f}"
        return "∞" if value == math.inf else f"{value:g}"
    if isinstance(value, int):
        return f"{value:,}" if money else str(value)
    return str(value)


def _trade_table(trades: pd.DataFrame, time_format: str) -> dict[str, Any]:
    """The trade list's columns and rows: all trades, or the first and last when too many."""
    total = len(trades)
    half = MAX_TABLE_TRADES // 2
    capped = total > MAX_TABLE_TRADES
    numbers = [*range(half), *range(total - half, total)] if capped else list(range(total))
    rows = [
        {
            "cells": _trade_cells(number, row, time_format),
            "gap_before": capped and number == total - half,
        }
        for number, row in zip(numbers, trades.iloc[numbers].to_dict("records"), strict=True)
    ]
    return {
        "columns": [{"label": label, "kind": kind} for label, kind in _TRADE_COLUMNS],
        "rows": rows,
        "total": f"{total:,}",
        "omitted": f"{total - len(numbers):,}" if capped else "",
        "half": f"{half:,}",
    }


def _trade_cells(number: int, row: Mapping[Any, Any], time_format: str) -> list[dict[str, str]]:
    """One table row: (text, sort key, tone) per column of ``_TRADE_COLUMNS``."""
    entry_bar, exit_bar = _number(row.get("entry_bar")), _number(row.get("exit_bar"))
    held = None if entry_bar is None or exit_bar is None else exit_bar - entry_bar
    pnl, pnl_pct = row.get("pnl"), row.get("pnl_pct")
    return [
        _cell(str(number + 1), number + 1),
        _cell(_text(row.get("direction")), _text(row.get("direction"))),
        _time_cell(row.get("entry_time"), time_format),
        _time_cell(row.get("exit_time"), time_format),
        _number_cell(row.get("entry_price"), _format_price),
        _number_cell(row.get("exit_price"), _format_price),
        _number_cell(row.get("size"), lambda value: f"{value:.6g}"),
        _number_cell(pnl, lambda value: f"{value:,.2f}", signed=True),
        _number_cell(pnl_pct, lambda value: f"{value:,.2f} %", signed=True),
        _number_cell(row.get("fees"), lambda value: f"{value:,.2f}"),
        _cell(_text(row.get("exit_reason")), _text(row.get("exit_reason"))),
        _number_cell(entry_bar, lambda value: f"{value:.0f}"),
        _number_cell(exit_bar, lambda value: f"{value:.0f}"),
        _number_cell(held, lambda value: f"{value:.0f}"),
        _cell(_text(row.get("tag")), _text(row.get("tag"))),
    ]


def _cell(text: str, sort: object, tone: str = "") -> dict[str, str]:
    return {"text": text, "sort": str(sort), "tone": tone}


def _number_cell(
    value: Any, form: Callable[[float], str], *, signed: bool = False
) -> dict[str, str]:
    if not _is_number(value) or not math.isfinite(float(value)):
        return _cell("—", "")
    number = float(value)
    tone = ("pos" if number > 0 else "neg" if number < 0 else "") if signed else ""
    sort = str(int(number)) if number.is_integer() and abs(number) < 1e15 else f"{number:.10g}"
    return _cell(form(number), sort, tone)


def _time_cell(value: Any, time_format: str) -> dict[str, str]:
    if value is None or value is pd.NaT:
        return _cell("—", "")
    text = pd.Timestamp(value).strftime(time_format)
    return _cell(text, text)  # fixed-width text sorts in time order


def _text(value: Any) -> str:
    """A text cell; None, NaN and pd.NA (a missing tag) are empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _format_price(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.6g}"


def _breakdowns(trades: pd.DataFrame) -> list[tuple[str, list[dict[str, str]]]]:
    """Trade count, win rate, total P&L and mean return per exit reason and per direction."""
    tables: list[tuple[str, list[dict[str, str]]]] = []
    if len(trades) == 0 or not {"pnl", "pnl_pct"} <= set(trades.columns):
        return tables
    for column, title in (("exit_reason", "By exit reason"), ("direction", "By direction")):
        if column not in trades:
            continue
        grouped = trades.groupby(trades[column].astype(str), sort=True)
        summary = pd.DataFrame(
            {
                "count": grouped.size(),
                "wins": grouped["pnl"].apply(lambda pnl: int((pnl > 0).sum())),
                "pnl": grouped["pnl"].sum(),
                "pnl_pct": grouped["pnl_pct"].mean(),
            }
        )
        rows = [
            {
                "name": str(name),
                "count": f"{int(item['count']):,}",
                "win_rate": f"{100.0 * item['wins'] / item['count']:.1f} %",
                "pnl": f"{item['pnl']:,.2f}",
                "pnl_pct": f"{item['pnl_pct']:,.2f} %",
                "tone": "pos" if item["pnl"] > 0 else "neg" if item["pnl"] < 0 else "",
            }
            for name, item in summary.iterrows()
        ]
        tables.append((title, rows))
    return tables
