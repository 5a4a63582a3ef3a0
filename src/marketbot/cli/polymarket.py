"""``marketbot polymarket ...``: collect, update, list and export price history; import books.

Heavy imports happen inside the commands so that ``marketbot --help`` stays fast.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from marketbot.cli.common import open_database

if TYPE_CHECKING:
    from marketbot.sources.polymarket import PolymarketCollector

polymarket_app = typer.Typer(
    help="Collect Polymarket markets and their outcome-token price history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bar.")]
_DATE_ONLY_LENGTH = len("YYYY-MM-DD")


def _moment(value: str | None, option: str, *, whole_day: bool = False) -> datetime | None:
    """A UTC datetime from a date or ISO time; a bare end date means the whole of that day."""
    if value is None:
        return None
    import pandas as pd

    from marketbot.core.errors import ConfigError

    try:
        stamp: pd.Timestamp | None = pd.Timestamp(value)
    except (ValueError, TypeError):
        stamp = None
    if stamp is None or pd.isna(stamp):
        raise ConfigError(f"{option} {value!r}: not a date (use YYYY-MM-DD or an ISO 8601 time)")
    if whole_day and len(value.strip()) == _DATE_ONLY_LENGTH:
        stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(seconds=1)
    utc = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return utc.to_pydatetime()


def _collector() -> PolymarketCollector:
    from marketbot.config import load_settings
    from marketbot.sources.polymarket import PolymarketCollector

    return PolymarketCollector.from_settings(load_settings(), open_database())


@polymarket_app.command("collect")
def polymarket_collect(
    market: Annotated[
        str, typer.Option(help="Market slug, event slug (all its markets) or numeric id.")
    ],
    start: Annotated[
        str | None, typer.Option(help="From (date or time, UTC; default: the market's start).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="To, inclusive (default: now, or when the market closed).")
    ] = None,
    fidelity: Annotated[
        int | None, typer.Option(help="Minutes between points (default: 60).", min=1)
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Store a market's details and every outcome token's price history (re-runs overwrite)."""
    from marketbot.cli.progress import progress_bar
    from marketbot.sources.polymarket import DEFAULT_FIDELITY_MINUTES

    first, last = _moment(start, "--start"), _moment(end, "--end", whole_day=True)
    with _collector() as collector, progress_bar("price history", quiet=quiet) as advance:
        summary = collector.collect_market(
            market,
            start=first,
            end=last,
            fidelity_minutes=fidelity if fidelity is not None else DEFAULT_FIDELITY_MINUTES,
            progress=advance,
        )
    for line in summary.lines():
        typer.echo(line)


@polymarket_app.command("update")
def polymarket_update(quiet: Quiet = False) -> None:
    """Bring every stored market up to date; closed markets already complete are skipped."""
    from marketbot.cli.progress import progress_bar

    with _collector() as collector, progress_bar("price history", quiet=quiet) as advance:
        summary = collector.update_all(progress=advance)
    for line in summary.lines():
        typer.echo(line)
    if summary.failures:
        raise typer.Exit(code=1)


def _outcomes_text(info: Any, winner: str | None) -> str:
    prices = info.outcome_prices or (None,) * len(info.outcomes)
    parts = []
    for outcome, price in zip(info.outcomes, prices, strict=True):
        text = outcome if price is None else f"{outcome} {price:.3g}"
        parts.append(f"{text} (won)" if outcome == winner else text)
    return " / ".join(parts)


@polymarket_app.command("list")
def polymarket_list() -> None:
    """List stored markets: question, outcomes, status, points and range, book snapshots."""
    from rich.table import Table

    from marketbot.cli.tables import make_console
    from marketbot.store.polymarket import PolymarketRepository
    from marketbot.store.polymarket_books import PolymarketBookRepository

    database = open_database()
    summaries = PolymarketRepository(database).list_summaries()
    snapshots = PolymarketBookRepository(database).snapshot_counts()
    table = Table(title="Stored Polymarket markets")
    columns = ["id", "market", "question", "outcomes", "status", "points", "first", "last"]
    if snapshots:  # only then: the table is wide enough already
        columns.append("book snapshots")
    for column in columns:
        numeric = column in {"points", "book snapshots"}
        table.add_column(column, justify="right" if numeric else "left")
    for item in summaries:
        info = item.market.info
        status = "closed" if info.closed else "open"
        if item.market.history_complete:
            status += ", complete"
        cells = [
            info.market_id,
            info.slug,
            info.question,
            _outcomes_text(info, item.market.winning_outcome),
            status,
            str(item.points),
            "" if item.first is None else f"{item.first:%Y-%m-%d %H:%M}",
            "" if item.last is None else f"{item.last:%Y-%m-%d %H:%M}",
        ]
        if snapshots:
            cells.append(f"{snapshots.get(info.market_id, 0):,}")
        table.add_row(*cells)
    console = make_console()
    if not summaries:
        console.print(
            "no Polymarket markets stored; run: marketbot polymarket collect --market SLUG, "
            "or marketbot polymarket import-sample"
        )
        return
    console.print(table)


@polymarket_app.command("export")
def polymarket_export(
    market: Annotated[str, typer.Option(help="Stored market's slug or numeric id.")],
    output: Annotated[
        Path | None, typer.Option(help="CSV file to write (default: standard output).")
    ] = None,
) -> None:
    """Export a stored market's prices as CSV: a timestamp column, one column per outcome."""
    import pandas as pd

    from marketbot.core.errors import ConfigError
    from marketbot.store.polymarket import PolymarketRepository

    frame = PolymarketRepository(open_database()).load_market_prices(market)
    frame.index = pd.DatetimeIndex(frame.index).strftime("%Y-%m-%dT%H:%M:%SZ")
    if output is None:
        frame.to_csv(sys.stdout)
        return
    try:
        frame.to_csv(output)
    except OSError as exc:
        raise ConfigError(f"--output {output}: cannot write it ({exc})") from exc
    typer.echo(f"exported {len(frame)} rows of {market} to {output}")


@polymarket_app.command("import-book")
def polymarket_import_book(
    markets: Annotated[
        Path,
        typer.Option(
            help="Markets CSV, plain or .gz: "
            "market_id,slug,question,start,end,payout_<a>,payout_<b>[,winner]."
        ),
    ],
    books: Annotated[
        Path,
        typer.Option(
            help="Book snapshots CSV, plain or .gz: "
            "timestamp,slug,side,best_bid,bid_size,best_ask,ask_size[,mid]."
        ),
    ],
) -> None:
    """Store binary markets and the top of their order books, all or nothing (re-runs upsert)."""
    from marketbot.sources.polymarket_book_csv import read_books_csv, read_markets_csv
    from marketbot.store.polymarket_books import PolymarketBookRepository

    # Both files are read and checked before the database is opened: bad input stores nothing.
    market_frame = read_markets_csv(markets)
    book_frame = read_books_csv(books, market_frame)
    summary = PolymarketBookRepository(open_database()).import_frames(market_frame, book_frame)
    typer.echo(f"{summary.line()} from {markets.name} and {books.name}")


@polymarket_app.command("import-sample")
def polymarket_import_sample() -> None:
    """Store the shipped sample: 18 settled BTC 15-minute markets and their books (CC BY 4.0)."""
    from marketbot.sources.polymarket_book_sample import read_sample
    from marketbot.store.polymarket_books import PolymarketBookRepository

    market_frame, book_frame = read_sample()
    summary = PolymarketBookRepository(open_database()).import_frames(market_frame, book_frame)
    typer.echo(f"{summary.line()} (Resolved Markets, resolvedkit sample data, CC BY 4.0)")
