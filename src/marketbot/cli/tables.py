"""Rich tables for the command line: results, strategies, stored series and past runs.

Numbers are written for people: thousands separators, a unit where there is one, never
exponent notation (``81,093``, not ``8.109e+04``); columns are named in words. A backtest's
title names the strategy, the symbol, the timeframe and the date range, and the table is at
least as wide as its title so the title stays on one line (a title wider than the terminal
breaks between words).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from marketbot.backtest.report_tables import risk_rows
from marketbot.core.timeframes import infer_bar_seconds, seconds_to_timeframe

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult
    from marketbot.optimize.optimizer import OptimizationResult
    from marketbot.optimize.walk_forward import WalkForwardResult

METRIC_COLUMNS: Final = frozenset(
    (
        "return_pct", "buy_hold_return_pct", "win_rate", "sharpe", "sortino", "calmar",
        "max_drawdown_pct", "max_drawdown_bars", "profit_factor", "expectancy", "sqn",
        "cagr_pct", "exposure_pct", "num_trades", "total_fees", "avg_trade_pct",
        "best_trade_pct", "worst_trade_pct", "avg_hold_bars",
    )
)  # fmt: skip
RECOMMENDATION_STYLES: Final = {
    "EXCELLENT": "bold green",
    "GOOD": "green",
    "MARGINAL": "yellow",
    "FAILED": "red",
}
# (key, label, format): the metrics a person reads first, in reading order.
SUMMARY_METRICS: Final = (
    ("return_pct", "Return", "{:+,.2f} %"),
    ("buy_hold_return_pct", "Buy & hold", "{:+,.2f} %"),
    ("cagr_pct", "CAGR", "{:+,.2f} %"),
    ("sharpe", "Sharpe", "{:,.2f}"),
    ("sortino", "Sortino", "{:,.2f}"),
    ("calmar", "Calmar", "{:,.2f}"),
    ("max_drawdown_pct", "Max drawdown", "{:,.2f} %"),
    ("max_drawdown_bars", "Longest drawdown", "{:,d} bars"),
    ("num_trades", "Trades", "{:,d}"),
    ("win_rate", "Win rate", "{:.1f} %"),
    ("profit_factor", "Profit factor", "{:,.2f}"),
    ("expectancy", "Expectancy", "{:+,.2f}"),
    ("sqn", "SQN", "{:,.2f}"),
    ("avg_trade_pct", "Avg trade", "{:+,.2f} %"),
    ("best_trade_pct", "Best trade", "{:+,.2f} %"),
    ("worst_trade_pct", "Worst trade", "{:+,.2f} %"),
    ("avg_hold_bars", "Avg hold", "{:,.1f} bars"),
    ("exposure_pct", "Exposure", "{:.1f} %"),
    ("total_fees", "Fees paid", "{:,.2f}"),
)
_METRIC_LABELS: Final = {key: (label, fmt) for key, label, fmt in SUMMARY_METRICS}
# Wider than this a title would not fit a common terminal anyway; rich wraps it by words.
MAX_TITLE_WIDTH: Final = 100
_TIME_FORMAT: Final = "%Y-%m-%d %H:%M"


def make_console() -> Console:
    """A console for stdout; when piped (no terminal) wide enough that tables are not cut."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def format_metric(fmt: str, value: float | int) -> str:
    """A metric value for people: infinity as a symbol, NaN as a dash, integers whole.

    ``fmt`` is a format string such as ``{:+,.2f} %`` (a ``d`` format gets an int).
    """
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if "d}" in fmt:
        return fmt.format(int(value))
    return fmt.format(float(value))


def human_number(value: Any) -> str:
    """A number as people read it: ``81,093``, ``1.235``, ``0.0001234``; never ``8.1e+04``.

    Integers (and whole floats) get thousands separators, other numbers of 1,000 or more are
    rounded to whole units, smaller ones keep four significant digits. Anything that is not
    a number is returned as ``str(value)``.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return str(value)
    number = float(value)
    if math.isnan(number):
        return "—"
    if math.isinf(number):
        return "∞" if number > 0 else "-∞"
    if number.is_integer() and abs(number) < 1e18:
        return f"{int(number):,}"
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return np.format_float_positional(number, precision=4, fractional=False, trim="-")


def recommendation_text(recommendation: str) -> str:
    """The recommendation in its colour."""
    style = RECOMMENDATION_STYLES.get(recommendation, "")
    return f"[{style}]{recommendation}[/]"


def _verdict(result: BacktestResult, text: str | None = None) -> Text:
    """The verdict line (or ``text``) in the recommendation's colour, never read as markup."""
    style = RECOMMENDATION_STYLES.get(str(result.recommendation), "")
    return Text(result.verdict_line if text is None else text, style=style)


