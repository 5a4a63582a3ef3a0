"""Live paper on binary markets, wired: the stored markets, the first poll, the runner.

:func:`run_live_paper` is what ``marketbot run --strategy NAME --market SLUG`` (without
``--replay``) does, with the clock, the sleep and the CLOB client injected so that tests run
it against a local CLOB on a manual clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from marketbot.backtest.binary_config import BinaryConfig
from marketbot.bot.binary_feed import DEFAULT_POLL_SECONDS, LiveBooks
from marketbot.bot.binary_plan import BinaryPlan
from marketbot.bot.binary_runner import BinaryRunner, BinarySummary
from marketbot.core.clock import Clock
from marketbot.net import HttpClient
from marketbot.store.database import Database
from marketbot.strategies.binary import BinaryStrategy


def run_live_paper(  # noqa: PLR0913 - the run's parts, injected
    database: Database,
    data_dir: Path,
    plan_parts: tuple[BinaryStrategy, Mapping[str, Any], Sequence[str], BinaryConfig],
    clob: HttpClient,
    clock: Clock,
    sleep: Callable[[float], None],
    *,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    fresh: bool = False,
    reset_state: bool = False,
) -> BinarySummary:
    """Poll the markets' books and trade them on paper until every market ended (or a stop).

    Args:
        database: The bot's database (the markets are read from it).
        data_dir: ``$MARKETBOT_DATA_DIR``.
        plan_parts: The strategy, its resolved parameters, the market slugs, the settings.
        clob: The CLOB client (``net/``: rate limiter and retries).
        clock: The injected clock; snapshots are stamped with its time.
        sleep: Waits between polls.
        poll_seconds: Seconds between polls.
        fresh: Archive the current run first.
        reset_state: Set the state files aside first.

    Raises:
        ConfigError: a market that is not stored, not binary or over; another run current.
        ApiError: the CLOB refused a token (an unknown token id).
    """
    strategy, params, slugs, config = plan_parts
    books = LiveBooks.from_store(database, list(slugs), clob, clock, sleep)
    books.poll_seconds = poll_seconds
    books.poll()  # the first instant: every market has a book before the run starts
    plan = BinaryPlan(strategy, dict(params), books.built(), config, clock.now(), None)
    runner = BinaryRunner(
        database, plan, data_dir, fresh=fresh, reset_state=reset_state, instants=books.instants
    )
    return runner.run()
