"""The verdict on a backtest: EXCELLENT, GOOD, MARGINAL or FAILED, from its metrics.

The verdict is the best level whose every condition the metrics meet (defaults in
:class:`RecommendationThresholds`, docs/metrics.md says the same):

- EXCELLENT: sharpe >= 2.0, max_drawdown_pct <= 15, profit_factor >= 1.5, num_trades >= 30.
- GOOD: sharpe >= 1.0, max_drawdown_pct <= 25, profit_factor >= 1.2, num_trades >= 20.
- MARGINAL: sharpe >= 0.5 and return_pct > 0.
- FAILED: anything else.

EXCELLENT and GOOD also require return_pct > 0, so the levels nest (a strategy that lost
money is never better than FAILED; MARGINAL's sharpe bound is implied because the thresholds
must keep excellent >= good >= marginal). With fewer than
``min_trades_for_better_than_marginal`` (default 10) trades the verdict is at most MARGINAL.
A NaN metric meets no condition.
:func:`explain` lists the conditions that kept the verdict from the next level up;
:func:`recommend` and :func:`explain` share one list of conditions, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from numbers import Integral, Real
from typing import Final, Literal

from marketbot.core.errors import ConfigError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Recommendation",
    "RecommendationThresholds",
    "explain",
    "recommend",
]


class Recommendation(StrEnum):
    """The verdict on a backtest, best first."""

    EXCELLENT = "EXCELLENT"
    GOOD = "GOOD"
    MARGINAL = "MARGINAL"
    FAILED = "FAILED"


_TRADE_COUNT_FIELDS: Final = (
    "excellent_min_trades",
    "good_min_trades",
    "min_trades_for_better_than_marginal",
)


@dataclass(frozen=True)
class RecommendationThresholds:
    """The thresholds of each verdict; every bound is inclusive.

    Attributes:
        excellent_min_sharpe: EXCELLENT needs sharpe >= this (default 2.0).
        excellent_max_drawdown_pct: EXCELLENT needs max_drawdown_pct <= this (default 15).
        excellent_min_profit_factor: EXCELLENT needs profit_factor >= this (default 1.5).
        excellent_min_trades: EXCELLENT needs num_trades >= this (default 30).
        good_min_sharpe: GOOD needs sharpe >= this (default 1.0).
        good_max_drawdown_pct: GOOD needs max_drawdown_pct <= this (default 25).
        good_min_profit_factor: GOOD needs profit_factor >= this (default 1.2).
        good_min_trades: GOOD needs num_trades >= this (default 20).
        marginal_min_sharpe: MARGINAL needs sharpe >= this (default 0.5), and return_pct > 0.
        min_trades_for_better_than_marginal: with fewer trades than this (default 10), the
            verdict is at most MARGINAL whatever the other thresholds say.

    Raises:
        ConfigError: A threshold is negative or not finite, a trade count is not an integer,
            or EXCELLENT is easier to reach than GOOD, or GOOD than MARGINAL, on some metric.
            The message names the field.
    """

    excellent_min_sharpe: float = 2.0
    excellent_max_drawdown_pct: float = 15.0
    excellent_min_profit_factor: float = 1.5
    excellent_min_trades: int = 30
    good_min_sharpe: float = 1.0
    good_max_drawdown_pct: float = 25.0
    good_min_profit_factor: float = 1.2
    good_min_trades: int = 20
    marginal_min_sharpe: float = 0.5
    min_trades_for_better_than_marginal: int = 10

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name in _TRADE_COUNT_FIELDS:
                if isinstance(value, bool) or not isinstance(value, Integral):
                    raise ConfigError(
                        f"RecommendationThresholds.{field.name} must be a whole number of "
                        f"trades, got {value!r}"
                    )
            elif isinstance(value, bool) or not isinstance(value, Real):
                raise ConfigError(
                    f"RecommendationThresholds.{field.name} must be a number, got {value!r}"
                )
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(
                    f"RecommendationThresholds.{field.name} must be a finite number >= 0, "
                    f"got {value!r}"
                )
        self._require_order("excellent_min_sharpe", ">=", "good_min_sharpe")
        self._require_order("excellent_max_drawdown_pct", "<=", "good_max_drawdown_pct")
        self._require_order("excellent_min_profit_factor", ">=", "good_min_profit_factor")
        self._require_order("excellent_min_trades", ">=", "good_min_trades")
        self._require_order("good_min_sharpe", ">=", "marginal_min_sharpe")

    def _require_order(self, stricter: str, operator: str, looser: str) -> None:
        """Raise ConfigError unless the stricter level's bound is at least as strict."""
        strict_value, loose_value = getattr(self, stricter), getattr(self, looser)
        holds = strict_value >= loose_value if operator == ">=" else strict_value <= loose_value
        if not holds:
            raise ConfigError(
                f"RecommendationThresholds.{stricter} must be {operator} {looser} "
                f"(a better verdict cannot be easier to reach): got {strict_value!r} "
                f"and {loose_value!r}"
            )


