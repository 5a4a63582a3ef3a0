"""``marketbot data ...``: import, collect, check, repair, update and export price history.

Heavy imports happen inside the commands so that ``marketbot --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from marketbot.cli.common import open_database

data_app = typer.Typer(
    help="Import, collect, list, check, update and export stored price history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@data_app.command("import")
def data_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="OHLCV CSV: timestamp,open,high,low,close,volume, or an exchange export "
            "(see docs/csv_import.md)."
        ),
    ],
    symbol: Annotated[str, typer.Option(help="Symbol to store it under, e.g. bitcoin.")],
    timeframe: Annotated[str | None, typer.Option(help="Timeframe (default: inferred).")] = None,
    source: Annotated[str, typer.Option(help="Where the data came from.")] = "csv",
    columns: Annotated[
        list[str] | None,
        typer.Option(
            metavar="FIELD=COLUMN,...",
            help="Which CSV column holds a field, e.g. timestamp=Date,close=Price "
            "(fields: timestamp, open, high, low, close, volume; repeatable).",
        ),
    ] = None,
) -> None:
    """Import an OHLCV CSV into the database (all or nothing; re-import overwrites).

    Prints a summary line, then one "note:" line per adjustment made to read the file
    (rows sorted from newest-first, duplicate rows dropped, the column used for volume...).
    """
    from marketbot.cli.common import parse_column_map
    from marketbot.sources.csv_file import import_csv
    from marketbot.store.prices import PriceRepository

    mapping = parse_column_map(columns)
    summary = import_csv(
        PriceRepository(open_database()),
        file,
        symbol=symbol,
        timeframe=timeframe,
        source=source,
        columns=mapping,
    )
    typer.echo(summary)


@data_app.command("list")
def data_list() -> None:
    """List stored series: symbols, timeframes, ranges, row counts and gaps."""
    from marketbot.cli.tables import make_console, series_table
    from marketbot.store.prices import PriceRepository

    make_console().print(series_table(PriceRepository(open_database()).list_series()))


Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@data_app.command("collect")
def data_collect(
    symbol: Annotated[str, typer.Argument(help="CoinGecko coin id, e.g. bitcoin.")] = "bitcoin",
    days: Annotated[int, typer.Option(help="Days of history up to now.")] = 365,
    timeframe: Annotated[
        str | None, typer.Option(help="Bar length (default: CoinGecko's spacing for --days).")
    ] = None,
    vs_currency: Annotated[str, typer.Option(help="Quote currency.")] = "usd",
    quiet: Quiet = False,
) -> None:
    """Collect price history from CoinGecko into the database (one transaction)."""
    from marketbot.cli.progress import progress_bar
    from marketbot.config import load_settings
    from marketbot.sources.collector import HistoricalDataCollector

    with (
        HistoricalDataCollector.from_settings(
            load_settings(), open_database(), vs_currency=vs_currency
        ) as collector,
        progress_bar(f"collecting {symbol}", quiet=quiet) as advance,
    ):
        advance(0, 1)  # one request: the bar shows that it is under way (and rate waits)
        summary = collector.collect_crypto_history(symbol, days, timeframe=timeframe)
        advance(1, 1)
    typer.echo(summary)


@data_app.command("gaps")
def data_gaps(
    symbol: Annotated[str, typer.Argument(help="Stored symbol, e.g. bitcoin or BTC/USDT.")],
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe (default: 1d or the only one).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source (default: the only one).")] = None,
) -> None:
    """List the holes in a stored series, and how far it is behind now."""
    import pandas as pd

    from marketbot.cli.tables import gaps_table, make_console
    from marketbot.core.timeframes import timeframe_seconds
    from marketbot.store.prices import PriceRepository

    prices = PriceRepository(open_database())
    source, timeframe = prices.resolve_series(symbol, timeframe=timeframe, source=source)
    gaps = prices.find_gaps(symbol, timeframe, source=source)
    console = make_console()
    console.print(gaps_table(gaps, title=f"Gaps in {source}/{symbol}/{timeframe}"))
    last = prices.last_timestamp(source, symbol, timeframe)
    if last is not None:
        bar = pd.Timedelta(seconds=timeframe_seconds(timeframe))
        behind = (pd.Timestamp.now(tz="UTC") - last - bar) // bar
        console.print(
            f"{sum(g.missing_bars for g in gaps)} missing bars in {len(gaps)} gaps; last bar "
            f"{last:%Y-%m-%d %H:%M} UTC, {max(0, behind)} closed bars behind now"
        )


@data_app.command("fill-gaps")
def data_fill_gaps(
    symbol: Annotated[str, typer.Argument(help="Coin id (bitcoin) or pair (BTC/USDT).")],
    start: Annotated[str | None, typer.Option(help="From (default: the first stored bar).")] = None,
    end: Annotated[str | None, typer.Option(help="To (default: now).")] = None,
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe (default: the only one).")
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            help="coingecko (coingecko-eur, coingecko-ohlc...), or the ccxt exchange id of a "
            "downloaded pair."
        ),
    ] = "coingecko",
    quiet: Quiet = False,
) -> None:
    """Fetch only the missing bars of a CoinGecko or exchange series."""
    from marketbot.cli.progress import progress_bar
    from marketbot.sources.collector import coingecko_currency

    currency = coingecko_currency(source)
    with progress_bar("filling gaps", quiet=quiet) as advance:
        if currency is not None:
            summary = _fill_coingecko_gaps(source, currency, symbol, start, end, timeframe, advance)
        else:
            summary = _fill_exchange_gaps(source, symbol, start, end, timeframe, advance)
    typer.echo(summary)


def _fill_coingecko_gaps(
    source: str,
    currency: str,
    symbol: str,
    start: str | None,
    end: str | None,
    timeframe: str | None,
    advance: Any,
) -> object:
    from marketbot.config import load_settings
    from marketbot.sources.collector import HistoricalDataCollector

    database = open_database()
    collector = HistoricalDataCollector.from_settings(
        load_settings(), database, vs_currency=currency
    )
    try:
        if source == collector.ohlc_source:
            # The ohlc endpoint has no date range: refresh what it reaches.
            _, timeframe = collector.prices.resolve_series(
                symbol, timeframe=timeframe, source=source
            )
            return collector.refresh_ohlc(symbol, timeframe)
        return collector.fill_gaps(symbol, start, end, timeframe=timeframe, progress=advance)
    finally:
        collector.close()


def _fill_exchange_gaps(
    exchange: str,
    pair: str,
    start: str | None,
    end: str | None,
    timeframe: str | None,
    advance: Any,
) -> object:
    from marketbot.config import load_settings
    from marketbot.net.retrying import RetryPolicy
    from marketbot.sources.exchange_candles import ExchangeCandleDownloader
    from marketbot.sources.exchange_client import ExchangeClient
    from marketbot.store.prices import PriceRepository

    prices = PriceRepository(open_database())
    _, timeframe = prices.resolve_series(pair, timeframe=timeframe, source=exchange)
    settings = load_settings()
    urls = settings.exchange_api_urls.get(exchange)
    policy = RetryPolicy.from_settings(settings)
    with ExchangeClient(exchange, api_urls=urls, policy=policy) as client:
        downloader = ExchangeCandleDownloader(client, prices)
        return downloader.fill_gaps(pair, timeframe, start=start, end=end, progress=advance)


@data_app.command("export")
def data_export(
    symbol: Annotated[str, typer.Argument(help="Stored symbol, e.g. bitcoin or BTC/USDT.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    timeframe: Annotated[
        str | None, typer.Option(help="Timeframe (default: 1d or the only one).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Source (default: the only one).")] = None,
    start: Annotated[str | None, typer.Option(help="First bar (date or time).")] = None,
    end: Annotated[str | None, typer.Option(help="Last bar (date or time).")] = None,
) -> None:
    """Export a stored series as timestamp,open,high,low,close,volume CSV."""
    from marketbot.sources.csv_file import export_csv
    from marketbot.store.prices import PriceRepository

    prices = PriceRepository(open_database())
    typer.echo(
        export_csv(
            prices, output, symbol=symbol, timeframe=timeframe, source=source, start=start, end=end
        )
    )


@data_app.command("update")
def data_update(
    daemon: Annotated[
        bool, typer.Option("--daemon", help="Keep running: update now, then daily.")
    ] = False,
    hour: Annotated[
        int | None, typer.Option(help="Daemon: hour of the day, UTC (default: the setting).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Bring every stored CoinGecko, exchange and Polymarket series up to date."""
    from marketbot.cli.progress import progress_bar
    from marketbot.config import load_settings
    from marketbot.sources.daily_update import DailyUpdater

    settings = load_settings()
    updater = DailyUpdater(settings, open_database())
    if not daemon:
        with progress_bar("updating", quiet=quiet) as advance:
            updates = updater.run(progress=advance)
        _print_updates(updates)
        if any(update.error is not None for update in updates):
            raise typer.Exit(code=1)
        return
    _run_daemon(updater, settings.update_hour_utc if hour is None else hour)


def _print_updates(updates: list[Any]) -> None:
    from datetime import UTC, datetime

    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if not updates:
        typer.echo(f"{stamp} nothing to update: no stored CoinGecko, exchange or Polymarket series")
    for update in updates:
        typer.echo(f"{stamp} {update}")


def _run_daemon(updater: Any, hour_utc: int) -> None:
    import signal

    from marketbot.sources.daily_update import build_daily_scheduler

    scheduler = build_daily_scheduler(lambda: _print_updates(updater.run()), hour_utc=hour_utc)

    def stop(signum: int, _frame: object) -> None:
        typer.echo(f"stopping on {signal.Signals(signum).name}")
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    typer.echo(f"updating now, then daily at {hour_utc:02d}:00 UTC; Ctrl-C stops")
    scheduler.start()
    typer.echo("stopped")