def run_period(result: BacktestResult) -> str:
    """Timeframe and date range of a run, e.g. ``1d, 2018-01-01 to 2021-01-01`` ("" if empty).

    The timeframe is the median bar spacing of the equity curve.
    """
    index = pd.DatetimeIndex(result.equity_curve.index)
    if len(index) == 0:
        return ""
    timeframe = seconds_to_timeframe(infer_bar_seconds(index.as_unit("ns").asi8))
    return f"{timeframe}, {index[0]:%Y-%m-%d} to {index[-1]:%Y-%m-%d}"


def run_title(result: BacktestResult) -> str:
    """``<strategy> on <symbol>, <timeframe>, <first day> to <last day>``.

    A portfolio names up to three symbols, else their count.
    """
    period = run_period(result)
    return f"{result.strategy} on {_traded(result)}" + (f", {period}" if period else "")


def _traded(result: BacktestResult) -> str:
    """The symbol of a run, a portfolio's symbols (up to three) or their count."""
    symbols = result.symbols
    if not symbols:
        return result.symbol
    if len(symbols) <= 3:
        return ", ".join(symbols)
    return f"{len(symbols):,} symbols"


def _titled_table(title: str, caption: str | None = None) -> Table:
    """A table at least as wide as its title (and caption), so neither wraps mid-way.

    Both are :class:`~rich.text.Text`, so brackets in names are shown, not read as markup.
    """
    widest = max(len(line) for line in (title, *(caption or "").splitlines()))
    return Table(
        title=Text(title),
        caption=None if caption is None else Text(caption),
        min_width=min(widest + 4, MAX_TITLE_WIDTH),
    )


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={human_number(value)}" for key, value in params.items()) or "none"


def metrics_table(result: BacktestResult) -> Table:
    """One backtest's metrics, titled with strategy, symbol, timeframe and date range.

    The caption lists the parameters; the last row is the verdict with what qualifies it
    (:attr:`BacktestResult.verdict_line`).
    """
    table = _titled_table(run_title(result), f"parameters: {_params_text(result.params)}")
    table.add_column("Metric")
    table.add_column("Value", justify="right")
    for key, label, fmt in SUMMARY_METRICS:
        table.add_row(label, format_metric(fmt, result.metrics.get(key, math.nan)))
    table.add_section()
    table.add_row("Verdict", _verdict(result))
    return table


def result_messages(result: BacktestResult) -> list[str]:
    """What to print below :func:`metrics_table`, one line each, as plain text.

    In order: each warning (``warning: ...``), why the run made no trade
    (``no trades: ...``) and the risk limits in force
    (``risk limits: max position $1,000, daily loss $500, ...``) when the run had any.
    The verdict's own qualifiers are in the table already. The lines are not rich markup:
    print them with ``markup=False``.
    """
    lines = [f"warning: {warning}" for warning in result.warnings]
    if result.no_trade_reason:
        lines.append(f"no trades: {result.no_trade_reason}")
    limits = risk_rows(result.settings)
    if limits:
        lines.append("risk limits: " + ", ".join(f"{name.lower()} {text}" for name, text in limits))
    return lines


_COMPARISON_COLUMNS: Final = (
    "return_pct",
    "sharpe",
    "max_drawdown_pct",
    "num_trades",
    "win_rate",
    "profit_factor",
)


def comparison_table(rows: Sequence[tuple[str, BacktestResult]], title: str) -> Table:
    """Several results side by side, one row each, labelled by the first tuple item.

    Buy and hold belongs to the data, not to a run, so the caption gives it once per
    symbol, with the symbol's timeframe and dates; when every run covers the same
    timeframe and dates they end the title instead. A verdict with a qualifier (buy and
    hold made more) gets a ``*`` explained below: the whole verdict line would squeeze
    the table at 100 columns.
    """
    periods = {run_period(result) for _, result in rows} - {""}
    shared = len(periods) == 1
    if shared:
        title = f"{title}, {next(iter(periods))}"
    notes = list(dict.fromkeys(_buy_and_hold_note(result, not shared) for _, result in rows))
    qualifiers = [_qualifier(result) for _, result in rows]
    notes += [f"* {text}" for text in dict.fromkeys(filter(None, qualifiers))]
    table = _titled_table(title, "\n".join(notes) or None)
    table.add_column("Run", overflow="fold")
    for key in _COMPARISON_COLUMNS:
        _number_column(table, _METRIC_LABELS[key][0])
    table.add_column("Verdict", no_wrap=True)
    for (label, result), qualifier in zip(rows, qualifiers, strict=True):
        cells = [
            format_metric(_METRIC_LABELS[key][1], result.metrics.get(key, math.nan))
            for key in _COMPARISON_COLUMNS
        ]
        verdict = str(result.recommendation) + ("*" if qualifier else "")
        table.add_row(Text(label), *cells, _verdict(result, verdict))
    return table


