"""Forward paper trading: the bot on an exchange's live public data instead of stored bars.

:func:`plan_forward` checks the request (strategy, parameters, config, the exchange's pair and
timeframe) and loads the warm-up history; :class:`ForwardBars` then hands the runner each bar
as it closes and, between bars, a ticker every ``exit_poll`` so the paper venue's brackets
see prices while the bar forms. Entries are decided on the latest closed bar only: bars that
closed while the bot was down are shown to the venue (their stops and targets fill as a
resting order's would) but signal nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import pandas as pd

from marketbot.backtest.run_config import load_run_config
from marketbot.bot.feed import MarketFeed
from marketbot.bot.plan import BotPlan
from marketbot.config import Settings
from marketbot.core.clock import Clock
from marketbot.core.errors import DataError
from marketbot.execution.models import Ticker
from marketbot.net.rate_limiter import PRIORITY_EMERGENCY
from marketbot.strategies.loader import load_strategy

# Bars of history beyond the strategy's warm-up, so its first forward signal is settled.
_EXTRA_HISTORY: Final = 50
DEFAULT_EXIT_POLL: Final = 15.0


@dataclass(frozen=True)
class ForwardRequest:
    """What ``marketbot run --exchange NAME --symbol PAIR`` asks for.

    Attributes:
        strategy: A built-in name or ``file.py:Class``.
        exchange: The ccxt exchange id.
        pair: The exchange pair, e.g. ``BTC/USDT``.
        timeframe: The bar length, e.g. ``1h``.
        params: Strategy parameters (text or values).
        config_path: The run configuration file, if any.
        overrides: Command-line settings that win over the file.
    """

    strategy: str
    exchange: str
    pair: str
    timeframe: str = "1h"
    params: Mapping[str, object] = field(default_factory=dict)
    config_path: Path | None = None
    overrides: Mapping[str, object] = field(default_factory=dict)


def plan_forward(
    settings: Settings, request: ForwardRequest, feed: MarketFeed, now: datetime, bar_seconds: int
) -> BotPlan:
    """Validate a forward run and load its history up to the last closed bar.

    Raises:
        ConfigError: an unknown strategy or parameter, a bad config key or value.
        DataError: the exchange has too few closed bars for the strategy's warm-up.
        StrategyError: the strategy cannot be loaded.
    """
    instance = load_strategy(request.strategy)
    resolved = instance.resolve_params(request.params)
    run_config = load_run_config(
        request.config_path, settings=settings, bot_defaults=True, overrides=request.overrides
    )
    history = instance.compute_warmup(resolved) + _EXTRA_HISTORY
    since = now - timedelta(seconds=bar_seconds * (history + 1))
    frame = feed.closed_bars(since, now)
    if len(frame) < 2:
        raise DataError(
            f"{feed.source} {request.pair} {request.timeframe}: {len(frame)} closed bars "
            f"since {since:%Y-%m-%d %H:%M}; forward trading needs at least 2"
        )
    return BotPlan(
        strategy=instance,
        params=resolved,
        symbol=request.pair,
        timeframe=request.timeframe,
        source=feed.source,
        run_config=run_config,
        config=run_config.backtest_config(instance.name),
        frame=frame,
        first=len(frame) - 1,
        bar_seconds=bar_seconds,
        start=None,
        end=None,
    )


@dataclass(frozen=True)
class NewBar:
    """A bar closed: the plan now holds it at ``row``; ``latest`` when nothing newer closed."""

    plan: BotPlan
    row: int
    latest: bool


@dataclass(frozen=True)
class ForwardOptions:
    """How a forward run waits and when it stops.

    Attributes:
        exit_poll: Seconds between tickers while a bar forms (0: no tickers).
        until: Stop once the clock passes this time (tests; None: run until stopped).
    """

    exit_poll: float = DEFAULT_EXIT_POLL
    until: datetime | None = None


class ForwardBars:
    """The bars and tickers of a forward run, in time order, as they come."""

    def __init__(
        self,
        feed: MarketFeed,
        clock: Clock,
        sleep: Callable[[float], None],
        options: ForwardOptions,
    ) -> None:
        self.feed = feed
        self.clock = clock
        self.sleep = sleep
        self.options = options

    def events(self, plan: BotPlan, stopping: Callable[[], bool]) -> Iterator[NewBar | Ticker]:
        """The plan's bars from ``plan.first``, then each bar as it closes, tickers between."""
        spacing = timedelta(seconds=plan.bar_seconds)
        self._plan = plan
        for row in range(plan.first, len(plan.frame)):
            yield NewBar(plan, row, latest=row == len(plan.frame) - 1)
        while not stopping() and not self._past_until():
            plan = self._plan
            last_open = pd.DatetimeIndex(plan.frame.index)[-1].to_pydatetime()
            next_close = last_open + 2 * spacing
            now = self.clock.now()
            if now >= next_close:
                new = self.feed.closed_bars(last_open + spacing, now)
                appended = list(self._append(plan, new))
                if not appended:  # the exchange has not published it yet
                    self.sleep(1.0)
                yield from appended
                continue
            wait = (next_close - now).total_seconds()
            poll = self.options.exit_poll
            self.sleep(min(poll, wait) if poll > 0 else wait)
            if poll > 0 and self.clock.now() < next_close:
                # The exit poll: it may close a position, so it goes first (priority 1).
                yield self.feed.ticker(priority=PRIORITY_EMERGENCY)

    def _append(self, plan: BotPlan, new: pd.DataFrame) -> Iterator[NewBar]:
        last = pd.DatetimeIndex(plan.frame.index)[-1]
        new = new[pd.DatetimeIndex(new.index) > last]
        if new.empty:
            return
        frame = pd.concat([plan.frame, new])
        self._plan = replace(plan, frame=frame)
        first_new = len(plan.frame)
        for row in range(first_new, len(frame)):
            yield NewBar(self._plan, row, latest=row == len(frame) - 1)

    def _past_until(self) -> bool:
        until = self.options.until
        return until is not None and self.clock.now() >= until
