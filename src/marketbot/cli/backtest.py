"""``marketbot backtest`` and ``demo``: backtest a strategy, print and save the result."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from marketbot.cli.common import open_database, parse_params

if TYPE_CHECKING:
    from collections.abc import Mapping

    from marketbot.backtest.result import BacktestResult
    from marketbot.backtest.run_config import RunConfig
    from marketbot.store.database import Database


def backtest(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    symbol: Annotated[
        list[str] | None,
        typer.Option(help="Stored symbol, e.g. bitcoin; repeat it for a portfolio run."),
    ] = None,
    universe: Annotated[
        Path | None, typer.Option(help="File of stored symbols, one per line (portfolio).")
    ] = None,
    market: Annotated[
        list[str] | None,
        typer.Option(help="Stored binary market slug (binary strategies); repeatable."),
    ] = None,
    markets: Annotated[
        str | None,
        typer.Option(help="'all': every stored binary market with books (the default)."),
    ] = None,
    start: Annotated[str | None, typer.Option(help="First day to trade (YYYY-MM-DD, UTC).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day to trade (inclusive).")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter KEY=VALUE.")] = None,
    fee: Annotated[
        float | None,
        typer.Option(
            help="Fee per fill, fraction of notional [default: 0.002]; binary markets: the "
            "taker rate of shares x fee x p x (1 - p) [default: 0.07]."
        ),
    ] = None,
    slippage: Annotated[
        float | None,
        typer.Option(help="Slippage per fill, fraction [default: 0.001; binary: 0]."),
    ] = None,
    cash: Annotated[float | None, typer.Option(help="Starting cash [default: 10000].")] = None,
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
    data: Annotated[Path | None, typer.Option(help="Backtest this OHLCV CSV instead.")] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(help="CSV column names, e.g. timestamp=Date,close=Price (with --data)."),
    ] = None,
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
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Run configuration TOML (costs, sizing, exits, [risk]); options win over it.",
        ),
    ] = None,
    bot_defaults: Annotated[
        bool,
        typer.Option(help="The bot's defaults: stop 5 %, target 10 %, hold 24h, risk limits."),
    ] = False,
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
    from marketbot.cli.common import parse_column_map
    from marketbot.sources.csv_file import load_ohlcv_csv

    params = parse_params(param)
    if check_instrument(strategy, market, markets, symbol=symbol, universe=universe, data=data):
        binary_options = {
            "fee": fee, "slippage": slippage, "cash": cash, "sizing": sizing, "size": size,
            "stop_loss": stop_loss, "take_profit": take_profit, "max_hold": max_hold,
        }  # fmt: skip
        ohlcv_only = {
            "--start": start, "--end": end, "--timeframe": timeframe, "--source": source,
            "--trailing-stop": trailing_stop, "--risk": risk or None, "--risk-file": risk_file,
            "--config": config_file, "--bot-defaults": bot_defaults or None,
            "--max-positions": max_positions, "--max-exposure": max_exposure,
            "--portfolio-stop": portfolio_stop, "--columns": columns,
        }  # fmt: skip
        refuse_ohlcv_options(strategy, ohlcv_only)
        result = BacktestingEngine(open_database()).run_backtest(
            strategy, market=market[0] if market and len(market) == 1 else None,
            markets=market if market and len(market) > 1 else (None if market else "all"),
            params=params, save=True, **binary_options,  # type: ignore[arg-type]
        )  # fmt: skip
        _show(result, report, as_json=as_json)
        return
    check_data_choice(symbol, universe, data, columns)
    run_config = _run_config(
        config_file,
        bot_defaults=bot_defaults,
        overrides={
            "fee": fee,
            "slippage": slippage,
            "cash": cash,
            "stop_loss": stop_loss,
            "take_profit": take_profit,
            "trailing_stop": trailing_stop,
            "max_hold": max_hold,
            "sizing": sizing,
            "size": size,
            "risk": risk or None,
            "risk_file": risk_file,
        },
    )
    backtest_config = run_config.backtest_config(_risk_strategy_name(strategy, run_config))
    csv = load_ohlcv_csv(data, parse_column_map(columns)) if data is not None else None
    names = symbol_list(symbol, universe) if csv is None else []
    database = open_database()
    result = BacktestingEngine(database).run_backtest(
        strategy,
        start,
        end,
        symbol=names[0] if len(names) == 1 else None,
        symbols=names if len(names) > 1 else None,
        data=None if csv is None else csv.frame,
        params=params,
        timeframe=timeframe,
        source=source,
        config=backtest_config,
        max_open_positions=max_positions,
        max_exposure=max_exposure,
        portfolio_stop=portfolio_stop,
        save=csv is None,
    )
    if csv is not None and data is not None:
        result = replace(result, symbol=data.name, notes=csv.notes + result.notes)
        _save_file_run(database, result, data)
    _show(result, report, as_json=as_json)


def _show(result: BacktestResult, report: Path | None, *, as_json: bool) -> None:
    """Write the report if asked, then print the result (a table, or one JSON object)."""
    if report is not None:
        from marketbot.backtest.report import write_report

        write_report(result, report)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), allow_nan=False) + "\n")
        return
    _print_result(result, report)


def check_instrument(
    strategy: str,
    market: list[str] | None,
    markets: str | None,
    *,
    symbol: list[str] | None,
    universe: Path | None,
    data: Path | None,
) -> bool:
    """Whether the run is a binary one; a one-line error when the options name the other kind.

    Raises:
        ConfigError: ``--market``/``--markets`` with an OHLCV strategy, ``--symbol``,
            ``--universe`` or ``--data`` with a binary one, or ``--markets`` other than all.
    """
    from marketbot.core.errors import ConfigError, StrategyError
    from marketbot.strategies.binary import is_binary
    from marketbot.strategies.loader import load_strategy

    try:
        binary = is_binary(load_strategy(strategy))
    except StrategyError:
        if market or markets is not None:
            raise
        return False  # the OHLCV path names the bad strategy, after its own checks
    if not binary and (market or markets is not None):
        raise ConfigError(
            f"--market/--markets name binary markets, but {strategy} trades OHLCV bars: "
            "use --symbol, --universe or --data"
        )
    if binary:
        given = "--symbol" if symbol else "--universe" if universe is not None else "--data"
        if symbol or universe is not None or data is not None:
            raise ConfigError(
                f"{given} names OHLCV bars, but {strategy} trades binary markets: "
                "use --market SLUG or --markets all"
            )
        if markets is not None and markets != "all":
            raise ConfigError(f"--markets {markets!r}: use 'all', or --market SLUG (repeatable)")
        if market and markets is not None:
            raise ConfigError("give --market SLUG (repeatable) or --markets all, not both")
    return binary


def refuse_ohlcv_options(strategy: str, given: Mapping[str, object]) -> None:
    """A one-line error for an option that only OHLCV runs take.

    Raises:
        ConfigError: naming the first such option given.
    """
    from marketbot.core.errors import ConfigError

    for option, value in given.items():
        if value is not None and value != []:
            raise ConfigError(f"{option} is not an option of binary markets ({strategy})")


def check_data_choice(
    symbol: list[str] | None, universe: Path | None, data: Path | None, columns: list[str] | None
) -> None:
    """Refuse two sources of bars (stored symbols and a CSV file), and --columns alone.

    Raises:
        ConfigError: naming the options that clash.
    """
    from marketbot.core.errors import ConfigError

    if data is not None and (symbol or universe is not None):
        given = "--symbol" if symbol else "--universe"
        raise ConfigError(
            f"{given} and --data both name the bars to test: give stored symbols or a CSV file"
        )
    if columns and data is None:
        raise ConfigError("--columns maps the columns of a CSV file: use it with --data FILE")


def _save_file_run(database: Database, result: BacktestResult, path: Path) -> None:
    """Store a run on a CSV file, with the file's name and content hash to match it later."""
    from marketbot.store.runs import BacktestRunRepository, file_sha256, record_from_result

    record = record_from_result(
        result, timeframe=None, source="csv", data_file=path.name, data_sha256=file_sha256(path)
    )
    BacktestRunRepository(database).save(record)


