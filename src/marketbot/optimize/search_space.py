"""Search spaces: a validated range per strategy parameter, shared by the grid and Optuna.

A range per parameter is either a list of values (categorical choices) or a numeric
:class:`ParamRange` (``low``/``high``/``step``, also given as a dict or as the CLI's
``LOW:HIGH[:STEP]`` text). :func:`search_space` validates every range against the strategy's
declared parameters before anything runs; the grid expands a space (:meth:`Dimension.values`)
and Optuna samples it (:meth:`Dimension.suggest`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, cast

from marketbot.core.errors import ConfigError
from marketbot.strategies.base import Parameter, ParamValue, Strategy

if TYPE_CHECKING:
    import optuna

__all__ = [
    "MAX_GRID_POINTS",
    "Dimension",
    "ParamRange",
    "RangeSpec",
    "grid_axes",
    "search_space",
]

MAX_GRID_POINTS = 1_000_000
"""Most values one range may expand to on the grid; beyond that, use Optuna."""


@dataclass(frozen=True)
class ParamRange:
    """A numeric range: ``low`` to ``high`` inclusive, every ``step`` (None: continuous).

    Integer parameters default to a step of 1; float parameters without a step are
    continuous for Optuna and cannot be expanded into a grid.

    Raises:
        ConfigError: a bound or the step is not a finite number, low > high, or step <= 0.
    """

    low: float
    high: float
    step: float | None = None

    def __post_init__(self) -> None:
        for label, value in (("low", self.low), ("high", self.high), ("step", self.step)):
            if value is None and label == "step":
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ConfigError(f"{label}={value!r}: must be a number")
            if not math.isfinite(value):
                raise ConfigError(f"{label}={value!r}: must be a finite number")
        if self.low > self.high:
            raise ConfigError(f"low={self.low!r} > high={self.high!r}: low must be <= high")
        if self.step is not None and self.step <= 0:
            raise ConfigError(f"step={self.step!r}: must be > 0")

    @classmethod
    def parse(cls, text: str) -> ParamRange:
        """Read the CLI's ``LOW:HIGH[:STEP]`` (``5:50:5``, ``0.5:3``).

        Raises:
            ConfigError: not two or three numbers separated by colons, or an invalid range.
        """
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise ConfigError(f"range {text!r}: expected LOW:HIGH or LOW:HIGH:STEP")
        numbers = [_parse_number(part, text) for part in parts]
        return cls(numbers[0], numbers[1], numbers[2] if len(numbers) == 3 else None)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, object]) -> ParamRange:
        """Build from ``{'low': ..., 'high': ..., 'step': ...}`` (step optional).

        Raises:
            ConfigError: a missing bound, an unknown key, or an invalid range.
        """
        unknown = set(mapping) - {"low", "high", "step"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}: use low, high and step")
        if "low" not in mapping or "high" not in mapping:
            raise ConfigError("a range needs both 'low' and 'high'")
        return cls(mapping["low"], mapping["high"], mapping.get("step"))  # type: ignore[arg-type]  # checked in __post_init__


RangeSpec = Sequence[object] | ParamRange | Mapping[str, object]
"""What one parameter's range may be: a list of values, a ParamRange or its dict form."""


def _parse_number(part: str, text: str) -> float:
    try:
        number = float(part)
    except ValueError:
        raise ConfigError(f"range {text!r}: {part!r} is not a number") from None
    return int(number) if number.is_integer() and "." not in part else number