DEFAULT_THRESHOLDS: Final = RecommendationThresholds()

_JUDGED_METRICS: Final = ("sharpe", "max_drawdown_pct", "profit_factor", "num_trades", "return_pct")
_LEVELS_BEST_FIRST: Final = (
    Recommendation.EXCELLENT,
    Recommendation.GOOD,
    Recommendation.MARGINAL,
)


@dataclass(frozen=True, slots=True)
class _Condition:
    """One requirement of a level: ``metric operator bound``."""

    metric: str
    operator: Literal[">=", "<=", ">"]
    bound: float

    def is_met(self, value: float) -> bool:
        """Whether ``value`` meets the condition; NaN meets none."""
        if self.operator == ">=":
            return value >= self.bound
        if self.operator == "<=":
            return value <= self.bound
        return value > self.bound


def _conditions(level: Recommendation, t: RecommendationThresholds) -> tuple[_Condition, ...]:
    """Every condition of ``level``; the validated ordering makes MARGINAL's sharpe implied."""
    positive_return = _Condition("return_pct", ">", 0.0)
    if level is Recommendation.MARGINAL:
        return (_Condition("sharpe", ">=", t.marginal_min_sharpe), positive_return)
    if level is Recommendation.FAILED:
        return ()
    excellent = level is Recommendation.EXCELLENT
    min_trades = t.excellent_min_trades if excellent else t.good_min_trades
    return (
        _Condition("sharpe", ">=", t.excellent_min_sharpe if excellent else t.good_min_sharpe),
        _Condition(
            "max_drawdown_pct",
            "<=",
            t.excellent_max_drawdown_pct if excellent else t.good_max_drawdown_pct,
        ),
        _Condition(
            "profit_factor",
            ">=",
            t.excellent_min_profit_factor if excellent else t.good_min_profit_factor,
        ),
        _Condition("num_trades", ">=", max(min_trades, t.min_trades_for_better_than_marginal)),
        positive_return,
    )


def _judged_values(metrics: Mapping[str, float | int | None]) -> dict[str, float]:
    """The metrics a verdict reads, as floats; a profit_factor of None (JSON null) is +inf."""
    values: dict[str, float] = {}
    for key in _JUDGED_METRICS:
        if key not in metrics:
            raise ConfigError(
                f"metrics has no {key!r}; a verdict needs {', '.join(_JUDGED_METRICS)}"
            )
        value = metrics[key]
        if value is None and key == "profit_factor":
            values[key] = math.inf
        elif value is None:
            raise ConfigError(f"metrics[{key!r}] is None; a verdict needs a number")
        else:
            values[key] = float(value)
    return values


def _unmet(
    values: Mapping[str, float], level: Recommendation, thresholds: RecommendationThresholds
) -> list[str]:
    """The conditions of ``level`` that ``values`` miss, as readable reasons."""
    return [
        f"{level.value} needs {c.metric} {c.operator} {c.bound:g}, got {values[c.metric]:.6g}"
        for c in _conditions(level, thresholds)
        if not c.is_met(values[c.metric])
    ]


def recommend(
    metrics: Mapping[str, float | int | None],
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
) -> Recommendation:
    """The best verdict whose every condition the metrics meet.

    Args:
        metrics: At least sharpe, max_drawdown_pct, profit_factor, num_trades and return_pct,
            as :func:`marketbot.core.metrics.compute_metrics` returns them. A profit_factor
            of None (how JSON stores +inf) counts as +inf.
        thresholds: The thresholds of each verdict.

    Returns:
        EXCELLENT, GOOD, MARGINAL or FAILED.

    Raises:
        ConfigError: A metric the verdict needs is missing or None.
    """
    values = _judged_values(metrics)
    for level in _LEVELS_BEST_FIRST:
        if not _unmet(values, level, thresholds):
            return level
    return Recommendation.FAILED


def explain(
    metrics: Mapping[str, float | int | None],
    thresholds: RecommendationThresholds = DEFAULT_THRESHOLDS,
) -> list[str]:
    """Why the verdict is not one level better: the conditions of that level the metrics miss.

    Args:
        metrics: As for :func:`recommend`.
        thresholds: As for :func:`recommend`.

    Returns:
        One reason per missed condition, e.g. ``"GOOD needs sharpe >= 1, got 0.8"``; an empty
        list when the verdict is EXCELLENT.

    Raises:
        ConfigError: A metric the verdict needs is missing or None.
    """
    values = _judged_values(metrics)
    verdict = recommend(values, thresholds)
    if verdict is Recommendation.EXCELLENT:
        return []
    order = (*_LEVELS_BEST_FIRST, Recommendation.FAILED)
    next_better = order[order.index(verdict) - 1]
    return _unmet(values, next_better, thresholds)
