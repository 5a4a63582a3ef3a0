"""``marketbot strategies`` and ``lookahead``: what strategies there are, and whether one peeks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketbot.cli.common import open_database, parse_params


def strategies() -> None:
    """List the built-in strategies with their parameters, defaults and ranges."""
    from marketbot.cli.tables import make_console, strategies_table

    make_console().print(strategies_table())


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
    from marketbot.cli.tables import make_console
    from marketbot.sources.csv_file import read_ohlcv_csv
    from marketbot.store.prices import PriceRepository
    from marketbot.strategies.loader import load_strategy

    instance = load_strategy(strategy)
    params = instance.resolve_params(parse_params(param))
    if data is not None:
        frame = read_ohlcv_csv(data)
    else:
        frame = PriceRepository(open_database()).load_bars(
            require_symbol(symbol), timeframe=timeframe
        )
    report = check_lookahead(instance, frame, params, cuts=cuts)
    console = make_console()
    console.print(report.summary())
    for finding in report.findings[:50]:
        console.print(f"  {finding.describe()}")
    if not report.passed:
        raise typer.Exit(code=2)


def require_symbol(symbol: str | None) -> str:
    """The ``--symbol`` given, or a ConfigError asking for it or ``--data``."""
    from marketbot.core.errors import ConfigError

    if not symbol:
        raise ConfigError("give --symbol (stored data) or --data FILE.csv")
    return symbol
