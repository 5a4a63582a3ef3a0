"""Rich tables and text of ``marketbot runs``: saved runs listed, one run shown, runs compared.

Numbers are written for people: thousands separators and no exponents (``81,090``, not
``8.109e+04``), percents with their sign where a sign means gain or loss, infinity as ``∞``,
a missing value as ``—``. Text that comes from a run (strategy names, parameters, file
names) is escaped, so a ``[`` in it is shown, not read as rich markup.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import pandas as pd
from rich.markup import escape
from rich.table import Table

from marketbot.backtest.comparison import VERDICT_KEY, RunComparison
from marketbot.backtest.report import METRIC_FORMATS, format_metric
from marketbot.backtest.report_tables import portfolio_rows, settings_rows
from marketbot.backtest.result import BacktestResult, verdict_line
from marketbot.cli.tables import RECOMMENDATION_STYLES, human_number

TITLE_WIDTH: Final = 100
"""Titles are cut to this many characters, so they fit a 100-column terminal."""
MAX_LISTED_TRADES: Final = 40
"""``runs show`` lists this many trades at most: the first and the last half."""
_SIGNED: Final = frozenset(
    ("return_pct", "buy_hold_return_pct", "cagr_pct", "avg_trade_pct", "best_trade_pct",
     "worst_trade_pct", "expectancy")
)  # fmt: skip
_COST_KEYS: Final = ("fee_rate", "slippage_rate", "initial_cash", "sizing", "size", "allow_short")
_SIGNIFICANT_DIGITS: Final = 6


def number_text(value: Any) -> str:
    """A parameter or setting for people: ``81,090``, ``0.05``, ``∞``, ``none``, ``true``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return human_number(value)


def params_text(params: Mapping[str, Any]) -> str:
    """``fast=10, slow=30``; ``defaults`` for a strategy without parameters."""
    return ", ".join(f"{key}={number_text(value)}" for key, value in params.items()) or "defaults"


def metric_text(key: str, value: float | int | None) -> str:
    """A metric with its unit (as the HTML report writes it), gains and losses signed."""
    text = format_metric(key, value)
    if key in _SIGNED and value is not None and math.isfinite(value) and value > 0:
        return "+" + text
    return text


def time_text(value: datetime) -> str:
    """A UTC time: the date alone at midnight, else date, hours and minutes."""
    stamp = pd.Timestamp(value)
    return f"{stamp:%Y-%m-%d}" if stamp == stamp.normalize() else f"{stamp:%Y-%m-%d %H:%M}"


def period_text(start: datetime, end: datetime) -> str:
    """``2020-01-01 .. 2021-12-31``."""
    return f"{time_text(start)} .. {time_text(end)}"


def data_text(symbol: str, data_file: str | None) -> str:
    """What a run traded on: its data file's name, else its symbol."""
    return data_file if data_file is not None else symbol


def verdict_markup(recommendation: str, metrics: Mapping[str, float]) -> str:
    """The verdict line with the verdict itself in its colour."""
    line = escape(verdict_line(recommendation, metrics))
    style = RECOMMENDATION_STYLES.get(recommendation)
    if style is None:
        return line
    return f"[{style}]{recommendation}[/]" + line[len(recommendation) :]


def fit_title(text: str, width: int = TITLE_WIDTH) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def runs_list_table(runs: Iterable[Any]) -> Table:
    """Saved backtest runs (``BacktestRunSummary``), newest first, with headline metrics."""
    table = Table(title="Saved backtest runs, newest first (times in UTC)")
    for column in ("ID", "Saved", "Strategy", "Parameters", "Symbol or file", "Source",
                   "Timeframe", "Period"):  # fmt: skip
        table.add_column(column, justify="right" if column == "ID" else "left")
    for column in ("Return", "Sharpe", "Max drawdown", "Trades"):
        table.add_column(column, justify="right")
    table.add_column("Verdict")
    for run in runs:
        metrics = run.metrics
        table.add_row(
            str(run.id),
            f"{run.created_at:%Y-%m-%d %H:%M}",
            escape(run.strategy),
            escape(params_text(run.params)),
            escape(data_text(run.symbol, run.data_file)),
            escape(run.source),
            run.timeframe,
            period_text(run.start, run.end),
            metric_text("return_pct", metrics.get("return_pct")),
            metric_text("sharpe", metrics.get("sharpe")),
            metric_text("max_drawdown_pct", metrics.get("max_drawdown_pct")),
            f"{run.trade_count:,}",
            verdict_markup(run.recommendation, metrics),
        )
    return table


def grid_text(grid: Mapping[str, Sequence[Any]], method: str) -> str:
    """What an optimisation searched: ``fast 5, 10, 20; slow 50 .. 200 (7 values)``."""
    parts = []
    for name, values in grid.items():
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(values) > 4 and numeric:
            shown = f"{number_text(values[0])} .. {number_text(values[-1])} ({len(values)} values)"
        else:
            shown = ", ".join(number_text(value) for value in values)
        parts.append(f"{name} {shown}")
    text = "; ".join(parts) or "—"
    return text if method == "grid" else f"{method}: {text}"


