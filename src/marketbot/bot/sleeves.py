"""Several strategies in one paper run: the sleeves a ``[[strategies]]`` file describes.

:func:`plan_sleeves` checks every ``[[strategies]]`` table of a run configuration before
anything is stored or sent, each with :func:`~marketbot.bot.plan.plan_replay` (the one-line
errors of a single run, prefixed with the table: ``bot.toml: strategies[2] (momentum on
dogecoin): ...``), and returns a :class:`MultiPlan`: one :class:`Sleeve` per table, in file
order, sharing the run's configuration, paper account and risk limits. The bars of all the
sleeves are taken in time order: at each bar time, every sleeve with a bar there, in file
order (:meth:`MultiPlan.steps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.run_config import RunConfig, load_run_config
from marketbot.bot.plan import BotPlan, ReplayRequest, check_long_only, plan_replay
from marketbot.config import Settings
from marketbot.core.errors import ConfigError, MarketbotError
from marketbot.store.database import Database

# A run record's labels join the sleeves' names; the store keeps 100 characters of them.
_LABEL_SEPARATOR = ","


@dataclass(frozen=True)
class Sleeve:
    """One strategy of a multi-strategy run, on its symbol, with its own share of capital.

    Attributes:
        key: ``strategy@symbol``, unique in the run: the rebalancer's name for the sleeve.
        plan: What it trades: the strategy, its parameters, its bars and the run's config.
    """

    key: str
    plan: BotPlan


@dataclass(frozen=True)
class MultiPlan:
    """A validated multi-strategy run: the sleeves, in file order, and the shared config.

    Attributes:
        sleeves: One per ``[[strategies]]`` table.
        run_config: The run configuration (costs, exits, limits, ``rebalance``).
        account: The account's backtest configuration (costs, exits, the global limits):
            the paper exchange's settings and the risk book's limits.
    """

    sleeves: tuple[Sleeve, ...]
    run_config: RunConfig
    account: BacktestConfig

    @property
    def strategy_label(self) -> str:
        """The strategies' names, each once, for the run record (``sma_crossover,momentum``)."""
        return _label(s.plan.strategy.name for s in self.sleeves)

    @property
    def symbol_label(self) -> str:
        """The symbols, for the run record."""
        return _label(s.plan.symbol for s in self.sleeves)

    @property
    def timeframe_label(self) -> str:
        """The timeframes, each once."""
        return _label(s.plan.timeframe for s in self.sleeves)

    @property
    def source_label(self) -> str:
        """The bars' sources, each once."""
        return _label(s.plan.source for s in self.sleeves)

    @property
    def start_time(self) -> datetime:
        """The first bar any sleeve trades."""
        return min(s.plan.bar_times[s.plan.first] for s in self.sleeves).to_pydatetime()

    def identity(self) -> dict[str, Any]:
        """What a resumed run must share with the stored one (a change needs ``--fresh``)."""
        return {
            "sleeves": [sleeve.plan.identity() for sleeve in self.sleeves],
            "rebalance": self.run_config.rebalance,
        }

    def steps(self, after: datetime | None) -> list[tuple[datetime, list[tuple[int, int]]]]:
        """The bar times still to run (after ``after``), each with its (sleeve, row) pairs.

        The union of the sleeves' bar times from START; at each time every sleeve with a bar
        there, in file order.
        """
        members: dict[pd.Timestamp, list[tuple[int, int]]] = {}
        for number, sleeve in enumerate(self.sleeves):
            plan = sleeve.plan
            first = plan.first
            if after is not None:
                first = max(first, int(plan.bar_times.searchsorted(after, side="right")))
            for row in range(first, len(plan.frame)):
                members.setdefault(plan.bar_times[row], []).append((number, row))
        return [(time.to_pydatetime(), members[time]) for time in sorted(members)]


@dataclass(frozen=True)
class MultiRequest:
    """What ``marketbot run --config FILE --replay START END`` asks for without --strategy.

    Attributes:
        config_path: The run configuration with two or more ``[[strategies]]`` tables.
        overrides: Command-line settings that win over the file.
        source: The stored source of every sleeve's bars, when several have a symbol.
        start: START (``YYYY-MM-DD``), or None for each series' first stored bar.
        end: END (a bare date is the whole day), or None for the last stored bar.
    """

    config_path: Path
    overrides: Mapping[str, object] = field(default_factory=dict)
    source: str | None = None
    start: str | datetime | None = None
    end: str | datetime | None = None


def count_sleeves(config_path: Path, settings: Settings) -> int:
    """How many ``[[strategies]]`` tables the run configuration holds (read and checked)."""
    return len(load_run_config(config_path, settings=settings, bot_defaults=True).strategies)


def plan_sleeves(database: Database, settings: Settings, request: MultiRequest) -> MultiPlan:
    """Validate every ``[[strategies]]`` table of the run configuration; return the plan.

    Raises:
        ConfigError: fewer than two tables, a table without a symbol, two tables on one
            symbol, or what :func:`~marketbot.bot.plan.plan_replay` refuses (named with the
            table).
        DataError: a symbol or timeframe that is not stored, START/END outside the bars.
        StrategyError: a strategy that cannot be loaded.
    """
    where = f"{request.config_path}: "
    run_config = load_run_config(
        request.config_path, settings=settings, bot_defaults=True, overrides=request.overrides
    )
    entries = run_config.strategies
    if len(entries) < 2:
        raise ConfigError(
            f"{where}a run without --strategy needs two or more [[strategies]] tables; it has "
            f"{len(entries)} (give --strategy and --symbol for a single strategy)"
        )
    sleeves: list[Sleeve] = []
    owners: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        label = f"strategies[{number}]"
        if entry.symbol is None:
            raise ConfigError(f"{where}{label}.symbol: each strategy of the bot needs a symbol")
        if entry.symbol in owners:
            raise ConfigError(
                f'{where}{label}.symbol = "{entry.symbol}": strategies[{owners[entry.symbol]}] '
                "trades it already; the paper account holds one position per symbol, so give "
                "each strategy its own symbol"
            )
        owners[entry.symbol] = number
        request_one = ReplayRequest(
            strategy=entry.name, symbol=entry.symbol, params=entry.params,
            config_path=request.config_path, overrides=request.overrides,
            timeframe=entry.timeframe, source=request.source, start=request.start,
            end=request.end,
        )  # fmt: skip
        try:
            plan = plan_replay(database, settings, request_one)
            check_long_only(plan)
        except MarketbotError as exc:
            message = f"{where}{label} ({entry.name} on {entry.symbol}): {exc}"
            raise type(exc)(message) from exc
        sleeves.append(Sleeve(f"{plan.strategy.name}@{plan.symbol}", plan))
    return MultiPlan(tuple(sleeves), run_config, run_config.backtest_config())


def _label(names: Any) -> str:
    return _LABEL_SEPARATOR.join(dict.fromkeys(names))
