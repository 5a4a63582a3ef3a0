"""What one bot run trades: the strategy, its parameters, the bars, the period and the config.

:func:`plan_replay` checks everything a run needs before anything is stored or sent, with one
line naming what is wrong (an unknown strategy, symbol, timeframe or parameter; a start after
the end or outside the stored data; a bad config key), and returns a :class:`BotPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import BacktestingEngine, parse_date_range
from marketbot.backtest.run_config import RunConfig, load_run_config
from marketbot.bot.binary_plan import refuse_binary
from marketbot.config import Settings
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.timeframes import infer_bar_seconds
from marketbot.store.database import Database
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import load_strategy


@dataclass(frozen=True)
class BotPlan:
    """A validated run: what to trade, on which bars, from where to where, with what rules.

    Attributes:
        strategy: The strategy instance.
        params: Its validated parameters.
        symbol: The stored symbol traded.
        timeframe: The stored timeframe.
        source: The stored source of the bars.
        run_config: The run configuration (costs, exits, limits, order checks).
        config: The backtest configuration the step core runs with (limits included).
        frame: The stored bars up to the end of the run (earlier ones are warm-up).
        first: Row of ``frame`` where trading starts (the first bar at or after START).
        bar_seconds: The bars' spacing.
        start: START as given (UTC), or None for the first stored bar.
        end: END as given (UTC), or None for the last stored bar.
    """

    strategy: Strategy
    params: dict[str, Any]
    symbol: str
    timeframe: str
    source: str
    run_config: RunConfig
    config: BacktestConfig
    frame: pd.DataFrame
    first: int
    bar_seconds: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None

    @property
    def bar_times(self) -> pd.DatetimeIndex:
        """Open times of every loaded bar, UTC."""
        return pd.DatetimeIndex(self.frame.index)

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the stored one (a change needs ``--fresh``)."""
        return {
            "strategy": self.strategy.name,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "source": self.source,
            "params": _plain(self.params),
            "config": _plain(self.config.to_dict()),
            "order_timeout_seconds": self.run_config.order_timeout_seconds,
            "max_slippage": self.run_config.max_slippage,
            "start": None if self.start is None else self.start.isoformat(),
        }


@dataclass(frozen=True)
class ReplayRequest:
    """What ``marketbot run --replay`` asks for, as given on the command line.

    Attributes:
        strategy: A built-in name or ``file.py:Class``.
        symbol: The stored symbol.
        params: Strategy parameters (text or values).
        config_path: The run configuration file, if any.
        overrides: Command-line settings that win over the file.
        timeframe: The stored timeframe (default as for ``backtest``).
        source: The stored source, when several have the symbol.
        start: START (``YYYY-MM-DD``), or None for the first stored bar.
        end: END (a bare date is the whole day), or None for the last stored bar.
    """

    strategy: str
    symbol: str
    params: Mapping[str, object] = field(default_factory=dict)
    config_path: Path | None = None
    overrides: Mapping[str, object] = field(default_factory=dict)
    timeframe: str | None = None
    source: str | None = None
    start: str | datetime | None = None
    end: str | datetime | None = None


def plan_replay(database: Database, settings: Settings, request: ReplayRequest) -> BotPlan:
    """Validate a replay run over stored bars and return its plan.

    The configuration is the one ``backtest --config`` reads, with the bot's defaults for
    missing keys (stop 5 %, target 10 %, max hold 24 h, the configured limits).

    Raises:
        ConfigError: an unknown strategy or parameter, a bad config key or value, START
            after END.
        DataError: the symbol or timeframe is not stored, or START/END fall outside the
            stored bars.
        StrategyError: the strategy cannot be loaded.
    """
    instance = load_strategy(request.strategy)
    refuse_binary(instance)  # binary strategies run on markets (bot/binary_runner.py)
    resolved = instance.resolve_params(request.params)
    run_config = load_run_config(
        request.config_path, settings=settings, bot_defaults=True, overrides=request.overrides
    )
    start_at, end_at = parse_date_range(request.start, request.end)
    symbol = request.symbol
    engine = BacktestingEngine(database)
    chosen_source, chosen_timeframe, frame = engine.load_stored(
        symbol, timeframe=request.timeframe, source=request.source, end=end_at
    )
    times = pd.DatetimeIndex(frame.index)
    first = 0 if start_at is None else int(times.searchsorted(start_at, side="left"))
    if first >= len(times):
        raise DataError(
            f"{symbol}: no stored {chosen_timeframe} bars from {start_at:%Y-%m-%d} "
            f"(the stored bars end at {times[-1]:%Y-%m-%d})"
        )
    if start_at is not None and first == 0 and start_at < times[0]:
        raise DataError(
            f"{symbol}: START {start_at:%Y-%m-%d} is before the first stored {chosen_timeframe} "
            f"bar ({times[0]:%Y-%m-%d})"
        )
    if len(times) - first < 2:
        raise DataError(
            f"{symbol}: the replay needs at least two bars; it has {len(times) - first}"
        )
    return BotPlan(
        strategy=instance,
        params=resolved,
        symbol=symbol,
        timeframe=chosen_timeframe,
        source=chosen_source,
        run_config=run_config,
        config=run_config.backtest_config(instance.name),
        frame=frame,
        first=first,
        bar_seconds=infer_bar_seconds(times.asi8),
        start=start_at,
        end=end_at,
    )


def check_long_only(plan: BotPlan) -> None:
    """The paper bot trades long positions only; refuse a run configured for shorts."""
    if plan.config.allow_short:
        raise ConfigError("the bot trades long only: allow_short is not supported")


def _plain(value: Any) -> Any:
    """JSON-ready values (numpy scalars as Python ones), for hashing."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if hasattr(value, "item"):
        return value.item()
    return value