def optimizations_table(runs: Iterable[Any]) -> Table:
    """Saved optimiser runs (``OptimizationRunSummary``), newest first."""
    table = Table(title="Saved optimisation runs, newest first (times in UTC)")
    for column in ("ID", "Saved", "Strategy", "Symbol", "Grid", "Metric", "Best parameters",
                   "Best value", "Combinations"):  # fmt: skip
        numeric = column in {"ID", "Best value", "Combinations"}
        table.add_column(column, justify="right" if numeric else "left")
    for run in runs:
        table.add_row(
            str(run.id),
            f"{pd.Timestamp(run.created_at):%Y-%m-%d %H:%M}",
            escape(run.strategy),
            escape(run.symbol),
            escape(grid_text(run.grid, run.method)),
            run.metric,
            escape(params_text(run.best_params)),
            "—" if run.best_metric is None else metric_text(run.metric, run.best_metric),
            f"{run.combinations:,}",
        )
    return table


def metrics_table(result: BacktestResult) -> Table:
    """Every metric of a run in the HTML report's order, with its unit."""
    table = Table(title="Metrics")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    metrics = result.metrics
    for key, spec in METRIC_FORMATS.items():
        if key in metrics:
            table.add_row(spec.label, metric_text(key, metrics[key]))
    for key, value in metrics.items():
        if key not in METRIC_FORMATS:
            table.add_row(escape(key), number_text(value))
    return table


def settings_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    """Two columns of (setting, value) rows under ``title``."""
    table = Table(title=title)
    table.add_column("Setting")
    table.add_column("Value")
    for label, text in rows:
        table.add_row(escape(label), escape(text))
    return table


def cost_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Fee, slippage, starting cash, sizing and shorts, as the HTML report words them."""
    return settings_rows({key: settings[key] for key in _COST_KEYS if key in settings})


def exit_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The exit rules in force; ``Exits: signals only`` when none was set."""
    exits = settings.get("exits")
    return settings_rows({"exits": exits}) if isinstance(exits, Mapping) else []


def portfolio_rule_rows(settings: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A portfolio run's slots, exposure cap and stop; empty for a single symbol."""
    return portfolio_rows(settings.get("portfolio"))


def trades_table(trades: pd.DataFrame) -> Table:
    """The run's trades; beyond :data:`MAX_LISTED_TRADES`, the first and the last half."""
    total = len(trades)
    half = MAX_LISTED_TRADES // 2
    capped = total > MAX_LISTED_TRADES
    numbers = [*range(half), *range(total - half, total)] if capped else list(range(total))
    title = (
        f"Trades: the first and last {half} of {total:,} (--json lists them all)"
        if capped
        else f"Trades ({total:,})"
    )
    table = Table(title=title)
    with_symbol = "symbol" in trades.columns
    columns = [
        "#",
        *(["Symbol"] if with_symbol else []),
        *("Side", "Entry", "Exit", "Entry price", "Exit price", "Size"),
        *("P&L", "P&L %", "Fees", "Exit reason"),
    ]
    for column in columns:
        left = column in {"Symbol", "Side", "Entry", "Exit", "Exit reason"}
        table.add_column(column, justify="left" if left else "right")
    records = trades.iloc[numbers].to_dict("records") if total else []
    for position, (number, trade) in enumerate(zip(numbers, records, strict=True)):
        if capped and position == half:
            table.add_row("…", *("" for _ in columns[1:]))
        table.add_row(*_trade_cells(number, trade, with_symbol=with_symbol))
    return table


def _trade_cells(number: int, trade: Mapping[Any, Any], *, with_symbol: bool) -> list[str]:
    symbol = [escape(str(trade.get("symbol")))] if with_symbol else []
    return [
        f"{number + 1:,}",
        *symbol,
        str(trade.get("direction") or "—"),
        _trade_time(trade.get("entry_time")),
        _trade_time(trade.get("exit_time")),
        _price_text(trade.get("entry_price")),
        _price_text(trade.get("exit_price")),
        number_text(_float(trade.get("size"))),
        _signed(_float(trade.get("pnl")), "{:+,.2f}"),
        _signed(_float(trade.get("pnl_pct")), "{:+.2f} %"),
        _signed(_float(trade.get("fees")), "{:,.2f}"),
        escape(str(trade.get("exit_reason") or "—")),
    ]


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _signed(value: float, fmt: str) -> str:
    return "—" if math.isnan(value) else fmt.format(value)


def _price_text(value: Any) -> str:
    price = _float(value)
    if math.isnan(price):
        return "—"
    return f"{price:,.2f}" if abs(price) >= 1000 else human_number(price)


def _trade_time(value: Any) -> str:
    if value is None or value is pd.NaT:
        return "—"
    return time_text(pd.Timestamp(value))


def comparison_table(comparison: RunComparison, runs: Sequence[Any]) -> Table:
    """Runs side by side, one column each; ``*`` marks the best value of a row."""
    first = runs[0]
    title = (
        f"Runs compared on {data_text(first.symbol, first.data_file)} "
        f"({first.source}, {first.timeframe}), {period_text(first.start, first.end)}"
    )
    table = Table(
        title=escape(fit_title(title)),
        caption="* best of the row (ties all marked; trades are not ranked)",
    )
    table.add_column("Metric")
    for run in runs:
        header = f"Run {run.id}\n{run.strategy}\n{params_text(run.params)}"
        table.add_column(escape(header), justify="right")
    for row in comparison.rows:
        cells = []
        for value, best in zip(row.values, row.best, strict=True):
            if row.key == VERDICT_KEY:
                text = escape(str(value))
            else:
                text = metric_text(row.key, float(value))
            cells.append(f"[bold green]{text} *[/]" if best else text)
        table.add_row(row.label, *cells)
    return table
