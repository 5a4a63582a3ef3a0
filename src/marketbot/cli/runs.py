"""``marketbot runs``: past backtest and optimiser runs stored in the database.

``list`` (backtests, or ``--optimizations``), ``show ID``, ``report ID`` and ``compare ID
ID [ID ID]``; each with ``--json`` where it prints data. An unknown id, runs on different
data, or a report whose bars are gone is one line on stderr and exit 1.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketbot.cli.common import open_database

if TYPE_CHECKING:
    from datetime import datetime

    from marketbot.backtest.comparison import RunComparison
    from marketbot.backtest.result import BacktestResult
    from marketbot.store.database import Database
    from marketbot.store.optimizations import OptimizationRunSummary
    from marketbot.store.runs import BacktestRecord, BacktestRunSummary, StoredBacktestRun

runs_app = typer.Typer(
    help="Past backtest and optimisation runs stored in the database.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
RunId = Annotated[int, typer.Argument(help="The run's id (see `marketbot runs list`).")]


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    symbol: Annotated[
        str | None, typer.Option(help="Only this symbol (or data file name).")
    ] = None,
    optimizations: Annotated[
        bool, typer.Option("--optimizations", help="List optimiser runs instead of backtests.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List recent backtest (or optimiser) runs with their key results, newest first."""
    if optimizations:
        from marketbot.store.optimizations import OptimizationRunRepository

        found = OptimizationRunRepository(open_database()).list_runs(
            limit=limit, strategy=strategy, symbol=symbol
        )
        if as_json:
            _print_json([_optimization_json(run) for run in found])
            return
        from marketbot.cli.runs_tables import optimizations_table

        _print_tables(optimizations_table(found))
        return
    from marketbot.store.runs import BacktestRunRepository

    runs = BacktestRunRepository(open_database()).list_runs(
        limit=limit, strategy=strategy, symbol=symbol
    )
    if as_json:
        _print_json([_summary_json(run) for run in runs])
        return
    from marketbot.cli.runs_tables import runs_list_table

    _print_tables(runs_list_table(runs))


@runs_app.command("show")
def runs_show(run_id: RunId, as_json: JsonOption = False) -> None:
    """Show one run: metrics, verdict, costs, risk limits, exits and trades."""
    from marketbot.backtest.stored import result_from_record
    from marketbot.store.runs import BacktestRunRepository

    stored = BacktestRunRepository(open_database()).get(run_id)
    result = result_from_record(stored.record)
    if as_json:
        payload = result.to_dict()
        del payload["equity_curve"]  # long, and drawn by `runs report`
        _print_json(_run_json(stored) | payload)
        return
    _print_run(stored, result)


@runs_app.command("report")
def runs_report(
    run_id: RunId,
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write the HTML (default: DATA_DIR/reports/run-ID.html)."),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="A run on a CSV file: that file again (its sha256 is checked)."),
    ] = None,
) -> None:
    """Write the HTML report of a saved run again; prints the file's path.

    The bars come from the price store (the run's source, symbol, timeframe and period), or
    for a run on a CSV file from ``--data FILE``; a run whose bars are gone is refused.
    """
    from marketbot.backtest.report import write_report
    from marketbot.config import load_settings
    from marketbot.store.runs import BacktestRunRepository

    database = open_database()
    stored = BacktestRunRepository(database).get(run_id)
    result = _result_with_bars(stored, database, data)
    target = output or load_settings().data_dir / "reports" / f"run-{run_id}.html"
    typer.echo(str(write_report(result, target)))


@runs_app.command("compare")
def runs_compare(
    run_ids: Annotated[list[int], typer.Argument(help="2 to 4 run ids, on the same data.")],
    as_json: JsonOption = False,
) -> None:
    """Compare 2 to 4 runs on the same bars side by side; the best of each row is marked."""
    from marketbot.backtest.comparison import check_run_count, compare_runs
    from marketbot.store.runs import BacktestRunRepository

    check_run_count(len(run_ids))
    repository = BacktestRunRepository(open_database())
    runs = [repository.get_summary(run_id) for run_id in run_ids]
    comparison = compare_runs(runs)
    if as_json:
        _print_json(_comparison_json(comparison, runs))
        return
    from marketbot.cli.runs_tables import comparison_table

    _print_tables(comparison_table(comparison, runs))


