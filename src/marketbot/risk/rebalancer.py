"""The portfolio rebalancer: scores strategies, allocates capital by score, explains the plan.

Pure and deterministic: the same statistics give the same plan whatever their order (every
computation runs over the strategies sorted by name, and ties are broken by name). No I/O
and no clock: the bot asks :func:`is_due` with its own ``now`` and stores the plan itself.
docs/sizing_and_rebalancing.md defines the score, the allocation and the schedule, with
worked examples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from marketbot.core.errors import ConfigError
from marketbot.risk.allocation import (
    AllocationBound,
    ScoreAllocation,
    StrategyScore,
    StrategyStats,
    allocate_by_score,
    check_fraction,
    score_strategies,
)

__all__ = [
    "AllocationBound",
    "AllocationChange",
    "RebalancePlan",
    "RebalanceSchedule",
    "Rebalancer",
    "RebalancerConfig",
    "ScoreAllocation",
    "StrategyScore",
    "StrategyStats",
    "allocate_by_score",
    "is_due",
    "next_run",
    "score_strategies",
]

RebalanceSchedule = Literal["daily", "weekly", "monthly"]
# Changes smaller than this (in percentage points) count as "keep".
_CHANGE_TOLERANCE_PCT = 1e-9


# --- schedule -----------------------------------------------------------------------------


def _check_schedule(schedule: str) -> None:
    if schedule not in get_args(RebalanceSchedule):
        raise ConfigError(f"schedule={schedule!r}: use one of daily, weekly, monthly")


def _as_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def next_run(schedule: RebalanceSchedule, last_run: datetime) -> datetime:
    """When the next rebalance is due: the start of the next UTC day, week or month.

    Periods are calendar periods in UTC: days start at 00:00, weeks on Monday 00:00, months
    on the 1st at 00:00. A run at any moment of a period makes the next one due at the
    start of the following period, so a late run does not shift the schedule.

    Args:
        schedule: ``daily``, ``weekly`` or ``monthly``.
        last_run: When the last rebalance ran; a naive datetime is taken to be UTC.

    Returns:
        The start of the next period, an aware UTC datetime.

    Raises:
        ConfigError: the schedule is not one of the three.
    """
    _check_schedule(schedule)
    last = _as_utc(last_run)
    day_start = last.replace(hour=0, minute=0, second=0, microsecond=0)
    if schedule == "daily":
        return day_start + timedelta(days=1)
    if schedule == "weekly":
        return day_start + timedelta(days=7 - last.weekday())
    if last.month == 12:
        return datetime(last.year + 1, 1, 1, tzinfo=UTC)
    return datetime(last.year, last.month + 1, 1, tzinfo=UTC)


def is_due(schedule: RebalanceSchedule, last_run: datetime | None, now: datetime) -> bool:
    """Whether a rebalance is due at ``now``: never run, or ``now >= next_run(last_run)``.

    Naive datetimes are taken to be UTC. A clock that went back before ``last_run`` gives
    False until the next period starts.

    Raises:
        ConfigError: the schedule is not one of the three.
    """
    _check_schedule(schedule)
    if last_run is None:
        return True
    return _as_utc(now) >= next_run(schedule, last_run)


# --- settings and inputs ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RebalancerConfig:
    """Settings of the rebalancer, validated when constructed (fractions: 0.05 is 5 %).

    Attributes:
        min_allocation: Least fraction of the portfolio per strategy, in [0, 1].
        max_allocation: Most fraction of the portfolio per strategy, in (0, 1].
        sharpe_weight: Weight of the normalised Sharpe ratio in the score.
        win_rate_weight: Weight of the normalised win rate.
        pnl_weight: Weight of the normalised total P&L. The three weights sum to 1.
        schedule: How often the bot rebalances: ``daily``, ``weekly`` or ``monthly``.
    """

    min_allocation: float = 0.05
    max_allocation: float = 0.40
    sharpe_weight: float = 0.4
    win_rate_weight: float = 0.3
    pnl_weight: float = 0.3
    schedule: RebalanceSchedule = "weekly"

    def __post_init__(self) -> None:
        check_fraction("min_allocation", self.min_allocation, allow_zero=True)
        check_fraction("max_allocation", self.max_allocation, allow_zero=False)
        if self.min_allocation > self.max_allocation:
            raise ConfigError(
                f"min_allocation={self.min_allocation!r} > max_allocation="
                f"{self.max_allocation!r}: the minimum must not exceed the maximum"
            )
        weights = (self.sharpe_weight, self.win_rate_weight, self.pnl_weight)
        for name, weight in zip(
            ("sharpe_weight", "win_rate_weight", "pnl_weight"), weights, strict=True
        ):
            check_fraction(name, weight, allow_zero=True)
        if abs(sum(weights) - 1.0) > 1e-9:
            raise ConfigError(
                f"sharpe_weight + win_rate_weight + pnl_weight = {sum(weights)!r}: must be 1"
            )
        _check_schedule(self.schedule)


# --- the plan -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllocationChange:
    """One strategy's line of a plan: where it is, where it goes, and why.

    Attributes:
        strategy: Strategy name.
        score: Its score in [0, 1]; None for a strategy that has no statistics any more.
        current_pct: Current allocation, percent of the portfolio value.
        target_pct: Target allocation, percent of the portfolio value.
        change_pct: ``target_pct - current_pct``, in percentage points.
        change_usd: The change in USD at the plan's portfolio value.
        bound: What set the target: ``score``, ``max``, ``min``, ``equal``, ``remainder``
            or ``removed``.
        reason: One readable line, e.g. ``increase: score 0.82, top Sharpe; held at max 40 %``.
    """

    strategy: str
    score: float | None
    current_pct: float
    target_pct: float
    change_pct: float
    change_usd: float
    bound: AllocationBound
    reason: str


@dataclass(frozen=True, slots=True)
class RebalancePlan:
    """A rebalancing plan: current versus target allocation per strategy, and notes.

    Attributes:
        portfolio_value_usd: The portfolio value the USD changes are computed at.
        changes: One line per strategy: scored ones by score (best first, ties by name),
            then those without statistics by name.
        current_cash_pct: 100 minus the current allocations (negative if they exceed 100).
        target_cash_pct: 100 minus the target allocations (0 unless the bounds keep cash).
        min_allocation_pct: The minimum per strategy actually applied, in percent.
        max_allocation_pct: The maximum per strategy, in percent.
        notes: Plan-level explanations (cash kept, minimum lowered, invalid inputs...).
    """

    portfolio_value_usd: float
    changes: tuple[AllocationChange, ...]
    current_cash_pct: float
    target_cash_pct: float
    min_allocation_pct: float
    max_allocation_pct: float
    notes: tuple[str, ...]

    def target_pct(self) -> dict[str, float]:
        """Target allocation per strategy, in percent."""
        return {change.strategy: change.target_pct for change in self.changes}

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain JSON-ready values (for the store and the dashboard)."""
        return asdict(self)