def _buy_and_hold_note(result: BacktestResult, with_period: bool) -> str:
    """``bitcoin, 1d, 2018-01-01 to 2021-01-01: buy & hold +81.20 %``."""
    period = run_period(result) if with_period else ""
    hold = format_metric("{:+,.2f} %", result.metrics.get("buy_hold_return_pct", math.nan))
    return f"{_traded(result)}{', ' + period if period else ''}: buy & hold {hold}"


def _qualifier(result: BacktestResult) -> str:
    """What the verdict line adds to the recommendation, less a trailing ``(+X %)``."""
    line = result.verdict_line.removeprefix(str(result.recommendation)).lstrip("; ")
    if line.endswith(")") and " (" in line:
        return line[: line.rindex(" (")]
    return line


def per_symbol_table(breakdown: Any) -> Table:
    """A portfolio run's per-symbol breakdown: trades, win rate, P&L, fees, contribution."""
    table = Table(title="Per symbol")
    for column in ("Symbol", "Trades", "Win rate", "P&L", "Fees", "Contribution"):
        table.add_column(column, justify="left" if column == "Symbol" else "right")
    for row in breakdown.itertuples(index=False):
        table.add_row(
            Text(str(row.symbol)),
            f"{int(row.num_trades):,}",
            f"{row.win_rate:.1f} %",
            f"{row.pnl:+,.2f}",
            f"{row.fees:,.2f}",
            f"{row.contribution_pct:+,.2f} %",
        )
    return table


def metric_label(key: str) -> str:
    """A metric's column name in words (``max_drawdown_pct`` is ``Max drawdown``)."""
    if key in _METRIC_LABELS:
        return _METRIC_LABELS[key][0]
    return key.replace("_pct", "").replace("_", " ").capitalize()


def _number_column(table: Table, header: str) -> None:
    """A right-aligned column whose numbers are never wrapped; its header is stacked.

    Rich narrows wrappable columns first when a table is too wide, so text columns give
    way and numbers stay whole; a two-word header goes on two lines (``Max`` over
    ``drawdown``) so that it does not widen the column either.
    """
    first, _, rest = header.partition(" ")
    table.add_column(
        Text(f"{first}\n{rest}" if rest else first), justify="right", no_wrap=True, overflow="fold"
    )


def _metric_cell(key: str, value: Any) -> str:
    if key in _METRIC_LABELS and isinstance(value, int | float | np.integer | np.floating):
        return format_metric(_METRIC_LABELS[key][1], float(value))
    return human_number(value)


def optimization_table(result: OptimizationResult, top: int) -> Table:
    """The best ``top`` combinations of an optimisation, best first."""
    ranked = result.ranked().head(top)
    direction = "lowest" if result.minimise else "highest"
    label = metric_label(result.metric)
    title = (
        f"{result.strategy} on {result.symbol}: {len(result.results):,} combinations "
        f"({result.skipped:,} skipped), by {direction} {label}"
    )
    best = _metric_cell(result.metric, result.best_metric)
    table = _titled_table(title, f"best: {_params_text(result.best_params or {})} → {label} {best}")
    params = [c for c in result.results.columns if c not in METRIC_COLUMNS and c != "eligible"]
    shown = [result.metric] + [m for m in ("return_pct", "max_drawdown_pct", "num_trades",
                                           "win_rate") if m != result.metric]  # fmt: skip
    for column in (*params, *(metric_label(m) for m in shown)):
        _number_column(table, str(column))
    for _, row in ranked.iterrows():
        table.add_row(
            *(human_number(row[p]) for p in params), *(_metric_cell(m, row[m]) for m in shown)
        )
    return table


