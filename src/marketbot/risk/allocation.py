"""Scoring strategies and turning scores into bounded allocations: the rebalancer's maths.

Pure functions on plain numbers. Scores: each of Sharpe, win rate and total P&L is min-max
normalised across the strategies to [0, 1] and the three are weighted (0.4 / 0.3 / 0.3 by
default). Allocation: proportional to score, clipped to [min, max] by water-filling so the
weights sum to 100 % whenever the bounds allow. docs/sizing_and_rebalancing.md works
examples of both.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from marketbot.core.errors import ConfigError

__all__ = [
    "AllocationBound",
    "ScoreAllocation",
    "StrategyScore",
    "StrategyStats",
    "allocate_by_score",
    "score_strategies",
]

AllocationBound = Literal["score", "max", "min", "equal", "remainder", "removed"]
# Scores are rounded so that float noise in the weighted sum cannot break a tie.
_SCORE_DECIMALS: Final = 12


@dataclass(frozen=True, slots=True)
class StrategyStats:
    """Performance of one strategy, as the rebalancer scores it.

    Any float is accepted: a NaN or infinite value, or a win rate outside 0..100, is scored
    as the worst of its component (see docs/sizing_and_rebalancing.md).

    Attributes:
        name: Unique strategy name; ties are broken by it.
        sharpe: Annualised Sharpe ratio (``compute_metrics``' ``sharpe``).
        win_rate_pct: Percent of winning trades (55.0 is 55 %).
        total_pnl_usd: Total profit and loss in USD after costs.
        num_trades: Closed trades; used only to explain the plan.
    """

    name: str
    sharpe: float
    win_rate_pct: float
    total_pnl_usd: float
    num_trades: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"name={self.name!r}: a strategy needs a non-empty name")
        for field in ("sharpe", "win_rate_pct", "total_pnl_usd"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{field}={value!r}: must be a number (NaN is allowed)")
        if isinstance(self.num_trades, bool) or not isinstance(self.num_trades, int):
            raise ConfigError(f"num_trades={self.num_trades!r}: must be a whole number")
        if self.num_trades < 0:
            raise ConfigError(f"num_trades={self.num_trades!r}: must be >= 0")

    @classmethod
    def from_metrics(cls, name: str, metrics: Mapping[str, float | int]) -> StrategyStats:
        """Stats from a ``compute_metrics`` result: total P&L = expectancy x num_trades."""
        num_trades = int(metrics["num_trades"])
        return cls(
            name=name,
            sharpe=float(metrics["sharpe"]),
            win_rate_pct=float(metrics["win_rate"]),
            total_pnl_usd=float(metrics["expectancy"]) * num_trades,
            num_trades=num_trades,
        )


@dataclass(frozen=True, slots=True)
class StrategyScore:
    """One strategy's score and its normalised components, each in [0, 1].

    Attributes:
        stats: The statistics scored.
        sharpe_score: Normalised Sharpe ratio (0 worst, 1 best).
        win_rate_score: Normalised win rate.
        pnl_score: Normalised total P&L.
        score: ``sharpe_weight x sharpe_score + win_rate_weight x win_rate_score +
            pnl_weight x pnl_score``, rounded to 12 decimals.
    """

    stats: StrategyStats
    sharpe_score: float
    win_rate_score: float
    pnl_score: float
    score: float

    @property
    def name(self) -> str:
        """The strategy's name."""
        return self.stats.name


# --- scoring ------------------------------------------------------------------------------


def _normalise(values: Sequence[float], valid: Sequence[bool]) -> list[float]:
    """Min-max to [0, 1] over the valid values; invalid ones 0; all-equal valid ones 1."""
    usable = [value for value, ok in zip(values, valid, strict=True) if ok]
    if not usable:
        return [0.0] * len(values)
    low, high = min(usable), max(usable)
    if high == low:
        return [1.0 if ok else 0.0 for ok in valid]
    span = high - low
    normalised = []
    for value, ok in zip(values, valid, strict=True):
        if not ok:
            normalised.append(0.0)
            continue
        # Halving first keeps the span finite for values near the float limits.
        share = (
            (value - low) / span
            if math.isfinite(span)
            else (value / 2 - low / 2) / (high / 2 - low / 2)
        )
        normalised.append(min(max(share, 0.0), 1.0))
    return normalised


def _sorted_unique(stats: Sequence[StrategyStats]) -> list[StrategyStats]:
    ordered = sorted(stats, key=lambda item: item.name)
    for previous, current in itertools.pairwise(ordered):
        if previous.name == current.name:
            raise ConfigError(f"strategy {current.name!r} appears twice: names must be unique")
    return ordered


def _win_rate_valid(value: float) -> bool:
    return math.isfinite(value) and 0.0 <= value <= 100.0


def score_strategies(
    stats: Sequence[StrategyStats],
    sharpe_weight: float = 0.4,
    win_rate_weight: float = 0.3,
    pnl_weight: float = 0.3,
) -> tuple[StrategyScore, ...]:
    """Score each strategy in [0, 1] from its normalised Sharpe, win rate and total P&L.

    Each component is min-max normalised across the strategies (the worst 0, the best 1;
    all valid values equal: 1 each; NaN, inf or a win rate outside 0..100: 0, the worst),
    then ``score = sharpe_weight x sharpe + win_rate_weight x win rate + pnl_weight x P&L``,
    rounded to 12 decimals. The weights are taken as given (``RebalancerConfig`` checks
    that they are >= 0 and sum to 1).

    Args:
        stats: One entry per strategy, names unique, in any order.
        sharpe_weight: Weight of the normalised Sharpe ratio.
        win_rate_weight: Weight of the normalised win rate.
        pnl_weight: Weight of the normalised total P&L.

    Returns:
        The scores, sorted by name.

    Raises:
        ConfigError: two strategies share a name.
    """
    ordered = _sorted_unique(stats)
    sharpe = [float(item.sharpe) for item in ordered]
    win_rate = [float(item.win_rate_pct) for item in ordered]
    pnl = [float(item.total_pnl_usd) for item in ordered]
    sharpe_scores = _normalise(sharpe, [math.isfinite(value) for value in sharpe])
    win_scores = _normalise(win_rate, [_win_rate_valid(value) for value in win_rate])
    pnl_scores = _normalise(pnl, [math.isfinite(value) for value in pnl])
    scores = []
    for item, sharpe_score, win_score, pnl_score in zip(
        ordered, sharpe_scores, win_scores, pnl_scores, strict=True
    ):
        total = sharpe_weight * sharpe_score + win_rate_weight * win_score + pnl_weight * pnl_score
        scores.append(StrategyScore(item, sharpe_score, win_score, pnl_score, _clean_score(total)))
    return tuple(scores)


# --- allocation ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScoreAllocation:
    """Target fractions for scores in one order, and what bound each.

    Attributes:
        weights: Target fraction of the portfolio per score, in the input order.
        bounds: Why each weight is what it is: ``score`` (proportional), ``max``, ``min``,
            ``equal`` (the minimums fill 100 %) or ``remainder`` (a zero score sharing
            what the capped strategies leave).
        min_allocation: The minimum actually applied (lowered to 1/n when n x min > 1).
        invested: Sum of the weights: min(1, n x max_allocation).
    """

    weights: tuple[float, ...]
    bounds: tuple[AllocationBound, ...]
    min_allocation: float
    invested: float


def check_fraction(name: str, value: float, *, allow_zero: bool) -> None:
    """Raise ConfigError naming ``name`` unless ``value`` is in [0, 1] ((0, 1] without zero)."""
    low_ok = value >= 0.0 if allow_zero else value > 0.0
    if not (isinstance(value, int | float) and math.isfinite(value) and low_ok and value <= 1.0):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"{name}={value!r}: must be a fraction in {interval}")