def _pct_text(fraction: float) -> str:
    return f"{fraction * 100:.4g} %"


def _check_portfolio_value(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"portfolio_value_usd={value!r}: must be a number > 0")
    if not (math.isfinite(value) and value > 0.0):
        raise ConfigError(f"portfolio_value_usd={value!r}: must be a number > 0")
    return float(value)


def _check_current(current_pct: Mapping[str, float]) -> dict[str, float]:
    checked = {}
    for name, value in current_pct.items():
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not (math.isfinite(number) and number >= 0.0):
            raise ConfigError(f"current_pct[{name!r}]={value!r}: must be a percent >= 0")
        checked[name] = float(number)
    return checked


def _highlights(scores: Sequence[StrategyScore]) -> dict[str, list[str]]:
    """Per strategy: the components it tops, invalid inputs, losses and missing trades."""
    notes: dict[str, list[str]] = {item.name: [] for item in scores}
    components = (("Sharpe", "sharpe_score"), ("win rate", "win_rate_score"), ("P&L", "pnl_score"))
    for label, field in components:
        values = [getattr(item, field) for item in scores]
        if len(values) >= 2 and min(values) < 1.0:
            for item, value in zip(scores, values, strict=True):
                if value == 1.0:
                    notes[item.name].append(f"top {label}")
    for item in scores:
        stats = item.stats
        for label, value, valid in (
            ("Sharpe", stats.sharpe, math.isfinite(stats.sharpe)),
            ("win rate", stats.win_rate_pct, 0.0 <= stats.win_rate_pct <= 100.0),
            ("P&L", stats.total_pnl_usd, math.isfinite(stats.total_pnl_usd)),
        ):
            if not valid:
                notes[item.name].append(f"{label} {value!r} scored as the worst")
        if math.isfinite(stats.total_pnl_usd) and stats.total_pnl_usd < 0.0:
            notes[item.name].append(f"losing (P&L {stats.total_pnl_usd:,.2f} USD)")
        if stats.num_trades == 0:
            notes[item.name].append("no trades")
    return notes


