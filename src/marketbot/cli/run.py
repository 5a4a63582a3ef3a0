"""``marketbot run`` and ``marketbot status``: the bot on paper, and what it is doing."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from marketbot.cli.common import open_database, parse_params
from marketbot.cli.run_binary import run_binary
from marketbot.cli.run_sleeves import run_sleeves

if TYPE_CHECKING:
    from marketbot.bot.forward import ForwardBars, ForwardRequest
    from marketbot.bot.plan import BotPlan
    from marketbot.bot.runner import LiveSetup, RunOptions, RunSummary
    from marketbot.config import Settings
    from marketbot.store.database import Database


def run(
    strategy: Annotated[
        str | None, typer.Option(help="Built-in name or path/to/file.py:ClassName.")
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(help="Stored symbol (bitcoin), or with --exchange a pair (BTC/USDT)."),
    ] = None,
    market: Annotated[
        list[str] | None,
        typer.Option(help="Binary strategies: a stored Polymarket market slug; repeatable."),
    ] = None,
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
    live: Annotated[
        bool, typer.Option("--live", help="Trade real money on --exchange (gates first).")
    ] = False,
    testnet: Annotated[
        bool, typer.Option(help="With --live: the exchange's sandbox, key label 'testnet'.")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="With --live: trade without a passing verdict (emergency).")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why --force (required with it).")] = None,
    cancel_all_on_exit: Annotated[
        bool, typer.Option(help="With --live: also cancel protective orders at shutdown.")
    ] = False,
) -> None:
    """Run a strategy as a paper bot: replay stored bars, or trade forward on an exchange."""
    from marketbot.bot.forward import ForwardRequest
    from marketbot.bot.plan import ReplayRequest, check_long_only, plan_replay
    from marketbot.bot.runner import RunOptions
    from marketbot.config import load_settings
    from marketbot.core.errors import ConfigError

    if fresh and reset_state:
        raise ConfigError("--fresh and --reset-state: give one (a fresh run needs no reset)")
    if run_binary(
        strategy=strategy, market=market, symbol=symbol, param=param, config=config,
        replay=replay, speed=speed, live=live or not paper, exchange=exchange, fresh=fresh,
        reset_state=reset_state,
    ):  # fmt: skip
        return  # binary markets on paper (cli/run_binary.py)
    if run_sleeves(
        strategy=strategy, symbol=symbol, config=config, replay=replay, exchange=exchange,
        source=source, live=live or not paper, speed=speed, fresh=fresh, reset_state=reset_state,
    ):  # fmt: skip
        return  # the file's [[strategies]], several in one run (cli/run_sleeves.py)
    assert strategy is not None and symbol is not None  # run_sleeves refuses a run without
    if live or not paper:
        if replay is not None:
            raise ConfigError("--live trades forward on an exchange: it takes no --replay")
        from marketbot.cli.run_live import LiveOptions, run_live

        live_options = LiveOptions(
            exchange=exchange, pair=symbol, timeframe=timeframe or "1h", strategy=strategy,
            params=parse_params(param), config=config, testnet=testnet, force=force,
            reason=reason, cancel_all_on_exit=cancel_all_on_exit,
        )  # fmt: skip
        settings = load_settings()
        options = RunOptions(data_dir=settings.data_dir, fresh=fresh, reset_state=reset_state)
        run_live(open_database(), settings, live_options, options)
        return
    if testnet or force or cancel_all_on_exit:
        raise ConfigError("--testnet, --force and --cancel-all-on-exit go with --live")
    if speed < 0:
        raise ConfigError(f"--speed {speed:g}: must be 0 (no sleep) or a positive bars/second")
    if replay is None and exchange is None:
        raise ConfigError(
            "give --replay START END (stored bars) or --exchange NAME with an exchange pair "
            "(forward paper trading on its public data)"
        )
    settings = load_settings()
    database = open_database()
    if replay is None:
        assert exchange is not None
        forward = ForwardRequest(
            strategy=strategy, exchange=exchange, pair=symbol, timeframe=timeframe or "1h",
            params=parse_params(param), config_path=config,
        )  # fmt: skip
        options = RunOptions(data_dir=settings.data_dir, fresh=fresh, reset_state=reset_state)
        _run_forward(database, settings, exchange, forward, options)
        return
    if exchange is not None:
        raise ConfigError(
            "--exchange with --replay: a replay reads stored bars (give --source to choose "
            "them); forward trading on an exchange takes no --replay"
        )
    request = ReplayRequest(
        strategy=strategy, symbol=symbol, params=parse_params(param), config_path=config,
        timeframe=timeframe, source=source, start=replay[0], end=replay[1],
    )  # fmt: skip
    plan = plan_replay(database, settings, request)
    check_long_only(plan)
    options = RunOptions(data_dir=settings.data_dir, fresh=fresh, reset_state=reset_state,
                         speed=speed)  # fmt: skip
    summary = start_bot(database, plan, options)
    state = "stopped" if summary.stopped_early else "done"
    typer.echo(
        f"{state}: run {summary.run.id} ({plan.strategy.name} on {plan.symbol}, "
        f"{plan.timeframe}), {summary.bars} bars, {summary.trades} trades closed; "
        "see `marketbot status`"
    )


def _run_forward(
    database: Database,
    settings: Settings,
    exchange: str,
    request: ForwardRequest,
    options: RunOptions,
) -> None:
    """Forward paper trading on an exchange's public bars and ticker, until stopped."""
    from marketbot.bot.feed import ExchangeFeed
    from marketbot.bot.forward import ForwardBars, ForwardOptions, plan_forward
    from marketbot.bot.plan import check_long_only
    from marketbot.core.clock import SystemClock
    from marketbot.net.retrying import RetryPolicy
    from marketbot.sources.exchange_client import ExchangeClient

    clock = SystemClock()
    urls = settings.exchange_api_urls.get(exchange, {})
    policy = RetryPolicy.from_settings(settings)
    spot_only = {"fetchMarkets": {"types": ["spot"]}}  # the bot trades spot pairs only
    with ExchangeClient(
        exchange, api_urls=urls, options=spot_only, policy=policy, clock=clock
    ) as client:
        feed = ExchangeFeed(client, request.pair, request.timeframe, clock)
        plan = plan_forward(settings, request, feed, clock.now(), feed.bar_seconds)
        check_long_only(plan)
        bars = ForwardBars(
            feed, clock, time.sleep, ForwardOptions(float(plan.run_config.exit_poll_seconds))
        )
        summary = start_bot(database, plan, options, forward=bars)
    typer.echo(
        f"stopped: run {summary.run.id} ({plan.strategy.name} on {exchange} {plan.symbol}, "
        f"{plan.timeframe}, forward paper), {summary.bars} bars, {summary.trades} trades "
        "closed; see `marketbot status`"
    )


