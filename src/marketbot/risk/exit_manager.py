"""The exit manager: decides stop-loss, take-profit, trailing-stop and max-hold exits live.

It decides exactly as the backtest kernel does, because it calls the same compiled rules
(``risk.exits_nb``) in the same order on the latest closed bar: exits the open gapped
through, then max hold, then intrabar stop-loss, trailing stop, take-profit (a stop wins
when a stop and the target trigger in one bar); after the check the trailing extreme is
raised with the bar's high (low for a short). A plain price is taken
as a bar whose four prices are equal. Executing an exit goes through the ``ExitExecutor``
protocol: this module imports no exchange.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol

from marketbot.core.clock import as_utc, duration_ns, epoch_ns
from marketbot.core.codes import EXIT_MAX_HOLD, EXIT_NONE, EXIT_REASON_NAMES, LONG, SHORT
from marketbot.core.errors import ConfigError
from marketbot.risk.exits_nb import (
    gap_exit_reason_nb,
    intrabar_exit_nb,
    max_hold_reached_nb,
    stop_loss_level_nb,
    take_profit_level_nb,
    trailing_level_nb,
)


class Bar(NamedTuple):
    """One closed bar's prices; ``opened_at`` is its open time when known."""

    open: float
    high: float
    low: float
    close: float
    opened_at: datetime | None = None

    @classmethod
    def flat(cls, price: float, opened_at: datetime | None = None) -> Bar:
        """A bar whose four prices are one observed price."""
        return cls(price, price, price, price, opened_at)