def _bound_text(
    bound: AllocationBound, allocation: ScoreAllocation, config: RebalancerConfig
) -> str:
    count = len(allocation.weights)
    max_text = f"held at max {_pct_text(config.max_allocation)}"
    if bound == "max" and allocation.invested < 1.0:
        return f"{max_text} (too few strategies for 100 %)"
    if bound == "equal" and allocation.min_allocation < config.min_allocation:
        return f"equal share: min lowered to 100 %/{count} = {_pct_text(1.0 / count)}"
    texts: dict[AllocationBound, str] = {
        "max": max_text,
        "min": f"raised to min {_pct_text(config.min_allocation)}",
        "equal": f"equal share: {count} x min {_pct_text(config.min_allocation)} fill 100 %",
        "remainder": "score 0: an equal part of what the strategies at max leave",
    }
    return texts.get(bound, "proportional to score")


def _direction(change_pct: float) -> str:
    if change_pct > _CHANGE_TOLERANCE_PCT:
        return "increase"
    if change_pct < -_CHANGE_TOLERANCE_PCT:
        return "decrease"
    return "keep"


def _plan_notes(
    scores: Sequence[StrategyScore],
    allocation: ScoreAllocation,
    config: RebalancerConfig,
    removed: Sequence[str],
    current_total_pct: float,
) -> list[str]:
    count = len(scores)
    notes = []
    if count == 0:
        notes.append("no strategies with statistics: the whole portfolio stays in cash")
    elif allocation.invested < 1.0:
        cash = _pct_text(1.0 - allocation.invested)
        noun = "strategy" if count == 1 else "strategies"
        notes.append(
            f"only {count} {noun}: at most {count} x {_pct_text(config.max_allocation)} = "
            f"{_pct_text(allocation.invested)} can be allocated; {cash} stays in cash"
        )
    if allocation.min_allocation < config.min_allocation:
        notes.append(
            f"{count} strategies x min {_pct_text(config.min_allocation)} = "
            f"{_pct_text(count * config.min_allocation)} > 100 %: minimum lowered to "
            f"100 %/{count} = {_pct_text(1.0 / count)}, an equal share each"
        )
    if "remainder" in allocation.bounds:
        notes.append("every strategy with a score above 0 is at max; those at 0 share the rest")
    if count >= 2 and len({item.score for item in scores}) == 1:
        notes.append(f"all {count} scores are equal ({scores[0].score:.2f}): equal shares")
    notes.extend(f"{name}: no statistics, target 0 %" for name in removed)
    if current_total_pct > 100.0 + _CHANGE_TOLERANCE_PCT:
        notes.append(f"current allocations sum to {current_total_pct:.2f} %, more than 100 %")
    return notes


