"""``marketbot data download``: an exchange's candles through ccxt, into the database.

ccxt takes seconds to import, so it (and everything else heavy) is imported inside the
command: ``marketbot --help`` does not pay for it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from marketbot.cli.common import open_database, parse_key_values
from marketbot.cli.data import Quiet, data_app


@data_app.command("download")
def data_download(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance.")],
    pair: Annotated[str, typer.Option(help="Market as the exchange spells it, e.g. BTC/USDT.")],
    timeframe: Annotated[str, typer.Option(help="Bar length the exchange offers.")] = "1h",
    since: Annotated[
        str | None,
        typer.Option(
            help="First bar open time (UTC), e.g. 2024-01-01. Default: after the newest "
            "stored bar, or 30 days ago when none is stored."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Last bar open time (UTC). Default and latest: the last closed bar."),
    ] = None,
    api_url: Annotated[
        list[str] | None,
        typer.Option(
            help="Replace one of the exchange's API roots (a key of ccxt's urls['api']), "
            "KEY=URL, e.g. public=http://127.0.0.1:8080/api/v3; for a proxy or a test "
            "server. Repeatable."
        ),
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Download an exchange's candles (a page per transaction; re-runs store no duplicates)."""
    from marketbot.cli.progress import progress_bar
    from marketbot.config import load_settings
    from marketbot.net.retrying import RetryPolicy
    from marketbot.sources.exchange_candles import ExchangeCandleDownloader
    from marketbot.sources.exchange_client import ExchangeClient
    from marketbot.store.prices import PriceRepository

    # --api-url wins over MARKETBOT_EXCHANGE_API_URLS, key by key.
    settings = load_settings()
    urls = {
        **settings.exchange_api_urls.get(exchange, {}),
        **parse_key_values(
            api_url,
            option="--api-url",
            usage="use KEY=URL, e.g. --api-url public=http://127.0.0.1:8080/api/v3",
            value_required=True,
        ),
    }
    prices = PriceRepository(open_database())
    label = f"{exchange} {pair} {timeframe}"
    with (
        ExchangeClient(
            exchange, api_urls=urls, policy=RetryPolicy.from_settings(settings)
        ) as client,
        progress_bar(label, quiet=quiet) as advance,
    ):
        summary = ExchangeCandleDownloader(client, prices).download(
            pair, timeframe, since=since, until=until, progress=advance
        )
    typer.echo(summary)
