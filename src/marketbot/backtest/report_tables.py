"""The tables of the backtest report: settings, trade list, breakdowns and per-symbol table.

Each function turns part of a :class:`~marketbot.backtest.result.BacktestResult` into plain
rows of text for the report template (:mod:`marketbot.backtest.report`): the header's
(label, value) rows of settings and portfolio rules, and the tables. Every table cell carries
its shown ``text``, a ``sort`` key (the raw number, so ``1,234.50`` sorts after ``99.00``) and
a ``tone`` (``pos``/``neg`` for signed money and returns). The template escapes the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

__all__ = [
    "MAX_TABLE_TRADES",
    "breakdowns",
    "format_value",
    "per_symbol_table",
    "portfolio_rows",
    "risk_rows",
    "settings_rows",
    "trade_table",
]

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
_SYMBOL_COLUMN: Final = ("Symbol", "text")
_PER_SYMBOL_COLUMNS: Final = (
    ("Symbol", "text"),
    ("Trades", "num"),
    ("Win rate", "num"),
    ("P&L", "num"),
    ("Fees", "num"),
    ("Contribution", "num"),
)


def trade_table(trades: pd.DataFrame, time_format: str, *, with_symbol: bool) -> dict[str, Any]:
    """The trade list's columns and rows: all trades, or the first and last when too many.

    Args:
        trades: ``result.trades``.
        time_format: strftime format of the entry and exit times.
        with_symbol: Add a Symbol column after the trade number (portfolio runs).

    Returns:
        ``columns`` (label, kind), ``rows`` (cells, gap_before), ``total``, ``omitted`` (empty
        when every trade is listed) and ``half``, the counts as display text.
    """
    total = len(trades)
    half = MAX_TABLE_TRADES // 2
    capped = total > MAX_TABLE_TRADES
    numbers = [*range(half), *range(total - half, total)] if capped else list(range(total))
    rows = [
        {
            "cells": _trade_cells(number, row, time_format, with_symbol=with_symbol),
            "gap_before": capped and number == total - half,
        }
        for number, row in zip(numbers, trades.iloc[numbers].to_dict("records"), strict=True)
    ]
    columns = (
        (_TRADE_COLUMNS[0], _SYMBOL_COLUMN, *_TRADE_COLUMNS[1:]) if with_symbol else _TRADE_COLUMNS
    )
    return {
        "columns": [{"label": label, "kind": kind} for label, kind in columns],
        "rows": rows,
        "total": f"{total:,}",
        "omitted": f"{total - len(numbers):,}" if capped else "",
        "half": f"{half:,}",
    }


def _trade_cells(
    number: int, row: Mapping[Any, Any], time_format: str, *, with_symbol: bool
) -> list[dict[str, str]]:
    """One table row: (text, sort key, tone) per column of ``_TRADE_COLUMNS``."""
    entry_bar, exit_bar = _number(row.get("entry_bar")), _number(row.get("exit_bar"))
    held = None if entry_bar is None or exit_bar is None else exit_bar - entry_bar
    pnl, pnl_pct = row.get("pnl"), row.get("pnl_pct")
    symbol = [_cell(_text(row.get("symbol")), _text(row.get("symbol")))] if with_symbol else []
    return [
        _cell(str(number + 1), number + 1),
        *symbol,
        _cell(_text(row.get("direction")), _text(row.get("direction"))),
        _time_cell(row.get("entry_time"), time_format),
        _time_cell(row.get("exit_time"), time_format),
        _number_cell(row.get("entry_price"), _format_price),
        _number_cell(row.get("exit_price"), _format_price),
        _number_cell(row.get("size"), lambda value: f"{value:.6g}"),
        _number_cell(pnl, _money, signed=True),
        _number_cell(pnl_pct, _percent, signed=True),
        _number_cell(row.get("fees"), _money),
        _cell(_text(row.get("exit_reason")), _text(row.get("exit_reason"))),
        _number_cell(entry_bar, lambda value: f"{value:.0f}"),
        _number_cell(exit_bar, lambda value: f"{value:.0f}"),
        _number_cell(held, lambda value: f"{value:.0f}"),
        _cell(_text(row.get("tag")), _text(row.get("tag"))),
    ]


def per_symbol_table(
    per_symbol: pd.DataFrame, trades: pd.DataFrame, charted: Sequence[str]
) -> dict[str, Any]:
    """The portfolio's per-symbol breakdown, the largest contribution first.

    Args:
        per_symbol: ``result.per_symbol`` (symbol, num_trades, win_rate, pnl, fees,
            contribution_pct).
        trades: ``result.trades``, for the overall win rate of the total row.
        charted: The symbols the price chart offers; their rows link to it.

    Returns:
        ``columns`` (label, kind), ``rows`` (symbol, chart index or None, cells, and ``bar``:
        the contribution bar's left edge, width and tone), ``total`` (the total row's
        cells), ``count`` (symbols, as text) and ``diverging`` (gains and losses both occur,
        so the bars grow from the middle).
    """
    frame = per_symbol.sort_values("contribution_pct", ascending=False, kind="stable")
    contributions = frame["contribution_pct"].to_numpy(dtype=np.float64)
    finite = np.abs(contributions[np.isfinite(contributions)])
    widest = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
    diverging = bool((contributions < 0).any() and (contributions > 0).any())
    chart_index = {name: number for number, name in enumerate(charted)}
    rows = []
    for record in frame.to_dict("records"):
        symbol = _text(record.get("symbol"))
        count = _number(record.get("num_trades")) or 0.0
        contribution = _number(record.get("contribution_pct"))
        rows.append(
            {
                "symbol": symbol,
                "chart_index": chart_index.get(symbol),
                "cells": _summary_cells(
                    symbol,
                    count,
                    record.get("win_rate") if count else None,
                    record.get("pnl"),
                    record.get("fees"),
                    contribution,
                ),
                "bar": _contribution_bar(contribution, widest, diverging=diverging),
            }
        )
    pnl = trades["pnl"].to_numpy(dtype=np.float64) if "pnl" in trades else np.zeros(0)
    total = _summary_cells(
        "All symbols",
        float(per_symbol["num_trades"].sum()),
        100.0 * float((pnl > 0).sum()) / pnl.size if pnl.size else None,
        float(per_symbol["pnl"].sum()),
        float(per_symbol["fees"].sum()),
        float(per_symbol["contribution_pct"].sum()),
    )
    return {
        "columns": [{"label": label, "kind": kind} for label, kind in _PER_SYMBOL_COLUMNS],
        "rows": rows,
        "total": total,
        "count": f"{len(frame):,}",
        "diverging": diverging,
    }


def _summary_cells(
    name: str, count: float, win_rate: Any, pnl: Any, fees: Any, contribution: Any
) -> list[dict[str, str]]:
    return [
        _cell(name, name),
        _number_cell(count, lambda value: f"{value:,.0f}"),
        _number_cell(win_rate, lambda value: f"{value:.1f} %"),
        _number_cell(pnl, _money, signed=True),
        _number_cell(fees, _money),
        _number_cell(contribution, _percent, signed=True),
    ]


def _contribution_bar(
    contribution: float | None, widest: float, *, diverging: bool
) -> dict[str, str]:
    """Left edge and width (percent of the bar) and tone of a contribution's bar.

    With gains and losses in the table the bar grows from its middle (right for a gain, left
    for a loss); otherwise from its left edge. The largest contribution fills the space.
    """
    if contribution is None or not math.isfinite(contribution) or contribution == 0:
        return {"left": "0", "width": "0", "tone": ""}
    span = 50.0 if diverging else 100.0
    width = min(span, span * abs(contribution) / widest)
    left = (50.0 if contribution > 0 else 50.0 - width) if diverging else 0.0
    tone = "pos" if contribution > 0 else "neg"
    return {"left": f"{left:.1f}", "width": f"{width:.1f}", "tone": tone}


def breakdowns(trades: pd.DataFrame) -> list[tuple[str, list[dict[str, str]]]]:
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


def _money(value: float) -> str:
    return f"{value:,.2f}"


def _percent(value: float) -> str:
    return f"{value:,.2f} %"


def _format_price(value: float) -> str:
    return f"{value:,.2f}" if abs(value) >= 1000 else f"{value:.6g}"


def settings_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The run's settings as (label, text) pairs, exits only when set."""
    rows: list[tuple[str, str]] = []
    for key, label in (("fee_rate", "Fee"), ("slippage_rate", "Slippage")):
        if key in settings:
            rows.append((label, _fraction_as_pct(settings[key])))
    if "initial_cash" in settings:
        rows.append(("Initial cash", format_value(settings["initial_cash"], money=True)))
    sizing = settings.get("sizing")
    if sizing is not None:
        size = settings.get("size")
        text = str(sizing) if size is None else f"{sizing} ({format_value(size)})"
        rows.append(("Sizing", text))
    if "allow_short" in settings:
        allow = settings["allow_short"]
        rows.append(("Shorts", "if the strategy emits them" if allow is None else _yes_no(allow)))
    exits = settings.get("exits")
    if isinstance(exits, Mapping):
        rows.extend(_exit_rows(exits))
    # The portfolio rules and the risk limits have their own header groups.
    known = {
        "fee_rate",
        "slippage_rate",
        "initial_cash",
        "sizing",
        "size",
        "allow_short",
        "exits",
        "portfolio",
        "risk",
    }
    rows.extend(
        (str(key), format_value(value)) for key, value in settings.items() if key not in known
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
        (str(key), format_value(value))
        for key, value in exits.items()
        if key not in labels and key != "max_hold_seconds" and value is not None
    )
    return rows or [("Exits", "signals only")]