class Rebalancer:
    """Scores strategies, allocates capital by score within bounds, and plans the changes.

    Example::

        rebalancer = Rebalancer()
        plan = rebalancer.plan(stats, {"momentum": 50.0}, portfolio_value_usd=10_000.0)
        for change in plan.changes:
            print(change.strategy, change.target_pct, change.reason)
    """

    def __init__(self, config: RebalancerConfig | None = None) -> None:
        """Create a rebalancer with validated settings (defaults when None)."""
        self._config = config if config is not None else RebalancerConfig()

    @property
    def config(self) -> RebalancerConfig:
        """The settings."""
        return self._config

    def score(self, stats: Sequence[StrategyStats]) -> tuple[StrategyScore, ...]:
        """Each strategy's score and normalised components, sorted by name."""
        config = self._config
        return score_strategies(
            stats, config.sharpe_weight, config.win_rate_weight, config.pnl_weight
        )

    def plan(
        self,
        stats: Sequence[StrategyStats],
        current_pct: Mapping[str, float] | None = None,
        *,
        portfolio_value_usd: float,
    ) -> RebalancePlan:
        """Plan the move from the current allocation to the score-based target.

        Args:
            stats: One entry per strategy to allocate to (names unique, any order).
            current_pct: Current allocation per strategy in percent (missing: 0). A strategy
                here without stats gets a target of 0.
            portfolio_value_usd: Portfolio value the USD changes are computed at.

        Returns:
            The plan; the same inputs in any order give the same plan.

        Raises:
            ConfigError: duplicate names, a current allocation that is negative or not a
                number, or a portfolio value that is not > 0.
        """
        value_usd = _check_portfolio_value(portfolio_value_usd)
        current = _check_current(current_pct or {})
        scores = self.score(stats)
        allocation = allocate_by_score(
            [item.score for item in scores],
            self._config.min_allocation,
            self._config.max_allocation,
        )
        highlights = _highlights(scores)
        changes = []
        for item, weight, bound in zip(scores, allocation.weights, allocation.bounds, strict=True):
            why = ", ".join([f"score {item.score:.2f}", *highlights[item.name]])
            why += f"; {_bound_text(bound, allocation, self._config)}"
            changes.append(_change(item.name, item.score, current, weight, bound, why, value_usd))
        changes.sort(key=lambda change: (-(change.score or 0.0), change.strategy))
        scored = {item.name for item in scores}
        removed = sorted(name for name in current if name not in scored)
        changes.extend(
            _change(name, None, current, 0.0, "removed", "no statistics: leaves", value_usd)
            for name in removed
        )
        current_total = sum(current[name] for name in sorted(current))
        notes = _plan_notes(scores, allocation, self._config, removed, current_total)
        return RebalancePlan(
            portfolio_value_usd=value_usd,
            changes=tuple(changes),
            current_cash_pct=100.0 - current_total,
            target_cash_pct=100.0 - sum(change.target_pct for change in changes),
            min_allocation_pct=allocation.min_allocation * 100.0,
            max_allocation_pct=self._config.max_allocation * 100.0,
            notes=tuple(notes),
        )

    def is_due(self, last_run: datetime | None, now: datetime) -> bool:
        """Whether the configured schedule has a rebalance due at ``now`` (see :func:`is_due`)."""
        return is_due(self._config.schedule, last_run, now)

    def next_run(self, last_run: datetime) -> datetime:
        """When the next rebalance is due after ``last_run`` (see :func:`next_run`)."""
        return next_run(self._config.schedule, last_run)


def _change(
    name: str,
    score: float | None,
    current: Mapping[str, float],
    weight: float,
    bound: AllocationBound,
    why: str,
    value_usd: float,
) -> AllocationChange:
    current_pct = current.get(name, 0.0)
    target_pct = weight * 100.0
    change_pct = target_pct - current_pct
    reason = f"{_direction(change_pct)}: {why}"
    change_usd = change_pct / 100.0 * value_usd
    return AllocationChange(
        name, score, current_pct, target_pct, change_pct, change_usd, bound, reason
    )
