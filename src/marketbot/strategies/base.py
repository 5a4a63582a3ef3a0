"""The strategy contract: declared parameters, a warm-up length and vectorised signals.

A strategy is a small class. It declares its parameters (with defaults and ranges, validated
before anything runs), how many bars it needs before its signals mean anything, and one
method, :meth:`Strategy.signals`, that turns a whole OHLCV frame into entry and exit arrays.
The value at bar ``t`` of every array may depend only on bars ``0..t``: the engine fills it
at the next open, and ``marketbot lookahead`` checks that it does not peek.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError, StrategyError

ParamValue = int | float | bool | str


@dataclass(frozen=True, slots=True)
class Parameter:
    """One tunable parameter of a strategy.

    Attributes:
        name: Keyword used in ``params`` and on the command line (``--param name=value``).
        default: Value used when none is given; its type is the parameter's type.
        low: Smallest allowed value (numbers only), or None for no bound.
        high: Largest allowed value (numbers only), or None for no bound.
        choices: The allowed values, for categorical parameters.
        description: One line for ``marketbot strategies``.
    """

    name: str
    default: ParamValue
    low: float | None = None
    high: float | None = None
    choices: tuple[ParamValue, ...] | None = None
    description: str = ""

    @property
    def kind(self) -> type:
        """The Python type of the parameter's values."""
        return type(self.default)

    def coerce(self, value: object) -> ParamValue:
        """Convert ``value`` (a number or CLI text) to this parameter's type and check range.

        Raises:
            ConfigError: the value has the wrong type or lies outside the declared range.
        """
        converted = self._convert(value)
        if self.choices is not None and converted not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise ConfigError(f"parameter {self.name}={value!r}: must be one of {allowed}")
        if isinstance(converted, int | float) and not isinstance(converted, bool):
            if not math.isfinite(converted):
                raise ConfigError(f"parameter {self.name}={value!r}: must be a finite number")
            if self.low is not None and converted < self.low:
                raise ConfigError(f"parameter {self.name}={value!r}: must be >= {self.low:g}")
            if self.high is not None and converted > self.high:
                raise ConfigError(f"parameter {self.name}={value!r}: must be <= {self.high:g}")
        return converted

    def _convert(self, value: object) -> ParamValue:
        converter = _CONVERTERS.get(self.kind, _to_str)
        converted = converter(value)
        if converted is None:
            raise ConfigError(f"parameter {self.name}={value!r}: expected {self.kind.__name__}")
        return converted


_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
_FALSE_WORDS = frozenset({"false", "0", "no", "off"})


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    return None


def _to_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _to_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | np.integer | np.floating):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _to_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


_CONVERTERS: dict[type, Callable[[object], ParamValue | None]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


@dataclass(frozen=True)
class Signals:
    """A strategy's per-bar output; every array has one value per bar of the frame.

    Attributes:
        entries_long: True where a long position should be opened at the next open.
        exits_long: True where a long position should be closed at the next open.
        entries_short: Short entries, or None for a long-only strategy.
        exits_short: Short exits, or None.
        size_fraction: Fraction of equity to commit per entry (NaN: the run's sizing), or None.
        tag: Integer index into ``tag_names`` per bar (-1: no tag), or None.
        tag_names: Labels of the tags, reported with each trade's entry.
        rank: Per-bar preference for a portfolio run, higher first, when more symbols
            signal than there are free slots (NaN or None: symbol order).
    """

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray | None = None
    exits_short: np.ndarray | None = None
    size_fraction: np.ndarray | None = None
    tag: np.ndarray | None = None
    tag_names: tuple[str, ...] = field(default_factory=tuple)
    rank: np.ndarray | None = None


class Strategy(ABC):
    """Base class of every strategy, built-in or the user's own.

    Subclasses set ``name``, ``description`` and ``parameters``, and implement
    :meth:`signals` and :meth:`warmup_bars`. Override :meth:`check_params` for constraints
    between parameters (for example ``fast < slow``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    allows_short: ClassVar[bool] = False

    @abstractmethod
    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Compute entry and exit signals for every bar of ``frame`` at once.

        Args:
            frame: Validated OHLCV bars (columns open, high, low, close, volume; UTC index).
            params: Validated parameters, every declared one present.
        """

    @abstractmethod
    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """How many leading bars the signals need before they mean anything."""

    def check_params(self, params: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Raise ConfigError when a combination of parameters is invalid; default: none is."""

    def defaults(self) -> dict[str, ParamValue]:
        """Every declared parameter at its default."""
        return {p.name: p.default for p in self.parameters}

    def resolve_params(self, overrides: Mapping[str, object] | None = None) -> dict[str, Any]:
        """Merge ``overrides`` into the defaults and validate the result.

        Raises:
            ConfigError: an unknown parameter, a value of the wrong type or out of range, or a
                combination :meth:`check_params` rejects.
        """
        declared = {p.name: p for p in self.parameters}
        params: dict[str, Any] = self.defaults()
        for key, value in (overrides or {}).items():
            if key not in declared:
                known = ", ".join(declared) or "none"
                raise ConfigError(
                    f"strategy {self.name!r} has no parameter {key!r} (parameters: {known})"
                )
            params[key] = declared[key].coerce(value)
        self.check_params(params)
        return params

    def compute_signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Call :meth:`signals` and check its output, wrapping a crash in StrategyError."""
        try:
            result = self.signals(frame, params)
        except ConfigError:
            raise
        except Exception as exc:
            raise StrategyError(
                f"strategy {self.name!r} failed computing signals: {type(exc).__name__}: {exc}"
            ) from exc
        _check_signals(self.name, result, len(frame))
        return result


def _check_signals(name: str, signals: Signals, length: int) -> None:
    arrays = {
        "entries_long": signals.entries_long,
        "exits_long": signals.exits_long,
        "entries_short": signals.entries_short,
        "exits_short": signals.exits_short,
        "size_fraction": signals.size_fraction,
        "tag": signals.tag,
        "rank": signals.rank,
    }
    for label, array in arrays.items():
        if array is None:
            continue
        if np.ndim(array) != 1 or len(array) != length:
            raise StrategyError(
                f"strategy {name!r}: {label} has shape {np.shape(array)}, expected ({length},)"
            )