def _clean_score(score: float) -> float:
    if math.isnan(score):
        return 0.0
    return min(max(round(score, _SCORE_DECIMALS), 0.0), 1.0)


def _clip(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _filled(scores: Sequence[float], scale: float, low: float, high: float) -> float:
    return sum(_clip(scale * score, low, high) for score in scores)


def _solve_scale(scores: Sequence[float], low: float, high: float) -> float | None:
    """The scale c with sum(clip(c x score, low, high)) == 1, or None if none exists.

    The sum is continuous, piecewise linear and non-decreasing in c, with kinks at
    low / score and high / score; find the first kink where it reaches 1 and solve the
    linear piece before it exactly.
    """
    kinks = sorted({kink / score for score in scores if score > 0.0 for kink in (low, high)})
    previous = 0.0
    for kink in kinks:
        if _filled(scores, kink, low, high) >= 1.0:
            middle = (previous + kink) / 2
            inside = [score for score in scores if low < middle * score < high]
            slope = sum(inside)
            if slope == 0.0:
                return kink
            clipped = [score for score in scores if not low < middle * score < high]
            return (1.0 - _filled(clipped, middle, low, high)) / slope
        previous = kink
    return None


def allocate_by_score(
    scores: Sequence[float], min_allocation: float = 0.05, max_allocation: float = 0.40
) -> ScoreAllocation:
    """Fractions proportional to score, clipped to [min, max] by water-filling.

    ``weight_i = clip(c x score_i, min, max)`` with the one scale ``c`` that makes the
    weights sum to 100 %. When ``n x max < 1`` every strategy is held at max and the rest
    stays cash; when ``n x min >= 1`` the minimum is lowered to ``1/n`` and every strategy
    gets an equal share. If the strategies with a positive score cannot reach 100 % even at
    max, those with score 0 share the remainder equally.

    Args:
        scores: Scores in [0, 1], any order (the weights come back in the same order). Each
            is rounded to 12 decimals and clipped to [0, 1]; NaN counts as 0.
        min_allocation: Least fraction per strategy, in [0, max_allocation].
        max_allocation: Most fraction per strategy, in (0, 1].

    Returns:
        The weights and why each is what it is.

    Raises:
        ConfigError: a bound is outside its interval.
    """
    check_fraction("min_allocation", min_allocation, allow_zero=True)
    check_fraction("max_allocation", max_allocation, allow_zero=False)
    if min_allocation > max_allocation:
        raise ConfigError(
            f"min_allocation={min_allocation!r} > max_allocation={max_allocation!r}: "
            "the minimum must not exceed the maximum"
        )
    # Rounding keeps every kink max / score finite (a score of 1e-309 would overflow it).
    scores = [_clean_score(score) for score in scores]
    count = len(scores)
    if count == 0:
        return ScoreAllocation((), (), min_allocation, 0.0)
    if count * max_allocation <= 1.0:
        return _uniform(count, max_allocation, "max", min_allocation)
    if count * min_allocation >= 1.0:
        equal_share = min(min_allocation, 1.0 / count)
        return _uniform(count, equal_share, "equal", equal_share)
    scale = _solve_scale(scores, min_allocation, max_allocation)
    if scale is None:
        return _fill_remainder(scores, min_allocation, max_allocation)
    weights = tuple(_clip(scale * score, min_allocation, max_allocation) for score in scores)
    bounds: tuple[AllocationBound, ...] = tuple(
        "max" if weight >= max_allocation else "min" if weight <= min_allocation else "score"
        for weight in weights
    )
    return ScoreAllocation(weights, bounds, min_allocation, sum(weights))


def _uniform(
    count: int, weight: float, bound: AllocationBound, applied_min: float
) -> ScoreAllocation:
    return ScoreAllocation((weight,) * count, (bound,) * count, applied_min, count * weight)


def _fill_remainder(scores: Sequence[float], low: float, high: float) -> ScoreAllocation:
    positive = sum(1 for score in scores if score > 0.0)
    share = (1.0 - positive * high) / (len(scores) - positive)
    weights = tuple(high if score > 0.0 else _clip(share, low, high) for score in scores)
    bounds: tuple[AllocationBound, ...] = tuple(
        "max" if score > 0.0 else "remainder" for score in scores
    )
    return ScoreAllocation(weights, bounds, low, sum(weights))