def _run_config(
    path: Path | None, *, bot_defaults: bool, overrides: Mapping[str, object]
) -> RunConfig:
    """The run configuration: ``--config FILE`` or the defaults, the options on top."""
    from marketbot.backtest.run_config import load_run_config
    from marketbot.config import load_settings

    return load_run_config(
        path, settings=load_settings(), bot_defaults=bot_defaults, overrides=overrides
    )


def _risk_strategy_name(strategy: str, run_config: RunConfig) -> str | None:
    """The name whose per-strategy limits apply; None when no limits are on."""
    if run_config.risk is None:
        return None
    from marketbot.strategies.loader import load_strategy

    return load_strategy(strategy).name


def symbol_list(symbols: list[str] | None, universe: Path | None) -> list[str]:
    """The symbols of ``--symbol`` and ``--universe FILE``, in order, without repeats."""
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


def _print_result(result: BacktestResult, report: Path | None) -> None:
    from marketbot.cli.tables import make_console, metrics_table, result_messages

    console = make_console()
    console.print(metrics_table(result))
    for line in result_messages(result):
        console.print(line, markup=False, highlight=False)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.per_symbol is not None:
        from marketbot.cli.tables import per_symbol_table

        console.print(per_symbol_table(result.per_symbol))
    if report is not None:
        console.print(f"report: {report.resolve()}")


def demo(
    sample_dir: Annotated[Path, typer.Option(help="Folder of the bundled sample CSVs.")] = Path(
        "data/sample"
    ),
) -> None:
    """Set up the database with the bundled data and backtest every built-in strategy."""
    from marketbot.cli.demo import run_demo
    from marketbot.config import load_settings

    run_demo(open_database(), sample_dir, load_settings().data_dir / "reports")
