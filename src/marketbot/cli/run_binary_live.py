"""``marketbot run --strategy NAME --market SLUG`` without ``--replay``: live paper."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from marketbot.backtest.binary_config import BinaryConfig
    from marketbot.config import Settings
    from marketbot.store.database import Database
    from marketbot.strategies.binary import BinaryStrategy


def run_live_paper(
    database: Database,
    settings: Settings,
    strategy: BinaryStrategy,
    params: Mapping[str, Any],
    markets: Sequence[str],
    config: BinaryConfig,
    *,
    fresh: bool,
    reset_state: bool,
) -> None:
    """Poll the markets' CLOB books (every 5 s) and trade them on paper until they end."""
    from marketbot.bot import binary_live
    from marketbot.core.clock import SystemClock
    from marketbot.sources.polymarket_api import PolymarketApi

    with PolymarketApi.from_settings(settings) as api:
        summary = binary_live.run_live_paper(
            database, settings.data_dir, (strategy, params, markets, config), api.clob,
            SystemClock(), time.sleep, fresh=fresh, reset_state=reset_state,
        )  # fmt: skip
    state = "stopped" if summary.stopped_early else "done"
    typer.echo(
        f"{state}: run {summary.run.id} ({strategy.name} on {len(markets)} market(s), live "
        f"paper), {summary.instants} polls, {summary.trades} trades closed; see `marketbot status`"
    )
