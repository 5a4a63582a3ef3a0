"""``marketbot run`` and ``marketbot status``: the bot on paper, and what it is doing."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from marketbot.cli.common import open_database, parse_params


def run(
    strategy: Annotated[str, typer.Option(help="Built-in name or path/to/file.py:ClassName.")],
    symbol: Annotated[str, typer.Option(help="Stored symbol, e.g. bitcoin.")],
    timeframe: Annotated[str | None, typer.Option(help="Stored timeframe, e.g. 1h.")] = None,
    source: Annotated[str | None, typer.Option(help="Stored source of the bars.")] = None,
    param: Annotated[list[str] | None, typer.Option(help="Strategy parameter KEY=VALUE.")] = None,
    config: Annotated[Path | None, typer.Option(help="Run configuration file (TOML).")] = None,
    paper: Annotated[bool, typer.Option(help="Trade on the paper exchange (the default).")] = True,
    replay: Annotated[
        tuple[str, str] | None,
        typer.Option(help="START END: replay the stored bars of this period (YYYY-MM-DD)."),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Replay speed in bars per second; 0: no sleep.")
    ] = 0.0,
    exchange: Annotated[
        str | None, typer.Option(help="Forward paper trading on this exchange's public data.")
    ] = None,
    fresh: Annotated[
        bool, typer.Option(help="Archive the current run and its paper account; start anew.")
    ] = False,
    reset_state: Annotated[
        bool, typer.Option(help="Set the state files aside; rebuild from database and exchange.")
    ] = False,
) -> None:
    """Run a strategy as a paper bot: replay stored bars through the bot's loop."""
    from marketbot.bot.plan import ReplayRequest, check_long_only, plan_replay
    from marketbot.bot.runner import BotRunner, RunOptions
    from marketbot.config import load_settings
    from marketbot.core.errors import ConfigError

    if fresh and reset_state:
        raise ConfigError("--fresh and --reset-state: give one (a fresh run needs no reset)")
    if not paper:
        raise ConfigError("live trading is not built yet: run on paper (--paper)")
    if replay is None:
        raise ConfigError(
            "forward paper trading (--exchange) is not built yet: replay stored bars with "
            "--replay START END"
            if exchange is not None
            else "give --replay START END (forward paper trading is not built yet)"
        )
    if speed < 0:
        raise ConfigError(f"--speed {speed:g}: must be 0 (no sleep) or a positive bars/second")
    settings = load_settings()
    database = open_database()
    request = ReplayRequest(
        strategy=strategy, symbol=symbol, params=parse_params(param), config_path=config,
        timeframe=timeframe, source=source, start=replay[0], end=replay[1],
    )  # fmt: skip
    plan = plan_replay(database, settings, request)
    check_long_only(plan)
    warning = plan.run_config.max_hold_warning(plan.bar_seconds)
    data_dir = settings.data_dir
    _log_to(data_dir / "logs" / "bot.log")
    if warning:
        logging.getLogger("marketbot.bot").warning(warning)
    options = RunOptions(data_dir=data_dir, fresh=fresh, reset_state=reset_state, speed=speed)
    summary = BotRunner(database, plan, options).run()
    state = "stopped" if summary.stopped_early else "done"
    typer.echo(
        f"{state}: run {summary.run.id} ({plan.strategy.name} on {plan.symbol}, "
        f"{plan.timeframe}), {summary.bars} bars, {summary.trades} trades closed; "
        "see `marketbot status`"
    )


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What the bot is doing: positions, P&L, the breaker, orders, trades, commands."""
    from marketbot.bot.status import bot_status, status_lines
    from marketbot.config import load_settings

    payload = bot_status(open_database(), load_settings().data_dir)
    if as_json:
        sys.stdout.write(json.dumps(payload, allow_nan=False, default=str) + "\n")
        return
    for line in status_lines(payload):
        typer.echo(line)


def _log_to(path: Path) -> None:
    """Log the bot to stderr and to ``logs/bot.log``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("marketbot")
    if any(isinstance(h, logging.FileHandler) for h in logger.handlers):
        return
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in (logging.StreamHandler(sys.stderr), logging.FileHandler(path)):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