def start_bot(
    database: Database,
    plan: BotPlan,
    options: RunOptions,
    *,
    forward: ForwardBars | None = None,
    live: LiveSetup | None = None,
    forced: str | None = None,
    secrets: Sequence[str] = (),
) -> RunSummary:
    """Log to the bot's log, warn about a max hold of a bar or less, and run the bot.

    Notices (trips, high slippage, rejected orders, alert firings) go to the log, the
    ``events`` table and ``MARKETBOT_NOTIFY_URLS``; the queue is drained before returning.
    """
    from marketbot.bot.alerts import AlertManager
    from marketbot.bot.notify import AppriseNotifier, notify_url_secrets, split_notify_urls
    from marketbot.bot.runner import BotRunner
    from marketbot.config import load_settings
    from marketbot.core.redaction import SecretRedactor
    from marketbot.store.alerts import AlertRepository
    from marketbot.store.events import EventRepository

    settings = load_settings()
    # No stored credential or notify-URL password reaches the bot's logs (stderr, bot.log).
    notify = settings.notify_urls
    urls = split_notify_urls(notify.get_secret_value()) if notify is not None else []
    redactor = SecretRedactor([*secrets, *notify_url_secrets(urls)])
    _log_to(options.data_dir / "logs" / "bot.log")
    redactor.install(logging.getLogger("marketbot"))
    warning = plan.run_config.max_hold_warning(plan.bar_seconds)
    if warning:
        logging.getLogger("marketbot.bot").warning(warning)
    notifier = AppriseNotifier.from_settings(settings, EventRepository(database))
    with notifier:
        if forced is not None:
            notifier.notify("live run forced", forced, emergency=True, kind="force_used")
        alerts = AlertManager(AlertRepository(database), notifier)
        runner = BotRunner(
            database, plan, options, notifier=notifier, forward=forward, alerts=alerts,
            live=live,
        )  # fmt: skip
        return runner.run()


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


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (a test swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


class _BotLogFile(logging.FileHandler):
    """``logs/bot.log`` of the data directory of the run."""


def close_bot_log() -> None:
    """Detach the bot's log handlers (the CLI calls it when a command ends)."""
    logger = logging.getLogger("marketbot")
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler | _BotLogFile)]:
        logger.removeHandler(old)
        old.close()


def _log_to(path: Path) -> None:
    """Log the bot to stderr and to ``logs/bot.log`` (this run's: an earlier one is replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    close_bot_log()
    logger = logging.getLogger("marketbot")
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for handler in (_StderrHandler(), _BotLogFile(path)):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
