"""``marketbot run --live``: the bot on a real exchange, after every gate has passed.

The gates (bot/live_gates.py) run before anything is sent: an exchange pair, a stored key,
a stored verdict of GOOD or better for this strategy, parameters, pair and timeframe (or
``--force --reason``, recorded as an emergency). Then the run is the forward paper run's,
with :class:`~marketbot.bot.live_venue.LiveVenue` in place of the paper exchange.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from marketbot.bot.runner import RunOptions
    from marketbot.config import Settings
    from marketbot.store.database import Database


@dataclass(frozen=True)
class LiveOptions:
    """``run --live``'s own options.

    Attributes:
        exchange: ``--exchange`` (None: not given; a gate refuses it).
        pair: ``--symbol``, an exchange pair.
        timeframe: ``--timeframe``.
        strategy: ``--strategy``.
        params: ``--param`` values.
        config: ``--config``.
        testnet: ccxt's sandbox mode, with the key labelled ``testnet``.
        force: Trade without a passing verdict (an emergency; needs ``reason``).
        reason: Why ``--force``.
        cancel_all_on_exit: Cancel protective orders too at shutdown.
    """

    exchange: str | None
    pair: str
    timeframe: str
    strategy: str
    params: Mapping[str, object]
    config: Path | None
    testnet: bool
    force: bool
    reason: str | None
    cancel_all_on_exit: bool


def run_live(
    database: Database, settings: Settings, live: LiveOptions, options: RunOptions
) -> None:
    """Check the gates, open the exchange with the stored key, run until stopped."""
    from marketbot.bot.feed import ExchangeFeed
    from marketbot.bot.forward import ForwardBars, ForwardOptions, ForwardRequest, plan_forward
    from marketbot.bot.live_gates import LiveRequest, check_live_gates
    from marketbot.bot.plan import check_long_only
    from marketbot.bot.runner import LiveSetup
    from marketbot.cli.keys import open_key_store
    from marketbot.cli.run import start_bot
    from marketbot.core.clock import SystemClock
    from marketbot.execution.ccxt_connect import open_ccxt_exchange
    from marketbot.net.retrying import RetryPolicy
    from marketbot.strategies.loader import load_strategy

    label = "testnet" if live.testnet else "default"
    strategy = load_strategy(live.strategy)
    params = strategy.resolve_params(live.params)
    keys, _ = open_key_store()
    request = LiveRequest(
        exchange=live.exchange, symbol=live.pair, timeframe=live.timeframe,
        strategy=strategy.name, params=params, force=live.force, reason=live.reason,
        key_label=label,
    )  # fmt: skip
    clearance = check_live_gates(request, database=database, keys=keys)
    assert live.exchange is not None  # the first gate
    credentials = keys.get(live.exchange, label=label)
    clock = SystemClock()
    exchange = open_ccxt_exchange(
        live.exchange, credentials, api_urls=settings.exchange_api_urls.get(live.exchange, {}),
        testnet=live.testnet, policy=RetryPolicy.from_settings(settings), clock=clock,
    )  # fmt: skip
    with exchange:
        feed = ExchangeFeed(exchange.client, live.pair, live.timeframe, clock)
        forward = ForwardRequest(
            strategy=live.strategy, exchange=live.exchange, pair=live.pair,
            timeframe=live.timeframe, params=live.params, config_path=live.config,
        )  # fmt: skip
        plan = plan_forward(settings, forward, feed, clock.now(), feed.bar_seconds)
        check_long_only(plan)
        bars = ForwardBars(
            feed, clock, time.sleep, ForwardOptions(float(plan.run_config.exit_poll_seconds))
        )
        setup = LiveSetup(exchange, cancel_all_on_exit=live.cancel_all_on_exit)
        forced = None
        if clearance.forced:
            forced = f"--force by the operator: {clearance.reason} (verdict: {clearance.verdict})"
        secrets = () if credentials is None else credentials.secrets()
        summary = start_bot(
            database, plan, options, forward=bars, live=setup, forced=forced, secrets=secrets
        )
    typer.echo(
        f"stopped: run {summary.run.id} ({plan.strategy.name} on {live.exchange} {plan.symbol}, "
        f"{plan.timeframe}, live), {summary.bars} bars, {summary.trades} trades closed; "
        "see `marketbot status`"
    )