def walk_forward_table(walk: WalkForwardResult) -> Table:
    """Walk-forward windows: dates, chosen parameters, in- and out-of-sample results.

    The columns call the in-sample window "train" and the out-of-sample one "test" (the
    caption says so): the long words would not fit ten columns into 100.
    """
    metrics = walk.out_of_sample_metrics
    label = metric_label(walk.metric)
    recommendation = str(walk.recommendation)
    caption = Text.assemble(
        "train: in-sample window, chooses the parameters; "
        "test: out-of-sample window, trades them\n"
        f"Stitched out-of-sample: return {format_metric('{:+,.2f} %', metrics['return_pct'])}, "
        f"Sharpe {format_metric('{:,.2f}', metrics['sharpe'])}, "
        f"max drawdown {format_metric('{:,.2f} %', metrics['max_drawdown_pct'])}\n"
        f"Efficiency {human_number(walk.efficiency)}; verdict ",
        (recommendation, RECOMMENDATION_STYLES.get(recommendation, "")),
    )
    table = Table(title="Walk-forward (out-of-sample windows)", caption=caption)
    params = list(dict.fromkeys(name for window in walk.windows for name in window.params))
    table.add_column("#", justify="right")
    table.add_column("Train", overflow="fold")
    table.add_column("Test", overflow="fold")
    for column in (*params, f"Train {label}", f"Test {label}", "Test return", "Test trades"):
        _number_column(table, column)
    _number_column(table, "Efficiency")
    for window in walk.windows:
        table.add_row(
            str(window.number),
            _time_range(window.in_sample_start, window.in_sample_end),
            _time_range(window.out_of_sample_start, window.out_of_sample_end),
            *(human_number(window.params.get(name, "")) for name in params),
            _metric_cell(walk.metric, window.in_sample_metrics[walk.metric]),
            _metric_cell(walk.metric, window.out_of_sample_metrics[walk.metric]),
            _metric_cell("return_pct", window.out_of_sample_metrics["return_pct"]),
            _metric_cell("num_trades", window.out_of_sample_metrics["num_trades"]),
            human_number(window.efficiency),
        )
    return table


def _time_range(start: pd.Timestamp, end: pd.Timestamp) -> str:
    """``2018-01-01 to 2019-01-01``, with the times of day unless both are midnight."""
    midnight = start == start.normalize() and end == end.normalize()
    fmt = "%Y-%m-%d" if midnight else _TIME_FORMAT
    return f"{start.strftime(fmt)} to {end.strftime(fmt)}"


def strategies_table() -> Table:
    """The built-in strategies with each parameter's default and range."""
    from marketbot.strategies.loader import binary_builtin_strategies, builtin_strategies

    table = Table(title="Built-in strategies")
    for column in ("Strategy", "Parameter", "Default", "Range", "Description"):
        table.add_column(column)
    # OHLCV strategies first, then those of binary (prediction) markets.
    for name, cls in (builtin_strategies() | binary_builtin_strategies()).items():
        table.add_row(f"[bold]{name}[/]", "", "", "", Text(cls.description))
        for parameter in cls.parameters:
            table.add_row(
                "",
                parameter.name,
                _default_text(parameter.default),
                _range_text(parameter.low, parameter.high, parameter.choices, parameter.kind),
                Text(parameter.description),
            )
    return table


def _default_text(value: Any) -> str:
    # Lower case, as the range column and --param KEY=true spell booleans.
    return str(value).lower() if isinstance(value, bool) else human_number(value)


def _range_text(
    low: float | None, high: float | None, choices: Iterable[Any] | None, kind: type
) -> str:
    if choices is not None:
        return " | ".join(human_number(c) for c in choices)
    if kind is bool:
        return "true | false"
    if low is None and high is None:
        return "any"
    low_text = "" if low is None else human_number(low)
    high_text = "" if high is None else human_number(high)
    return f"{low_text} .. {high_text}"


def series_table(series: Iterable[Any]) -> Table:
    """Stored price series: source, symbol, timeframe, range, bars and gaps."""
    table = Table(title="Stored price series")
    counts = ("Bars", "Gaps", "Missing bars")
    for column in ("Source", "Symbol", "Timeframe", "First bar", "Last bar", *counts):
        table.add_column(column, justify="right" if column in counts else "left")
    for item in series:
        table.add_row(
            Text(item.source),
            Text(item.symbol),
            item.timeframe,
            f"{item.first:{_TIME_FORMAT}}",
            f"{item.last:{_TIME_FORMAT}}",
            f"{item.rows:,}",
            f"{item.gaps:,}",
            f"{item.missing_bars:,}",
        )
    return table


def gaps_table(gaps: Iterable[Any], *, title: str) -> Table:
    """Holes in a series: the bars either side and how many are missing."""
    table = Table(title=title)
    for column in ("After", "Before", "Missing bars"):
        table.add_column(column, justify="right" if column == "Missing bars" else "left")
    for gap in gaps:
        table.add_row(
            f"{gap.after:{_TIME_FORMAT}}", f"{gap.before:{_TIME_FORMAT}}", f"{gap.missing_bars:,}"
        )
    return table
