"""``marketbot run --paper --strategy NAME --market SLUG ...``: a binary strategy on paper.

With ``--replay START END`` the stored books of the markets are replayed through the bot
(bot/binary_runner.py); without it the bot polls their CLOB books (bot/binary_feed.py).
A binary strategy named with ``--symbol`` (or without ``--market``) is one line.
"""

from __future__ import annotations

from pathlib import Path

import typer


def run_binary(
    *,
    strategy: str | None,
    market: list[str] | None,
    symbol: str | None,
    param: list[str] | None,
    config: Path | None,
    replay: tuple[str, str] | None,
    speed: float,
    live: bool,
    exchange: str | None,
    fresh: bool,
    reset_state: bool,
) -> bool:
    """Run a binary strategy on paper; False when the run is not a binary one.

    Raises:
        ConfigError: ``--market`` with an OHLCV strategy, a binary strategy without
            ``--market`` (or with ``--symbol``, ``--exchange`` or ``--live``), a bad setting.
        DataError: a market that is not stored with books.
    """
    from marketbot.core.errors import ConfigError, StrategyError
    from marketbot.strategies.binary import is_binary
    from marketbot.strategies.loader import load_strategy

    if strategy is None:
        if market:
            raise ConfigError("--market needs --strategy NAME (a binary-market strategy)")
        return False
    try:
        binary = is_binary(load_strategy(strategy))
    except StrategyError:
        if not market:
            return False  # the OHLCV path names the unknown strategy
        raise
    if not binary and not market:
        return False
    if not binary:
        raise ConfigError(
            f"{strategy} trades OHLCV bars, not binary markets: use --symbol, not --market"
        )
    if not market or symbol is not None:
        raise ConfigError(f"{strategy} is a binary-market strategy: use --market SLUG")
    if live or exchange is not None:
        raise ConfigError(
            f"{strategy} trades binary markets on paper only: --live and --exchange do not "
            "apply (real-money orders on Polymarket are not built)"
        )
    if speed < 0:
        raise ConfigError(f"--speed {speed:g}: must be 0 (no sleep) or a positive events/second")
    _run(strategy, market, param, config, replay, speed, fresh=fresh, reset_state=reset_state)
    return True


def _run(
    strategy: str,
    market: list[str],
    param: list[str] | None,
    config: Path | None,
    replay: tuple[str, str] | None,
    speed: float,
    *,
    fresh: bool,
    reset_state: bool,
) -> None:
    import time

    from marketbot.backtest.binary_markets import BinaryMarkets
    from marketbot.bot.binary_plan import (
        BinaryPlan,
        binary_config_from_file,
        load_binary_strategy_named,
        replay_window,
    )
    from marketbot.bot.binary_runner import BinaryRunner
    from marketbot.cli.common import open_database, parse_params
    from marketbot.cli.run import _log_to
    from marketbot.config import load_settings

    instance = load_binary_strategy_named(strategy)
    params = instance.resolve_params(parse_params(param))
    settings_config = binary_config_from_file(config)
    settings = load_settings()
    database = open_database()
    _log_to(settings.data_dir / "logs" / "bot.log")
    if replay is None:
        from marketbot.cli.run_binary_live import run_live_paper

        run_live_paper(database, settings, instance, params, market, settings_config,
                       fresh=fresh, reset_state=reset_state)  # fmt: skip
        return
    start, end = replay_window(*replay)
    markets = BinaryMarkets.from_store(database, market)
    plan = BinaryPlan(instance, dict(params), markets, settings_config, start, end)
    runner = BinaryRunner(database, plan, settings.data_dir, fresh=fresh,
                          reset_state=reset_state, sleep=time.sleep, speed=speed)  # fmt: skip
    summary = runner.run()
    state = "stopped" if summary.stopped_early else "done"
    typer.echo(
        f"{state}: run {summary.run.id} ({instance.name} on {markets.describe()}, paper), "
        f"{summary.instants} events, {summary.trades} trades closed; see `marketbot status`"
    )