@dataclass(frozen=True)
class Dimension:
    """One validated axis of a search space.

    Attributes:
        name: The parameter's name.
        choices: The values to choose from (a list was given), else None.
        low: Smallest value of a numeric range (converted to the parameter's type).
        high: Largest value actually reachable: ``low`` plus a whole number of steps.
        step: Distance between values; None for a continuous float range.
        integer: True when the parameter is an int.
    """

    name: str
    choices: tuple[ParamValue, ...] | None = None
    low: float = 0
    high: float = 0
    step: float | None = None
    integer: bool = False

    def values(self) -> list[ParamValue]:
        """Every value, in order, for the grid.

        Raises:
            ConfigError: a continuous range, or more than MAX_GRID_POINTS values.
        """
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise ConfigError(
                f"range of {self.name!r} has no step: the grid needs one "
                "(LOW:HIGH:STEP), or use method='optuna' for a continuous range"
            )
        count = self._steps(self.step) + 1
        if count > MAX_GRID_POINTS:
            raise ConfigError(
                f"range of {self.name!r} has {count:,} values (at most {MAX_GRID_POINTS:,} "
                "on the grid): widen the step or use method='optuna'"
            )
        return [self._value_at(index, self.step) for index in range(count)]

    def suggest(self, trial: optuna.trial.Trial) -> ParamValue:
        """Ask an Optuna trial for this parameter's value (snapped onto the step)."""
        if self.choices is not None:
            return cast(ParamValue, trial.suggest_categorical(self.name, self.choices))
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1)
            )
        value = trial.suggest_float(self.name, self.low, self.high, step=self.step)
        if self.step is None:
            return value
        # Optuna's arithmetic leaves float noise (0.7000000000000001); report the grid value.
        steps = (_decimal(value) - _decimal(self.low)) / _decimal(self.step)
        return self._value_at(int(steps.to_integral_value()), self.step)

    def describe(self) -> dict[str, object]:
        """A JSON-ready description, to recognise the same space in a stored study."""
        if self.choices is not None:
            return {"choices": list(self.choices)}
        return {"low": self.low, "high": self.high, "step": self.step}

    def _steps(self, step: float) -> int:
        span = (_decimal(self.high) - _decimal(self.low)) / _decimal(step)
        return int(span.to_integral_value(rounding=ROUND_FLOOR))

    def _value_at(self, index: int, step: float) -> ParamValue:
        value = _decimal(self.low) + index * _decimal(step)
        return int(value) if self.integer else float(value)


def _decimal(value: float) -> Decimal:
    # Decimal(str(x)) keeps the number as written (0.1, not 0.1000000000000000055...).
    return Decimal(str(value))


def search_space(
    strategy: Strategy, param_ranges: Mapping[str, RangeSpec]
) -> tuple[Dimension, ...]:
    """Validate ``param_ranges`` against the strategy's parameters, in the order given.

    Raises:
        ConfigError: no ranges, an unknown parameter, an empty list, a value of the wrong
            type or outside the declared range, a numeric range on a bool or str parameter,
            a non-integer bound or step on an int parameter, low > high or step <= 0.
    """
    if not param_ranges:
        raise ConfigError("param_ranges is empty: give at least one parameter and its values")
    declared = {p.name: p for p in strategy.parameters}
    dimensions = []
    for name, spec in param_ranges.items():
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise ConfigError(
                f"strategy {strategy.name!r} has no parameter {name!r} (parameters: {known})"
            )
        dimensions.append(_dimension(declared[name], spec))
    return tuple(dimensions)


def _dimension(parameter: Parameter, spec: object) -> Dimension:
    name = parameter.name
    if isinstance(spec, Mapping | ParamRange):
        try:
            numeric = spec if isinstance(spec, ParamRange) else ParamRange.from_mapping(spec)
        except ConfigError as exc:
            raise ConfigError(f"range of {name!r}: {exc}") from exc
        return _numeric_dimension(parameter, numeric)
    if isinstance(spec, str | bytes) or not isinstance(spec, Sequence):
        raise ConfigError(
            f"range of {name!r} must be a list of values or a ParamRange "
            f"({{'low': ..., 'high': ..., 'step': ...}}), got {spec!r}"
        )
    if len(spec) == 0:
        raise ConfigError(f"range of {name!r} is empty")
    choices = tuple(dict.fromkeys(parameter.coerce(value) for value in spec))
    return Dimension(name, choices=choices)


def _numeric_dimension(parameter: Parameter, numeric: ParamRange) -> Dimension:
    name, kind = parameter.name, parameter.kind
    if kind not in (int, float):
        raise ConfigError(
            f"range of {name!r}: the parameter is {kind.__name__}, "
            "so give a list of choices, not low/high"
        )
    integer = kind is int
    if integer and numeric.step is not None and not float(numeric.step).is_integer():
        raise ConfigError(f"range of {name!r}: step={numeric.step!r} must be a whole number")
    low = float(parameter.coerce(numeric.low))
    high = float(parameter.coerce(numeric.high))
    step = int(numeric.step or 1) if integer else numeric.step
    dimension = Dimension(name, low=low, high=high, step=step, integer=integer)
    if step is not None:
        # The last reachable value, so Optuna does not warn and both methods agree.
        last = dimension._value_at(dimension._steps(step), step)
        dimension = Dimension(name, low=low, high=float(last), step=step, integer=integer)
    return dimension


def grid_axes(space: Sequence[Dimension]) -> dict[str, list[ParamValue]]:
    """Expand a space into the lists of values ``expand_grid`` takes."""
    return {dimension.name: dimension.values() for dimension in space}
