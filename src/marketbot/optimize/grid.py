"""Parameter grids: expand ranges into combinations, validated before any backtest runs.

Values are checked against the strategy's declared parameters (type and range) up front, so
a typo or a wrong type fails at once with a message naming it. Combinations that break a
constraint between parameters (``fast >= slow``) are skipped, as the strategy declares
them invalid; when none is left, that is an error too.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Strategy


@dataclass(frozen=True)
class ParameterGrid:
    """The combinations to evaluate, in grid order, and what was skipped.

    Attributes:
        names: Parameter names in the order given (the grid's axes).
        combinations: Every valid combination as a full parameter dict (defaults filled in),
            in grid order: the first axis varies slowest.
        skipped: How many combinations broke a constraint between parameters.
        skip_reasons: A few examples of why, for the report.
    """

    names: tuple[str, ...]
    combinations: tuple[dict[str, Any], ...]
    skipped: int
    skip_reasons: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.combinations)


def expand_grid(strategy: Strategy, param_ranges: Mapping[str, Sequence[object]]) -> ParameterGrid:
    """Expand ``{'fast': [5, 10], 'slow': [50, 100]}`` into validated combinations.

    Raises:
        ConfigError: an empty range, an unknown parameter, a value of the wrong type or
            outside the declared range, or no combination satisfying the constraints.
    """
    if not param_ranges:
        raise ConfigError("param_ranges is empty: give at least one parameter and its values")
    declared = {p.name: p for p in strategy.parameters}
    axes: dict[str, list[Any]] = {}
    for name, values in param_ranges.items():
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ConfigError(
                f"strategy {strategy.name!r} has no parameter {name!r} (parameters: {known})"
            )
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ConfigError(f"range of {name!r} must be a list of values, got {values!r}")
        if len(values) == 0:
            raise ConfigError(f"range of {name!r} is empty")
        coerced = [declared[name].coerce(value) for value in values]
        axes[name] = list(dict.fromkeys(coerced))
    combinations: list[dict[str, Any]] = []
    skipped = 0
    reasons: list[str] = []
    for values in itertools.product(*axes.values()):
        overrides = dict(zip(axes, values, strict=True))
        try:
            combinations.append(strategy.resolve_params(overrides))
        except ConfigError as exc:
            skipped += 1
            if len(reasons) < 5:
                reasons.append(str(exc))
    if not combinations:
        example = reasons[0] if reasons else "no combination"
        raise ConfigError(
            f"no valid combination in the grid ({skipped} rejected by the strategy, e.g. {example})"
        )
    return ParameterGrid(tuple(axes), tuple(combinations), skipped, tuple(reasons))


def is_minimised(metric: str) -> bool:
    """Drawdown metrics are minimised; every other metric is maximised."""
    return "drawdown" in metric
