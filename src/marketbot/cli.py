"""The ``marketbot`` command line: wiring only; the work happens in the layers below.

Heavy imports (pandas, numba, SQLAlchemy) happen inside the commands, so ``marketbot --help``
stays fast. Every ``MarketbotError`` becomes one line on stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

import marketbot.cli_download  # noqa: F401 - registers `data download`
from marketbot.cli_common import open_database, parse_key_values
from marketbot.cli_data import data_app
from marketbot.cli_polymarket import polymarket_app

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult
    from marketbot.core.risk_limits import RiskLimits

app = typer.Typer(
    name="marketbot",
    help="Test trading strategies on real price history before money is at risk.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: typer's rich formatter imports markdown-it and costs ~0.7 s per call.
    rich_markup_mode=None,
)
runs_app = typer.Typer(
    help="Past backtest runs stored in the database.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(data_app, name="data")
app.add_typer(runs_app, name="runs")
app.add_typer(polymarket_app, name="polymarket")


def _parse_params(pairs: list[str] | None) -> dict[str, str]:
    return parse_key_values(pairs, option="--param", usage="use KEY=VALUE, e.g. --param fast=10")


@app.command()
def backtest(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    symbol: Annotated[
        list[str] | None,
        typer.Option(help="Stored symbol, e.g. bitcoin; repeat it for a portfolio run."),
    ] = None,
    universe: Annotated[
        Path | None, typer.Option(help="File of stored symbols, one per line (portfolio).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day to trade (YYYY-MM-DD, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day to trade (inclusive).")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter KEY=VALUE.")] = None,
    fee: Annotated[float, typer.Option(help="Fee per fill, fraction of notional.")] = 0.002,
    slippage: Annotated[float, typer.Option(help="Slippage per fill, fraction.")] = 0.001,
    cash: Annotated[float, typer.Option(help="Starting cash.")] = 10_000.0,
    data: Annotated[Path | None, typer.Option(help="Backtest this OHLCV CSV instead.")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Stored timeframe, e.g. 1h.")] = None,
    source: Annotated[
        str | None, typer.Option(help="Stored source, e.g. coingecko or binance.")
    ] = None,
    stop_loss: Annotated[float | None, typer.Option(help="Stop-loss fraction.")] = None,
    take_profit: Annotated[float | None, typer.Option(help="Take-profit fraction.")] = None,
    trailing_stop: Annotated[float | None, typer.Option(help="Trailing stop fraction.")] = None,
    max_hold: Annotated[str | None, typer.Option(help="Longest hold, e.g. 24h.")] = None,
    risk: Annotated[
        bool, typer.Option(help="Apply the configured risk limits and circuit breaker.")
    ] = False,
    risk_file: Annotated[Path | None, typer.Option(help="TOML file of risk limits.")] = None,
    max_positions: Annotated[
        int | None, typer.Option(help="Portfolio: open positions at once (default: all).")
    ] = None,
    max_exposure: Annotated[
        float | None, typer.Option(help="Portfolio: gross exposure cap, fraction of equity.")
    ] = None,
    portfolio_stop: Annotated[
        float | None, typer.Option(help="Portfolio: close all at this drawdown fraction.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write an HTML report here.")] = None,
) -> None:
    """Backtest a strategy on stored data or a CSV file, print metrics, save the run."""
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.sources.csv_file import read_ohlcv_csv

    params = _parse_params(param)
    limits = _risk_limits(strategy, risk_file) if risk or risk_file else None
    frame = read_ohlcv_csv(data) if data is not None else None
    names = _symbols(symbol, universe) if frame is None else []
    engine = BacktestingEngine(None if frame is not None else open_database())
    result = engine.run_backtest(
        strategy,
        start,
        end,
        symbol=names[0] if len(names) == 1 else None,
        symbols=names if len(names) > 1 else None,
        data=frame,
        params=params,
        fee=fee,
        slippage=slippage,
        cash=cash,
        timeframe=timeframe,
        source=source,
        stop_loss=stop_loss,
        take_profit=take_profit,
        trailing_stop=trailing_stop,
        max_hold=max_hold,
        risk=limits,
        max_open_positions=max_positions,
        max_exposure=max_exposure,
        portfolio_stop=portfolio_stop,
        save=frame is None,
    )
    if report is not None:
        from marketbot.backtest.report import write_report

        write_report(result, report)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
        return
    _print_result(result, report)


def _risk_limits(strategy: str, risk_file: Path | None) -> RiskLimits:
    from marketbot.config import load_risk_config, load_settings
    from marketbot.strategies.loader import load_strategy

    config = load_risk_config(load_settings(), path=risk_file)
    return config.limits_for(load_strategy(strategy).name)


def _symbols(symbols: list[str] | None, universe: Path | None) -> list[str]:
    from marketbot.core.errors import ConfigError

    names = list(symbols or [])
    if universe is not None:
        try:
            lines = universe.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"--universe {universe}: cannot read it ({exc})") from exc
        names += [ln.split("#", 1)[0].strip() for ln in lines if ln.split("#", 1)[0].strip()]
    if not names:
        raise ConfigError("give --symbol (stored data), --universe FILE or --data FILE.csv")
    return list(dict.fromkeys(names))


def _require_symbol(symbol: str | None) -> str:
    from marketbot.core.errors import ConfigError

    if not symbol:
        raise ConfigError("give --symbol (stored data) or --data FILE.csv")
    return symbol


def _print_result(result: BacktestResult, report: Path | None) -> None:

    from marketbot.cli_tables import make_console, metrics_table

    console = make_console()
    console.print(metrics_table(result))
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    if result.per_symbol is not None:
        from marketbot.cli_tables import per_symbol_table

        console.print(per_symbol_table(result.per_symbol))
    if report is not None:
        console.print(f"report: {report.resolve()}")


@app.command()
def strategies() -> None:
    """List the built-in strategies with their parameters, defaults and ranges."""
    from marketbot.cli_tables import make_console, strategies_table

    make_console().print(strategies_table())


@app.command()
def lookahead(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    symbol: Annotated[str | None, typer.Option(help="Stored symbol.")] = None,
    data: Annotated[Path | None, typer.Option(help="OHLCV CSV file.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter KEY=VALUE.")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Stored timeframe.")] = None,
    cuts: Annotated[int, typer.Option(help="How many cut points to test.")] = 40,
) -> None:
    """Check a strategy for lookahead bias: change the future, see if past signals move."""
    from marketbot.backtest.lookahead import check_lookahead
    from marketbot.cli_tables import make_console
    from marketbot.sources.csv_file import read_ohlcv_csv
    from marketbot.store.prices import PriceRepository
    from marketbot.strategies.loader import load_strategy

    instance = load_strategy(strategy)
    params = instance.resolve_params(_parse_params(param))
    if data is not None:
        frame = read_ohlcv_csv(data)
    else:
        frame = PriceRepository(open_database()).load_bars(
            _require_symbol(symbol), timeframe=timeframe
        )
    report = check_lookahead(instance, frame, params, cuts=cuts)
    console = make_console()
    console.print(report.summary())
    for finding in report.findings[:50]:
        console.print(f"  {finding.describe()}")
    if not report.passed:
        raise typer.Exit(code=2)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
) -> None:
    """List recent backtest runs with their key metrics, newest first."""
    from marketbot.cli_tables import make_console, runs_table
    from marketbot.store.runs import BacktestRunRepository

    runs = BacktestRunRepository(open_database()).list_runs(
        limit=limit, strategy=strategy, symbol=symbol
    )
    make_console().print(runs_table(runs))


@app.command()
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
    data: Annotated[Path | None, typer.Option(help="Optimise on this OHLCV CSV instead.")] = None,
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
    min_trades: Annotated[int, typer.Option(help="Fewer trades: not eligible to win.")] = 0,
    fee: Annotated[float, typer.Option(help="Fee per fill, fraction of notional.")] = 0.002,
    slippage: Annotated[float, typer.Option(help="Slippage per fill, fraction.")] = 0.001,
    cash: Annotated[float, typer.Option(help="Starting cash.")] = 10_000.0,
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
    from marketbot.cli_optimize import (
        parse_grid,
        run_walk_forward,
        window_lengths,
        write_report_with_sensitivity,
    )
    from marketbot.cli_progress import progress_bar
    from marketbot.optimize.executors import make_executor
    from marketbot.optimize.optimizer import StrategyOptimizer
    from marketbot.sources.csv_file import read_ohlcv_csv

    ranges = parse_grid(grid, range_)
    windows = window_lengths(walk_forward) if walk_forward is not None else None
    frame = read_ohlcv_csv(data) if data is not None else None
    names = _symbols(symbol, None) if frame is None else []
    engine = BacktestingEngine(None if frame is not None else open_database())
    optimizer = StrategyOptimizer(
        engine, executor=make_executor(executor, jobs=jobs, scheduler=scheduler)
    )
    where: dict[str, Any] = {
        "symbol": names[0] if len(names) == 1 else None,
        "symbols": names if len(names) > 1 else None,
        "data": frame,
    }
    costs: dict[str, Any] = {"fee": fee, "slippage": slippage, "cash": cash}
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
    if report is not None:
        write_report_with_sensitivity(
            optimizer, result, walk, report, where, costs, start, end, timeframe
        )
    if as_json:
        payload = result.to_dict()
        if walk is not None:
            payload["walk_forward"] = walk.to_dict()
        sys.stdout.write(json.dumps(payload, allow_nan=False, default=str) + "\n")
        return
    from marketbot.cli_tables import make_console, optimization_table, walk_forward_table

    console = make_console()
    console.print(optimization_table(result, top))
    if walk is not None:
        console.print(walk_forward_table(walk))
    if report is not None:
        console.print(f"report: {report.resolve()}")


@app.command()
def demo(
    sample_dir: Annotated[Path, typer.Option(help="Folder of the bundled sample CSVs.")] = Path(
        "data/sample"
    ),
) -> None:
    """Set up the database with the bundled data and backtest every built-in strategy."""
    from marketbot.config import load_settings
    from marketbot.demo import run_demo

    run_demo(open_database(), sample_dir, load_settings().data_dir / "reports")


def main(argv: list[str] | None = None) -> Any:
    """Console-script entry point: run the app, turning marketbot errors into one line."""
    from marketbot.core.errors import MarketbotError

    try:
        code = app(args=argv, standalone_mode=False)
    except MarketbotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(1) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        typer.echo("aborted", err=True)
        raise SystemExit(1) from None
    except Exception as exc:  # click usage errors carry their own exit codes
        from click.exceptions import ClickException

        if isinstance(exc, ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        raise
    # Without standalone mode click returns a command's exit code instead of exiting.
    if isinstance(code, int) and code != 0:
        raise SystemExit(code)
    return code
