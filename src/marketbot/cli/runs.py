"""``marketbot runs``: past backtest and optimiser runs stored in the database."""

from __future__ import annotations

from typing import Annotated

import typer

from marketbot.cli.common import open_database

runs_app = typer.Typer(
    help="Past backtest runs stored in the database.", no_args_is_help=True, rich_markup_mode=None
)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(help="How many recent runs.")] = 20,
    strategy: Annotated[str | None, typer.Option(help="Only this strategy.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
) -> None:
    """List recent backtest runs with their key metrics, newest first."""
    from marketbot.cli.tables import make_console, runs_table
    from marketbot.store.runs import BacktestRunRepository

    runs = BacktestRunRepository(open_database()).list_runs(
        limit=limit, strategy=strategy, symbol=symbol
    )
    make_console().print(runs_table(runs))