def _fraction_as_pct(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * 100:g} %"
    return format_value(value)


def _duration(seconds: float) -> str:
    for unit, length in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= length and seconds % length == 0:
            return f"{seconds / length:g}{unit}"
    return f"{seconds:g}s"


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def format_value(value: Any, *, money: bool = False) -> str:
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


def portfolio_rows(rules: Any) -> list[tuple[str, str]]:
    """The portfolio's slots, exposure cap and stop as (label, text) pairs."""
    if not isinstance(rules, Mapping):
        return []
    slots = rules.get("max_open_positions")
    cap = rules.get("max_exposure")
    stop = rules.get("portfolio_stop")
    rows = [
        ("Max positions", "one per symbol" if slots is None else format_value(slots)),
        ("Max exposure", "no cap" if cap is None else f"{_fraction_as_pct(cap)} of equity"),
        ("Portfolio stop", "off" if stop is None else f"{_fraction_as_pct(stop)} below peak"),
    ]
    known = {"max_open_positions", "max_exposure", "portfolio_stop"}
    rows.extend(
        (str(key), format_value(value))
        for key, value in rules.items()
        if key not in known and value is not None
    )
    return rows


# (key of RiskLimits, label, unit) in the order a person weighs them.
_RISK_LIMITS: Final = (
    ("max_position_size_usd", "Max position", "usd"),
    ("max_daily_loss_usd", "Daily loss", "usd"),
    ("max_total_exposure_usd", "Total exposure", "usd"),
    ("max_drawdown_pct", "Max drawdown", "pct"),
    ("max_positions", "Max positions", "count"),
    ("daily_reset_hour_utc", "Daily reset", "hour"),
)


def risk_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The risk limits in force as (label, text) pairs; empty when the run had none.

    ``settings["risk"]`` is :meth:`RiskLimits.model_dump` (amounts in USD, the drawdown in
    percent, the reset as an hour UTC) or None; keys this list does not know are shown as
    they are.
    """
    limits = settings.get("risk")
    if not isinstance(limits, Mapping):
        return []
    rows = [
        (label, _limit_text(limits[key], unit))
        for key, label, unit in _RISK_LIMITS
        if limits.get(key) is not None
    ]
    known = {key for key, _, _ in _RISK_LIMITS}
    rows.extend(
        (str(key), format_value(value))
        for key, value in limits.items()
        if key not in known and value is not None
    )
    return rows


def _limit_text(value: Any, unit: str) -> str:
    if not _is_number(value):
        return format_value(value)
    number = float(value)
    if unit == "usd":
        return f"${number:,.0f}" if number.is_integer() else f"${number:,.2f}"
    if unit == "pct":
        return f"{number:g} %"
    if unit == "hour":
        return f"{int(number):02d}:00 UTC"
    return f"{number:,.0f}"
