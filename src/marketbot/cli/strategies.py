"""``marketbot strategies`` and ``lookahead``: what strategies there are, and whether one peeks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final

import typer

from marketbot.cli.common import open_database, parse_column_map, parse_params

if TYPE_CHECKING:
    import pandas as pd

    from marketbot.backtest.lookahead import LookaheadReport

LOOKAHEAD_SHOWN: Final = 50
"""How many changed signals ``marketbot lookahead`` prints before ``... and N more``."""


def strategies() -> None:
    """List the built-in strategies with their parameters, defaults and ranges."""
    from marketbot.cli.tables import make_console, strategies_table

    make_console().print(strategies_table())


def lookahead(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    symbol: Annotated[str | None, typer.Option(help="Stored symbol.")] = None,
    data: Annotated[Path | None, typer.Option(help="OHLCV CSV file.")] = None,
    columns: Annotated[
        list[str] | None,
        typer.Option(help="CSV column names, e.g. timestamp=Date,close=Price (with --data)."),
    ] = None,
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter KEY=VALUE.")] = None,
    timeframe: Annotated[str | None, typer.Option(help="Stored timeframe.")] = None,
    cuts: Annotated[int, typer.Option(help="How many cut points to test.")] = 40,
) -> None:
    """Check a strategy for lookahead bias: change the future, see if past signals move.

    Exit code 0 when no signal moved, 1 when some did (each printed, up to 50).
    """
    from marketbot.backtest.lookahead import check_lookahead
    from marketbot.cli.tables import make_console
    from marketbot.core.errors import ConfigError
    from marketbot.strategies.binary import is_binary
    from marketbot.strategies.loader import load_strategy

    column_map = parse_column_map(columns)
    check_bars_choice(symbol, data, column_map)
    instance = load_strategy(strategy)
    if is_binary(instance):  # its signals read order books (ask_0...), not OHLCV bars
        raise ConfigError(
            f"{instance.name} is a binary-market strategy: use --market (with backtest or run); "
            "lookahead checks strategies on OHLCV bars"
        )
    params = instance.resolve_params(parse_params(param))
    frame = _load_bars(symbol, data, column_map, timeframe)
    report = check_lookahead(instance, frame, params, cuts=cuts)
    console = make_console()
    for line in lookahead_lines(report):
        console.print(line, highlight=False, soft_wrap=True)
    if not report.passed:
        # A failed check is a result, not a usage error (2): exit 1, as a failing test does.
        raise typer.Exit(code=1)


def lookahead_lines(report: LookaheadReport, shown: int = LOOKAHEAD_SHOWN) -> list[str]:
    """The summary, then up to ``shown`` findings, then ``... and N more`` for the rest."""
    lines = [report.summary()]
    lines += [f"  {finding.describe()}" for finding in report.findings[:shown]]
    hidden = len(report.findings) - shown
    if hidden > 0:
        lines.append(f"  ... and {hidden} more")
    return lines


def check_bars_choice(
    symbol: str | None, data: Path | None, columns: dict[str, str] | None
) -> None:
    """Refuse both ``--symbol`` and ``--data``, and ``--columns`` without ``--data``.

    Raises:
        ConfigError: naming the options that clash.
    """
    from marketbot.core.errors import ConfigError

    if symbol and data is not None:
        raise ConfigError(
            "--symbol and --data both name the bars to check: give a stored symbol or a CSV file"
        )
    if columns and data is None:
        raise ConfigError("--columns maps the columns of a CSV file: use it with --data FILE")


def _load_bars(
    symbol: str | None,
    data: Path | None,
    columns: dict[str, str] | None,
    timeframe: str | None,
) -> pd.DataFrame:
    from marketbot.sources.csv_file import read_ohlcv_csv
    from marketbot.store.prices import PriceRepository

    if data is not None:
        return read_ohlcv_csv(data, columns)
    return PriceRepository(open_database()).load_bars(require_symbol(symbol), timeframe=timeframe)


def require_symbol(symbol: str | None) -> str:
    """The ``--symbol`` given, or a ConfigError asking for it or ``--data``."""
    from marketbot.core.errors import ConfigError

    if not symbol:
        raise ConfigError("give --symbol (stored data) or --data FILE.csv")
    return symbol
