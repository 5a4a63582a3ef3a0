"""``marketbot run --config FILE --replay START END`` for a file with ``[[strategies]]``.

Without ``--strategy`` and ``--symbol``, a run configuration holding ``[[strategies]]``
tables runs them all in one paper run (bot/multi_runner.py); giving the options as well is
one line naming both. The single-strategy run is unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from marketbot.bot.runner import RunOptions, RunSummary
    from marketbot.bot.sleeves import MultiPlan
    from marketbot.config import Settings
    from marketbot.store.database import Database


def run_sleeves(
    *,
    strategy: str | None,
    symbol: str | None,
    config: Path | None,
    replay: tuple[str, str] | None,
    exchange: str | None,
    source: str | None,
    live: bool,
    speed: float,
    fresh: bool,
    reset_state: bool,
) -> bool:
    """Run the file's strategies when it has ``[[strategies]]`` and no --strategy is given.

    Returns False when this is a single-strategy run (the caller runs it).

    Raises:
        ConfigError: ``--strategy``/``--symbol`` with a file of several strategies; no
            strategy at all; several strategies forward (``--exchange``).
    """
    from marketbot.bot.runner import RunOptions
    from marketbot.bot.sleeves import MultiRequest, count_sleeves, plan_sleeves
    from marketbot.cli.common import open_database
    from marketbot.config import load_settings
    from marketbot.core.errors import ConfigError

    settings = load_settings()
    tables = 0 if config is None else count_sleeves(config, settings)
    given = [name for name, value in (("--strategy", strategy), ("--symbol", symbol)) if value]
    # One table or none: a single run, whose strategy and symbol are the options'.
    if tables == 0 or (tables == 1 and given):
        if len(given) < 2:
            # A missing option is a usage error (exit 2), as typer says for any other.
            raise typer.BadParameter(
                "give --strategy NAME and --symbol S, or --config FILE with [[strategies]] "
                "tables (name, symbol, timeframe, params) for several strategies"
            )
        return False
    if given:
        raise ConfigError(
            f"{' and '.join(given)} with {config}'s {tables} [[strategies]] tables: the file "
            "names the strategies and their symbols; drop the options, or the tables"
        )
    if exchange is not None or replay is None or live:
        raise ConfigError(
            f"{config}: several strategies run on paper over stored bars only: give --replay "
            "START END (forward and live trading take one --strategy)"
        )
    if speed < 0:
        raise ConfigError(f"--speed {speed:g}: must be 0 (no sleep) or a positive bars/second")
    assert config is not None
    database = open_database()
    request = MultiRequest(config_path=config, source=source, start=replay[0], end=replay[1])
    plan = plan_sleeves(database, settings, request)
    options = RunOptions(
        data_dir=settings.data_dir, fresh=fresh, reset_state=reset_state, speed=speed
    )
    summary = _start(database, settings, plan, options)
    state = "stopped" if summary.stopped_early else "done"
    sleeves_text = ", ".join(s.key for s in plan.sleeves)
    typer.echo(
        f"{state}: run {summary.run.id} ({sleeves_text}; {plan.timeframe_label}), "
        f"{summary.bars} bars, {summary.trades} trades closed; see `marketbot status`"
    )
    return True


def _start(
    database: Database, settings: Settings, plan: MultiPlan, options: RunOptions
) -> RunSummary:
    """Log to the bot's log, warn about short max holds, and run the sleeves."""
    import logging

    from marketbot.bot.alerts import AlertManager
    from marketbot.bot.multi_runner import MultiRunner
    from marketbot.bot.notify import AppriseNotifier
    from marketbot.cli.run import _log_to
    from marketbot.store.alerts import AlertRepository
    from marketbot.store.events import EventRepository

    _log_to(options.data_dir / "logs" / "bot.log")
    for sleeve in plan.sleeves:
        warning = plan.run_config.max_hold_warning(sleeve.plan.bar_seconds)
        if warning:
            logging.getLogger("marketbot.bot").warning("%s: %s", sleeve.key, warning)
    notifier = AppriseNotifier.from_settings(settings, EventRepository(database))
    with notifier:
        alerts = AlertManager(AlertRepository(database), notifier)
        return MultiRunner(database, plan, options, notifier=notifier, alerts=alerts).run()
