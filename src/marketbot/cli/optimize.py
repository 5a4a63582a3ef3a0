"""``marketbot optimize``: search a strategy's parameters, walk-forward, the report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from marketbot.cli.backtest import (
    check_data_choice,
    check_instrument,
    refuse_ohlcv_options,
    symbol_list,
)
from marketbot.cli.common import open_database
from marketbot.cli.progress import progress_bar


def optimize(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    grid: Annotated[
        list[str] | None, typer.Option(help="KEY=V1,V2,... values to try (repeatable).")
    ] = None,
    range_: Annotated[
        list[str] | None,
        typer.Option("--range", help="KEY=LOW:HIGH[:STEP], both ends included (repeatable)."),
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option(help="Stored symbol; repeat it for a universe.")
    ] = None,
    market: Annotated[
        list[str] | None,
        typer.Option(help="Stored binary market slug (binary strategies); repeatable."),
    ] = None,
    markets: Annotated[
        str | None,
        typer.Option(help="'all': every stored binary market with books (the default)."),
    ] = None,
    data: Annotated[Path | None, typer.Option(help="Optimise on this OHLCV CSV instead.")] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(help="CSV column names, e.g. timestamp=Date,close=Price (with --data)."),
    ] = None,
    metric: Annotated[str, typer.Option(help="Metric to optimise (drawdowns minimised).")] = (
        "sharpe"
    ),
    method: Annotated[str, typer.Option(help="grid (every combination) or optuna (TPE).")] = (
        "grid"
    ),
    trials: Annotated[int, typer.Option(help="Optuna: how many trials.")] = 100,
    seed: Annotated[int | None, typer.Option(help="Optuna: sampler seed.")] = None,
    walk_forward: Annotated[
        str | None,
        typer.Option(help="IS:OOS window lengths, e.g. 365d:90d or bar counts 2000:500."),
    ] = None,
    anchored: Annotated[bool, typer.Option(help="Walk-forward: in-sample from the start.")] = (
        False
    ),
    start: Annotated[str | None, typer.Option(help="First day to trade (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day to trade (inclusive).")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Stored timeframe, e.g. 1h.")] = None,
    min_trades: Annotated[
        int, typer.Option(help="Fewer trades (or none): not eligible to win.")
    ] = 0,
    fee: Annotated[
        float | None,
        typer.Option(help="Fee per fill, fraction of notional [default: 0.002; binary: 0.07]."),
    ] = None,
    slippage: Annotated[
        float | None,
        typer.Option(help="Slippage per fill, fraction [default: 0.001; binary: 0]."),
    ] = None,
    cash: Annotated[float, typer.Option(help="Starting cash.")] = 10_000.0,
    sizing: Annotated[
        str | None,
        typer.Option(
            help="all_in, fraction or fixed_cash [default: all_in]; binary markets: shares, "
            "fixed_cash or fraction [default: fixed_cash, $1,000 a group]."
        ),
    ] = None,
    size: Annotated[
        float | None,
        typer.Option(help="The sizing's amount: a fraction, USD, or shares per leg."),
    ] = None,
    jobs: Annotated[int | None, typer.Option(help="Workers (default: cores).")] = None,
    executor: Annotated[str, typer.Option(help="thread, process or dask.")] = "thread",
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, tcp://HOST:PORT.")
    ] = None,
    top: Annotated[int, typer.Option(help="Rows of the ranking to print.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write an HTML report (heatmap, sensitivity...).")
    ] = None,
) -> None:
    """Search strategy parameters on stored data or a CSV; print the ranking, save the run."""
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.cli.common import parse_column_map
    from marketbot.optimize.executors import make_executor
    from marketbot.optimize.optimizer import StrategyOptimizer
    from marketbot.sources.csv_file import read_ohlcv_csv

    binary = check_instrument(strategy, market, markets, symbol=symbol, universe=None, data=data)
    binary_where = (
        market_choice(strategy, market, markets, {"--walk-forward": walk_forward,
                      "--start": start, "--end": end, "--timeframe": timeframe})
        if binary
        else _no_markets(symbol, data, columns)
    )  # fmt: skip
    ranges = parse_grid(grid, range_)
    windows = window_lengths(walk_forward) if walk_forward is not None else None
    frame = read_ohlcv_csv(data, parse_column_map(columns)) if data is not None else None
    names = symbol_list(symbol, None) if frame is None and not binary else []
    engine = BacktestingEngine(None if frame is not None else open_database())
    optimizer = StrategyOptimizer(
        engine, executor=make_executor(executor, jobs=jobs, scheduler=scheduler)
    )
    where: dict[str, Any] = binary_where or {
        "symbol": names[0] if len(names) == 1 else None,
        "symbols": names if len(names) > 1 else None,
        "data": frame,
    }
    costs: dict[str, Any] = {"fee": fee, "slippage": slippage, "cash": cash}
    costs |= {key: value for key, value in (("sizing", sizing), ("size", size)) if value}
    search: dict[str, Any] = (
        {"method": "optuna", "trials": trials, "seed": seed} if method == "optuna" else {}
    )
    if method not in ("grid", "optuna"):
        from marketbot.core.errors import ConfigError

        raise ConfigError(f"--method {method!r}: use grid or optuna")
    with progress_bar("backtests", quiet=as_json) as advance:
        result = optimizer.optimize_strategy(
            strategy, ranges, metric, **where, start_date=start, end_date=end,
            timeframe=timeframe, min_trades=min_trades, save=frame is None,
            progress=advance, **costs, **search,
        )  # fmt: skip
    walk = None
    if windows is not None:
        walk = run_walk_forward(
            optimizer, strategy, ranges, metric, windows, anchored, where,
            dict(start_date=start, end_date=end, timeframe=timeframe, min_trades=min_trades,
                 **costs, search_options=search or None),
            quiet=as_json,
        )  # fmt: skip
    if walk is not None and frame is None:
        from marketbot.store.walk_forward_runs import save_walk_forward

        save_walk_forward(open_database(), walk, symbol=names[0], timeframe=timeframe)
    if report is not None and result.best_params is not None:  # else the message says why
        write_report_with_sensitivity(
            optimizer, result, walk, report, where, costs, start, end, timeframe
        )
    if as_json:
        payload = result.to_dict()
        if walk is not None:
            payload["walk_forward"] = walk.to_dict()
        sys.stdout.write(json.dumps(payload, allow_nan=False, default=str) + "\n")
        return
    from marketbot.cli.tables import make_console, optimization_table, walk_forward_table

    console = make_console()
    if result.message is not None:
        console.print(f"{result.strategy}: {result.message}", markup=False, highlight=False)
        return
    console.print(optimization_table(result, top))
    if walk is not None:
        console.print(walk_forward_table(walk))
    if report is not None:
        console.print(f"report: {report.resolve()}")


def market_choice(
    strategy: str,
    market: list[str] | None,
    markets: str | None,
    ohlcv_only: dict[str, object],
) -> dict[str, Any]:
    """The optimiser's keywords naming the markets of a binary strategy.

    Raises:
        ConfigError: an option only OHLCV runs take.
    """
    refuse_ohlcv_options(strategy, ohlcv_only)
    return {
        "market": market[0] if market and len(market) == 1 else None,
        "markets": market if market and len(market) > 1 else (None if market else "all"),
    }


def _no_markets(
    symbol: list[str] | None, data: Path | None, columns: list[str] | None
) -> dict[str, Any]:
    """An OHLCV run names no markets; its bars come from stored symbols or one CSV file."""
    check_data_choice(symbol, None, data, columns)
    return {}


def window_lengths(windows: str) -> tuple[int | str, int | str]:
    """``IS:OOS`` as two window lengths: bar counts (digits) or durations (``365d``)."""
    from marketbot.core.errors import ConfigError

    in_text, sep, out_text = windows.partition(":")
    if not sep or not in_text or not out_text:
        raise ConfigError(f"--walk-forward {windows!r}: use IS:OOS, e.g. 365d:90d or 2000:500")

    def length(text: str) -> int | str:
        return int(text) if text.isdigit() else text

    return length(in_text), length(out_text)


def run_walk_forward(
    optimizer: Any,
    strategy: str,
    ranges: dict[str, Any],
    metric: str,
    windows: tuple[int | str, int | str],
    anchored: bool,
    where: dict[str, Any],
    options: dict[str, Any],
    *,
    quiet: bool,
) -> Any:
    """Walk-forward validation of the grid on one symbol or CSV, with a progress bar."""
    from marketbot.core.errors import ConfigError
    from marketbot.optimize.walk_forward import walk_forward

    if where["symbols"] is not None:
        raise ConfigError("--walk-forward takes one --symbol or --data, not a universe")
    with progress_bar("walk-forward", quiet=quiet) as advance:
        return walk_forward(
            optimizer, strategy, ranges, metric, in_sample=windows[0],
            out_of_sample=windows[1], anchored=anchored, data=where["data"],
            symbol=where["symbol"], progress=advance, **options,
        )  # fmt: skip


def write_report_with_sensitivity(
    optimizer: Any,
    result: Any,
    walk: Any,
    path: Path,
    where: dict[str, Any],
    costs: dict[str, Any],
    start: str | None,
    end: str | None,
    timeframe: str | None,
) -> None:
    """The optimisation report, with sensitivity around the best point and walk-forward."""
    from marketbot.optimize.report import write_optimization_report
    from marketbot.optimize.sensitivity import sensitivity

    curves = sensitivity(
        optimizer, result, **where, start_date=start, end_date=end, timeframe=timeframe, **costs
    )
    write_optimization_report(result, path, sensitivity=curves, walk_forward=walk)


def parse_grid(grid: list[str] | None, ranges: list[str] | None) -> dict[str, Any]:
    """``--grid KEY=V1,V2`` and ``--range KEY=LOW:HIGH[:STEP]`` as optimiser ranges."""
    from marketbot.core.errors import ConfigError
    from marketbot.optimize.smart_search import ParamRange

    parsed: dict[str, Any] = {}
    for item in grid or []:
        key, sep, values = item.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise ConfigError(f"--grid {item!r}: use KEY=V1,V2,... e.g. --grid fast=5,10,20")
        parsed[key.strip()] = [v.strip() for v in values.split(",") if v.strip()]
    for item in ranges or []:
        key, sep, bounds = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--range {item!r}: use KEY=LOW:HIGH[:STEP], e.g. slow=50:200:10")
        try:
            parsed[key.strip()] = ParamRange.parse(bounds)
        except ConfigError as exc:
            raise ConfigError(f"--range {item!r}: {exc}") from exc
    if not parsed:
        raise ConfigError("give at least one --grid KEY=V1,V2 or --range KEY=LOW:HIGH[:STEP]")
    return parsed
