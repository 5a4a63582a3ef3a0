"""``marketbot data ...``: import, collect, check, repair, update and export price history.

Heavy imports happen inside the commands so that ``marketbot --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from marketbot.cli_common import open_database

data_app = typer.Typer(
    help="Import, collect, list, check, update and export stored price history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@data_app.command("import")
def data_import(
    file: Annotated[Path, typer.Argument(help="CSV with timestamp,open,high,low,close,volume.")],
    symbol: Annotated[str, typer.Option(help="Symbol to store it under, e.g. bitcoin.")],
    timeframe: Annotated[str | None, typer.Option(help="Timeframe (default: inferred).")] = None,
    source: Annotated[str, typer.Option(help="Where the data came from.")] = "csv",
) -> None:
    """Import an OHLCV CSV into the database (all or nothing; re-import overwrites)."""
    from marketbot.sources.csv_file import import_csv
    from marketbot.store.prices import PriceRepository

    summary = import_csv(
        PriceRepository(open_database()), file, symbol=symbol, timeframe=timeframe, source=source
    )
    typer.echo(summary)


@data_app.command("list")
def data_list() -> None:
    """List stored series: symbols, timeframes, ranges, row counts and gaps."""
    from marketbot.cli_tables import make_console, series_table
    from marketbot.store.prices import PriceRepository

    make_console().print(series_table(PriceRepository(open_database()).list_series()))