def _result_with_bars(
    stored: StoredBacktestRun, database: Database, data: Path | None
) -> BacktestResult:
    """The run's result with the bars its report charts: from the store, or ``data``."""
    from marketbot.backtest.stored import file_bars, result_from_record, stored_bars
    from marketbot.core.errors import ConfigError
    from marketbot.store.prices import PriceRepository

    record, run_id = stored.record, stored.id
    if record.data_file is not None:
        if data is None:
            raise ConfigError(
                f"run {run_id} was on the data file {record.data_file}, whose bars are not "
                f"stored: give the file again with --data {record.data_file}"
            )
        return result_from_record(record, file_bars(record, data, run_id=run_id))
    if data is not None:
        raise ConfigError(
            f"run {run_id} was on stored bars of {record.symbol}, not on a file: leave out --data"
        )
    if record.settings.get("instrument") == "binary":
        from marketbot.backtest.binary_backtest import binary_result_from_record

        return binary_result_from_record(record)
    frames = stored_bars(record, PriceRepository(database), run_id=run_id)
    first = next(iter(frames.values()))
    return result_from_record(record, first, prices=frames)


def _print_run(stored: StoredBacktestRun, result: BacktestResult) -> None:
    from rich.markup import escape

    from marketbot.backtest.report_tables import risk_rows
    from marketbot.cli import runs_tables as tables
    from marketbot.cli.tables import make_console

    record = stored.record
    console = make_console()
    title = (
        f"Run {stored.id}: {record.strategy} on {tables.data_text(record.symbol, record.data_file)}"
        f" ({record.source}, {record.timeframe}), {tables.period_text(record.start, record.end)}"
    )
    console.print(escape(tables.fit_title(title)), style="bold")
    console.print(f"Saved: {stored.created_at:%Y-%m-%d %H:%M} UTC")
    console.print("Parameters: " + escape(tables.params_text(record.params)))
    if record.data_file is not None and record.data_sha256 is not None:
        console.print(f"Data file: {escape(record.data_file)} (sha256 {record.data_sha256})")
    console.print("Verdict: " + tables.verdict_markup(record.recommendation, record.metrics))
    for warning in result.warnings:
        console.print("[yellow]warning:[/] " + escape(warning))
    settings = record.settings
    console.print(tables.metrics_table(result))
    console.print(tables.settings_table("Costs and sizing", tables.cost_rows(settings)))
    limits = risk_rows(settings)
    if limits:
        console.print(tables.settings_table("Risk limits", limits))
    else:
        console.print("Risk limits: none")
    console.print(tables.settings_table("Exits", tables.exit_rows(settings)))
    rules = tables.portfolio_rule_rows(settings)
    if rules:
        console.print(tables.settings_table("Portfolio rules", rules))
    console.print(tables.trades_table(result.trades))


def _print_tables(*tables: Any) -> None:
    from marketbot.cli.tables import make_console

    console = make_console()
    for table in tables:
        console.print(table)


def _print_json(payload: Any) -> None:
    sys.stdout.write(json.dumps(_json_ready(payload), allow_nan=False) + "\n")


def _json_ready(value: Any) -> Any:
    """JSON has no infinity or NaN: both become null, anywhere in the payload."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(key): _json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    return value


def _iso(value: datetime) -> str:
    return f"{value:%Y-%m-%dT%H:%M:%SZ}"


def _data_json(run: BacktestRunSummary | BacktestRecord) -> dict[str, Any]:
    """The fields that say which bars a run traded on."""
    return {
        "symbol": run.symbol,
        "data_file": run.data_file,
        "data_sha256": run.data_sha256,
        "source": run.source,
        "timeframe": run.timeframe,
        "start": _iso(run.start),
        "end": _iso(run.end),
    }


def _summary_json(run: BacktestRunSummary) -> dict[str, Any]:
    from marketbot.backtest.result import verdict_line

    metrics = run.metrics
    return {
        "id": run.id,
        "saved": _iso(run.created_at),
        "strategy": run.strategy,
        "params": run.params,
        **_data_json(run),
        "return_pct": metrics.get("return_pct"),
        "sharpe": metrics.get("sharpe"),
        "max_drawdown_pct": metrics.get("max_drawdown_pct"),
        "trades": run.trade_count,
        "recommendation": run.recommendation,
        "verdict": verdict_line(run.recommendation, metrics),
    }


def _run_json(stored: StoredBacktestRun) -> dict[str, Any]:
    return {"id": stored.id, "saved": _iso(stored.created_at), **_data_json(stored.record)}


def _optimization_json(run: OptimizationRunSummary) -> dict[str, Any]:
    return {
        "id": run.id,
        "saved": _iso(run.created_at),
        "strategy": run.strategy,
        "symbol": run.symbol,
        "method": run.method,
        "grid": run.grid,
        "metric": run.metric,
        "best_params": run.best_params,
        "best_value": run.best_metric,
        "combinations": run.combinations,
    }


def _comparison_json(comparison: RunComparison, runs: list[BacktestRunSummary]) -> dict[str, Any]:
    return {
        "runs": [
            {"id": run.id, "strategy": run.strategy, "params": run.params, **_data_json(run)}
            for run in runs
        ],
        "rows": [
            {"key": row.key, "label": row.label, "values": row.values, "best": row.best}
            for row in comparison.rows
        ],
    }
