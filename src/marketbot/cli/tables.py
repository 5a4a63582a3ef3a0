"""Rich tables for the command line: results, strategies, stored series and past runs."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult

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
    ("return_pct", "Return", "{:+.2f} %"),
    ("buy_hold_return_pct", "Buy & hold", "{:+.2f} %"),
    ("cagr_pct", "CAGR", "{:+.2f} %"),
    ("sharpe", "Sharpe", "{:.2f}"),
    ("sortino", "Sortino", "{:.2f}"),
    ("calmar", "Calmar", "{:.2f}"),
    ("max_drawdown_pct", "Max drawdown", "{:.2f} %"),
    ("max_drawdown_bars", "Longest drawdown", "{:d} bars"),
    ("num_trades", "Trades", "{:d}"),
    ("win_rate", "Win rate", "{:.1f} %"),
    ("profit_factor", "Profit factor", "{:.2f}"),
    ("expectancy", "Expectancy", "{:+.2f}"),
    ("sqn", "SQN", "{:.2f}"),
    ("avg_trade_pct", "Avg trade", "{:+.2f} %"),
    ("best_trade_pct", "Best trade", "{:+.2f} %"),
    ("worst_trade_pct", "Worst trade", "{:+.2f} %"),
    ("avg_hold_bars", "Avg hold", "{:.1f} bars"),
    ("exposure_pct", "Exposure", "{:.1f} %"),
    ("total_fees", "Fees paid", "{:.2f}"),
)


def make_console() -> Console:
    """A console for stdout; when piped (no terminal) wide enough that tables are not cut."""
    console = Console()
    return console if console.is_terminal else Console(width=200)


def format_metric(fmt: str, value: float | int) -> str:
    """A metric value for people: infinity as a symbol, integers without decimals."""
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if "d}" in fmt:
        return fmt.format(int(value))
    return fmt.format(float(value))


def recommendation_text(recommendation: str) -> str:
    """The recommendation in its colour."""
    style = RECOMMENDATION_STYLES.get(recommendation, "")
    return f"[{style}]{recommendation}[/]"


def metrics_table(result: BacktestResult) -> Table:
    """One backtest's metrics, titled with strategy, symbol, period and verdict."""
    curve = result.equity_curve
    period = f"{curve.index[0]:%Y-%m-%d} .. {curve.index[-1]:%Y-%m-%d}" if len(curve) else ""
    params = ", ".join(f"{k}={v}" for k, v in result.params.items())
    table = Table(
        title=f"{result.strategy} ({params}) on {result.symbol}, {period}",
        caption=f"recommendation: {recommendation_text(str(result.recommendation))}",
    )
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, label, fmt in SUMMARY_METRICS:
        table.add_row(label, format_metric(fmt, result.metrics[key]))
    return table


def comparison_table(rows: Sequence[tuple[str, BacktestResult]], title: str) -> Table:
    """Several results side by side, one row each, labelled by the first tuple item."""
    table = Table(title=title)
    table.add_column("run")
    columns = (
        "return_pct",
        "buy_hold_return_pct",
        "sharpe",
        "max_drawdown_pct",
        "num_trades",
        "win_rate",
        "profit_factor",
    )
    labels = {key: (label, fmt) for key, label, fmt in SUMMARY_METRICS}
    for key in columns:
        table.add_column(labels[key][0], justify="right")
    table.add_column("verdict")
    for label, result in rows:
        cells = [format_metric(labels[key][1], result.metrics[key]) for key in columns]
        table.add_row(label, *cells, recommendation_text(str(result.recommendation)))
    return table


def per_symbol_table(breakdown: Any) -> Table:
    """A portfolio run's per-symbol breakdown: trades, win rate, P&L, fees, contribution."""
    table = Table(title="Per symbol")
    for column in ("symbol", "trades", "win rate", "P&L", "fees", "contribution"):
        table.add_column(column, justify="left" if column == "symbol" else "right")
    for row in breakdown.itertuples(index=False):
        table.add_row(
            str(row.symbol),
            str(row.num_trades),
            f"{row.win_rate:.1f} %",
            f"{row.pnl:+,.2f}",
            f"{row.fees:,.2f}",
            f"{row.contribution_pct:+.2f} %",
        )
    return table