@dataclass(frozen=True, slots=True)
class ExitRuleSet:
    """Exit rules as fractions (0.05 is 5 %); None is off.

    The defaults are the seed's live defaults: stop -5 %, take-profit +10 %, hold 24 h.
    """

    stop_loss: float | None = 0.05
    take_profit: float | None = 0.10
    trailing_stop: float | None = None
    trailing_activation: float | None = None
    max_hold: timedelta | None = timedelta(hours=24)

    def __post_init__(self) -> None:
        for name in ("stop_loss", "take_profit", "trailing_stop"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ConfigError(f"{name}={value!r}: must be a fraction between 0 and 1")
        if self.trailing_activation is not None and not self.trailing_activation >= 0.0:
            raise ConfigError(f"trailing_activation={self.trailing_activation!r}: must be >= 0")
        if self.max_hold is not None and self.max_hold <= timedelta(0):
            raise ConfigError(f"max_hold={self.max_hold!r}: must be positive")

    def overridden_by(self, overrides: PositionExitOverrides | None) -> ExitRuleSet:
        """These rules with a position's own settings (from ``PositionConfig``) on top."""
        if overrides is None:
            return self
        return ExitRuleSet(
            stop_loss=_pick(overrides.stop_loss, self.stop_loss),
            take_profit=_pick(overrides.take_profit, self.take_profit),
            trailing_stop=_pick(overrides.trailing_stop, self.trailing_stop),
            trailing_activation=_pick(overrides.trailing_activation, self.trailing_activation),
            max_hold=(
                self.max_hold
                if overrides.max_hold_seconds is None
                else timedelta(seconds=overrides.max_hold_seconds)
            ),
        )


def _pick(override: float | None, default: float | None) -> float | None:
    return default if override is None else override


@dataclass(frozen=True, slots=True)
class PositionExitOverrides:
    """Per-position exit settings, as stored in ``PositionConfig`` (None: use the default)."""

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    trailing_activation: float | None = None
    max_hold_seconds: int | None = None


@dataclass(slots=True)
class Position:
    """An open position as the exit rules see it.

    Attributes:
        position_id: Stable identifier (the bot's order or trade id).
        symbol: What is held.
        direction: 1 long, -1 short.
        entry_price: Entry fill price (levels are relative to it).
        entry_time: When it was entered (UTC).
        size: Units held.
        extreme_price: Best price since entry at earlier closes (the trailing stop's anchor);
            None means the entry price. Raised by each check, as at a backtest bar's close.
        overrides: This position's own exit settings.
    """

    position_id: str
    symbol: str
    direction: int
    entry_price: float
    entry_time: datetime
    size: float
    extreme_price: float | None = None
    overrides: PositionExitOverrides | None = None


class ExitDecision(NamedTuple):
    """An exit to take: why, and the price level it triggered at (before slippage)."""

    reason: str
    price: float


class ExitExecutor(Protocol):
    """Whatever actually closes positions (the paper or live execution layer)."""

    def close_position(self, position: Position, reason: str, price: float) -> None:
        """Close ``position`` at market (or at ``price`` on paper) for ``reason``."""


@dataclass(slots=True)
class ExitStatistics:
    """Exits taken so far: how many and the P&L, by reason."""

    count: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    pnl: dict[str, float] = field(default_factory=lambda: defaultdict(float))


class ExitManager:
    """Checks open positions against the exit rules and hands exits to an executor.

    Args:
        rules: Default rules (per-position overrides go on top).
        executor: Where ``execute_exit`` sends exits; None means record only.
    """

    def __init__(self, rules: ExitRuleSet | None = None, executor: ExitExecutor | None = None):
        self.rules = rules or ExitRuleSet()
        self.executor = executor
        self.statistics = ExitStatistics()

    def check_exit_conditions(
        self, position: Position, current_price: Bar | float, now: datetime | None = None
    ) -> ExitDecision | None:
        """The exit the latest closed bar calls for, or None; then raise the trailing anchor.

        Checks, as the kernel does within a bar: exits the open gapped through, max hold
        (both skipped on the bar whose open filled the entry), then intrabar stop-loss,
        trailing stop, take-profit. When no exit is due, the position's ``extreme_price``
        is raised with the bar's high (low for a short), after the check.

        Args:
            position: The open position (its ``extreme_price`` is updated in place).
            current_price: The latest closed bar, or a plain price.
            now: The bar's open time for the max-hold check (default: ``bar.opened_at``).
        """
        bar = current_price if isinstance(current_price, Bar) else Bar.flat(current_price)
        moment = now or bar.opened_at
        levels = self._levels(position)
        entry_bar = bar.opened_at is not None and as_utc(bar.opened_at) == as_utc(
            position.entry_time
        )
        decision = None if entry_bar else self._open_exit(position, bar.open, moment, levels)
        if decision is None:
            reason, level = intrabar_exit_nb(
                position.direction, bar.open, bar.high, bar.low, *levels
            )
            if reason != EXIT_NONE:
                decision = ExitDecision(EXIT_REASON_NAMES[reason], level)
        if decision is None:
            extreme = levels_anchor(position)
            position.extreme_price = (
                max(extreme, bar.high) if position.direction == LONG else min(extreme, bar.low)
            )
        return decision

    def check_open(
        self, position: Position, open_price: float, now: datetime | None = None
    ) -> ExitDecision | None:
        """The exit due at a bar's open (gapped stop/target/trailing, then max hold), or None.

        A live loop calls this when a new bar opens, before acting on pending signals, so
        that it labels and orders exits exactly as the kernel does. It changes nothing.
        """
        return self._open_exit(position, open_price, now, self._levels(position))

    def _levels(self, position: Position) -> tuple[float, float, float]:
        rules = self.rules.overridden_by(position.overrides)
        direction = position.direction
        if direction not in (LONG, SHORT):
            raise ConfigError(f"position {position.position_id}: direction must be 1 or -1")
        entry = position.entry_price
        return (
            stop_loss_level_nb(direction, entry, _nan_if_none(rules.stop_loss)),
            take_profit_level_nb(direction, entry, _nan_if_none(rules.take_profit)),
            trailing_level_nb(
                direction,
                entry,
                levels_anchor(position),
                _nan_if_none(rules.trailing_stop),
                _nan_if_none(rules.trailing_activation),
            ),
        )

    def _open_exit(
        self,
        position: Position,
        open_price: float,
        now: datetime | None,
        levels: tuple[float, float, float],
    ) -> ExitDecision | None:
        reason = gap_exit_reason_nb(position.direction, open_price, *levels)
        if reason != EXIT_NONE:
            return ExitDecision(EXIT_REASON_NAMES[reason], open_price)
        max_hold = self.rules.overridden_by(position.overrides).max_hold
        if max_hold is None or now is None:
            return None
        if max_hold_reached_nb(epoch_ns(position.entry_time), epoch_ns(now), duration_ns(max_hold)):
            return ExitDecision(EXIT_REASON_NAMES[EXIT_MAX_HOLD], open_price)
        return None

    def execute_exit(self, position: Position, reason: str, price: float) -> None:
        """Record the exit in the statistics and hand it to the executor."""
        pnl = position.direction * position.size * (price - position.entry_price)
        self.statistics.count[reason] += 1
        self.statistics.pnl[reason] += pnl
        if self.executor is not None:
            self.executor.close_position(position, reason, price)


def levels_anchor(position: Position) -> float:
    """The trailing stop's anchor: the best price at earlier closes, or the entry price."""
    return position.entry_price if position.extreme_price is None else position.extreme_price


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)