def optimization_table(result: Any, top: int) -> Table:
    """The best ``top`` combinations of an optimisation, best first."""
    ranked = result.ranked().head(top)
    direction = "lowest" if result.minimise else "highest"
    table = Table(
        title=f"{result.strategy} on {result.symbol}: {len(result.results)} combinations "
        f"({result.skipped} skipped), by {direction} {result.metric}",
        caption=f"best: {result.best_params} -> {result.metric} = {result.best_metric:.4g}",
    )
    params = [c for c in result.results.columns if c not in METRIC_COLUMNS and c != "eligible"]
    shown = [result.metric] + [m for m in ("return_pct", "max_drawdown_pct", "num_trades",
                                           "win_rate") if m != result.metric]  # fmt: skip
    for column in (*params, *shown):
        table.add_column(column, justify="right")
    for _, row in ranked.iterrows():
        table.add_row(*(str(row[p]) for p in params), *(_cell(row[m]) for m in shown))
    return table


def walk_forward_table(walk: Any) -> Table:
    """Walk-forward windows: ranges, chosen parameters, in- and out-of-sample metric."""
    frame = walk.table()
    metrics = walk.out_of_sample_metrics
    table = Table(
        title="Walk-forward (out-of-sample windows)",
        caption=(
            f"stitched out-of-sample: return {metrics['return_pct']:+.2f} %, "
            f"Sharpe {metrics['sharpe']:.2f}, max drawdown {metrics['max_drawdown_pct']:.2f} %; "
            f"efficiency {walk.efficiency:.2f}; verdict "
            f"{recommendation_text(str(walk.recommendation))}"
        ),
    )
    for column in frame.columns:
        table.add_column(str(column), justify="right")
    for _, row in frame.iterrows():
        table.add_row(*(_cell(value) for value in row.tolist()))
    return table


def _cell(value: Any) -> str:
    if hasattr(value, "strftime"):
        return str(value.strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.4g}"
    return str(value)


def strategies_table() -> Table:
    """The built-in strategies with each parameter's default and range."""
    from marketbot.strategies.loader import builtin_strategies

    table = Table(title="Built-in strategies")
    for column in ("strategy", "parameter", "default", "range", "description"):
        table.add_column(column)
    for name, cls in builtin_strategies().items():
        table.add_row(f"[bold]{name}[/]", "", "", "", cls.description)
        for parameter in cls.parameters:
            table.add_row(
                "",
                parameter.name,
                str(parameter.default),
                _range_text(parameter.low, parameter.high, parameter.choices, parameter.kind),
                parameter.description,
            )
    return table


def _range_text(
    low: float | None, high: float | None, choices: Iterable[Any] | None, kind: type
) -> str:
    if choices is not None:
        return " | ".join(str(c) for c in choices)
    if kind is bool:
        return "true | false"
    if low is None and high is None:
        return "any"
    return f"{'' if low is None else f'{low:g}'} .. {'' if high is None else f'{high:g}'}"


def series_table(series: Iterable[Any]) -> Table:
    """Stored price series: source, symbol, timeframe, range, rows and gaps."""
    table = Table(title="Stored price series")
    for column in ("source", "symbol", "timeframe", "first", "last", "rows", "gaps", "missing"):
        table.add_column(
            column, justify="right" if column in {"rows", "gaps", "missing"} else "left"
        )
    for item in series:
        table.add_row(
            item.source,
            item.symbol,
            item.timeframe,
            f"{item.first:%Y-%m-%d %H:%M}",
            f"{item.last:%Y-%m-%d %H:%M}",
            str(item.rows),
            str(item.gaps),
            str(item.missing_bars),
        )
    return table


def runs_table(runs: Iterable[Any]) -> Table:
    """Past backtest runs, newest first, with their headline metrics."""
    table = Table(title="Backtest runs")
    for column in ("id", "when", "strategy", "symbol", "params", "return", "sharpe", "max dd"):
        table.add_column(column)
    table.add_column("verdict")
    for run in runs:
        metrics = run.metrics
        table.add_row(
            str(run.id),
            f"{run.created_at:%Y-%m-%d %H:%M}",
            run.strategy,
            run.symbol,
            ", ".join(f"{k}={v}" for k, v in run.params.items()),
            format_metric("{:+.2f} %", metrics.get("return_pct", 0.0)),
            format_metric("{:.2f}", metrics.get("sharpe", 0.0)),
            format_metric("{:.2f} %", metrics.get("max_drawdown_pct", 0.0)),
            recommendation_text(run.recommendation),
        )
    return table


def gaps_table(gaps: Iterable[Any], *, title: str) -> Table:
    """Holes in a series: the bars either side and how many are missing."""
    table = Table(title=title)
    for column in ("after", "before", "missing bars"):
        table.add_column(column, justify="right" if column == "missing bars" else "left")
    for gap in gaps:
        table.add_row(
            f"{gap.after:%Y-%m-%d %H:%M}", f"{gap.before:%Y-%m-%d %H:%M}", str(gap.missing_bars)
        )
    return table
