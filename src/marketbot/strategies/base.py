"""The strategy contract: vectorised signals, optional parameters and warm-up.

A strategy is a small class with one required method, :meth:`Strategy.signals`, that turns a
whole OHLCV frame into entry and exit arrays. It may declare parameters (with defaults and
ranges, validated before anything runs) and how many bars its signals need before they mean
anything. The value at bar ``t`` of every array may depend only on bars ``0..t``: the engine
fills it at the next open, and ``marketbot lookahead`` checks that it does not peek.
:meth:`Strategy.compute_signals` is how the rest of marketbot calls a strategy: it holds the
output to the contract and turns any failure into one StrategyError line.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError, StrategyError
from marketbot.strategies.checks import (
    OutputCheck,
    checked_warmup,
    code_file,
    describe_exception,
    describe_value,
)

if TYPE_CHECKING:
    from marketbot.core.bar_panel import PanelBars
    from marketbot.strategies.panel import PanelSignals

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

    A strategy may give numpy arrays, pandas Series or lists; :meth:`Strategy.compute_signals`
    turns them into numpy arrays of the dtypes below. ``size_fraction``, ``tag`` and
    ``rank`` are read only on bars where an entry fires, so only there must they be valid.

    Attributes:
        entries_long: True where a long position should be opened at the next open (bools,
            or numbers that are all 0 or 1).
        exits_long: True where a long position should be closed at the next open.
        entries_short: Short entries, or None for a long-only strategy.
        exits_short: Short exits, or None.
        size_fraction: Fraction of equity to commit per entry, from 0 to 1 (NaN: the run's
            sizing), or None.
        tag: Integer index into ``tag_names`` per bar (-1 or NaN: no tag), or None.
        tag_names: Labels of the tags, reported with each trade's entry.
        rank: Per-bar preference for a portfolio run, higher first, when more symbols
            signal than there are free slots; finite (NaN or None: symbol order).
    """

    entries_long: np.ndarray
    exits_long: np.ndarray
    entries_short: np.ndarray | None = None
    exits_short: np.ndarray | None = None
    size_fraction: np.ndarray | None = None
    tag: np.ndarray | None = None
    tag_names: tuple[str, ...] = field(default_factory=tuple)
    rank: np.ndarray | None = None


GridIndicator = Callable[[pd.DataFrame, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GridSignals:
    """How the optimiser's fast grid computes many combinations' long signals at once.

    Each combination reads a few indicator *slots* (a moving average of some window, the
    close...) and a few numbers (thresholds). The grid computes each slot's indicator once
    per distinct parameter value over the whole frame, then calls ``kernel`` per
    combination, in its compiled loop, to fill that combination's entries and exits.

    Attributes:
        kernel: The compiled signal function, a numba ``cfunc`` of
            ``indicators_nb.GRID_SIGNALS_SIGNATURE`` (make one with
            ``indicators.grid_kernel``); it must give, row by row, exactly the
            ``entries_long`` and ``exits_long`` of :meth:`Strategy.signals`.
        indicators: Per slot, ``indicator(frame, keys) -> (len(keys), len(frame))`` float64
            rows, row ``i`` computed with parameter value ``keys[i]`` on the whole frame.
            Slots given the same function share its rows.
        keys: int64, (combinations x slots): the parameter value of each slot's indicator
            (-1: the combination does not read the slot).
        values: float64, (combinations x numbers): each combination's numbers, as the
            kernel reads them.
    """

    kernel: Any
    indicators: tuple[GridIndicator, ...]
    keys: np.ndarray
    values: np.ndarray


class Strategy(ABC):
    """Base class of every strategy, built-in or the user's own.

    Only :meth:`signals` is required. Optional: the class attributes below,
    :meth:`warmup_bars` (default 0) and :meth:`check_params` for constraints between
    parameters (for example ``fast < slow``).

    Attributes:
        name: Name in reports (default: the class name).
        description: One line for ``marketbot strategies``.
        parameters: The tunable parameters, with defaults and ranges (default: none).
        allows_short: Whether the strategy can give short signals.
        loaded_from: ``file.py:Class`` when the loader imported the class from a file; set
            by the loader, not by the strategy.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Parameter, ...]] = ()
    allows_short: ClassVar[bool] = False
    loaded_from: ClassVar[str] = ""

    @abstractmethod
    def signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Compute entry and exit signals for every bar of ``frame`` at once.

        Args:
            frame: Validated OHLCV bars (columns open, high, low, close, volume; UTC index).
            params: Validated parameters, every declared one present.
        """

    def warmup_bars(self, params: Mapping[str, Any]) -> int:
        """How many leading bars the signals need before they mean anything; default 0.

        Signals on those bars are dropped, and the lookahead check starts after them. The
        default suits most strategies: a comparison with a rolling window's leading NaNs is
        False, so no early signal fires anyway.
        """
        return 0

    def check_params(self, params: Mapping[str, Any]) -> None:  # noqa: B027 - optional hook
        """Raise ConfigError when a combination of parameters is invalid; default: none is."""

    @property
    def label(self) -> str:
        """How messages name the strategy: ``file.py:Class`` for a user's file, else its name."""
        return self.loaded_from or self.name or type(self).__name__

    def defaults(self) -> dict[str, ParamValue]:
        """Every declared parameter at its default."""
        return {p.name: p.default for p in self.parameters}

    def resolve_params(self, overrides: Mapping[str, object] | None = None) -> dict[str, Any]:
        """Merge ``overrides`` into the defaults and validate the result.

        Raises:
            ConfigError: an unknown parameter, a value of the wrong type or out of range, or a
                combination :meth:`check_params` rejects.
            StrategyError: :meth:`check_params` crashed.
        """
        declared = {p.name: p for p in self.parameters}
        params: dict[str, Any] = self.defaults()
        for key, value in (overrides or {}).items():
            if key not in declared:
                known = ", ".join(declared) or "none"
                raise ConfigError(
                    f"strategy {self.label!r} has no parameter {key!r} (parameters: {known})"
                )
            params[key] = declared[key].coerce(value)
        try:
            self.check_params(params)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("check_params", exc) from exc
        return params

    def compute_signals(self, frame: pd.DataFrame, params: Mapping[str, Any]) -> Signals:
        """Call :meth:`signals` and hold its output to the contract.

        Returns:
            The signals with every output a numpy array of one value per bar: entries and
            exits bool, ``size_fraction`` and ``rank`` float64, ``tag`` int64 (-1: none).

        Raises:
            StrategyError: :meth:`signals` crashed (naming the exception and the line of the
                strategy's file), or returned something the contract does not allow.
            ConfigError: raised by :meth:`signals` itself, passed on unchanged.
        """
        try:
            result = self.signals(frame, params)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("signals", exc) from exc
        return _checked_signals(self.label, result, frame.index)

    def compute_warmup(self, params: Mapping[str, Any]) -> int:
        """Call :meth:`warmup_bars` and check that it answers a whole number of bars >= 0.

        Raises:
            StrategyError: :meth:`warmup_bars` crashed or answered something else.
        """
        try:
            value = self.warmup_bars(params)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("warmup_bars", exc) from exc
        return checked_warmup(self.label, value)

    def panel_signals(self, bars: PanelBars, params: Mapping[str, Any]) -> PanelSignals | None:
        """Optional: the signals of every symbol of a portfolio run at once; default None.

        ``bars.close`` (and ``open``, ``high``, ``low``, ``volume``) is a (bars x symbols)
        grid whose column ``s`` is symbol ``s``'s own bars from row 0, NaN below a shorter
        symbol's last bar (``bars.valid`` is False there). Return a ``PanelSignals`` of that
        shape whose column ``s`` is exactly what :meth:`signals` gives for symbol ``s``, or
        None to have :meth:`signals` called per symbol. It is used only when the class that
        defines it also defines :meth:`signals`: a subclass that overrides ``signals`` alone
        is never given its parent's panel signals.
        """
        return None

    def compute_panel_signals(
        self, bars: PanelBars, params: Mapping[str, Any]
    ) -> PanelSignals | None:
        """Call :meth:`panel_signals` where it applies and hold its output to the contract.

        Returns:
            None when the strategy has no panel hook for its own :meth:`signals` (or the hook
            returns None): compute the signals per symbol then. Otherwise the output, checked
            and converted as :meth:`compute_signals` checks and converts each symbol's.

        Raises:
            StrategyError: the hook crashed (naming the line of the strategy's file) or broke
                the contract (naming the output, the symbol and the bar).
            ConfigError: raised by the hook itself, passed on unchanged.
        """
        if not _panel_hook_matches_signals(type(self)):
            return None
        try:
            result = self.panel_signals(bars, params)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("panel_signals", exc) from exc
        if result is None:
            return None
        from marketbot.strategies.panel import checked_panel_signals

        return checked_panel_signals(self.label, result, bars)

    def grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals | None:
        """Optional: how the optimiser's fast grid computes these combinations; default None.

        ``combinations`` are validated parameter sets. Return a :class:`GridSignals` whose
        kernel gives, for each, the ``entries_long`` and ``exits_long`` of :meth:`signals`
        bit for bit, or None when :meth:`signals` would give more than that for some of them
        (short signals, sizes, tags, ranks) or when the hook cannot express them: the
        optimiser then backtests one by one. Used only when the class that defines it also
        defines :meth:`signals`, as :meth:`panel_signals`.
        """
        return None

    def compute_grid_signals(self, combinations: Sequence[Mapping[str, Any]]) -> GridSignals | None:
        """Call :meth:`grid_signals` where it applies (None: no grid hook for these).

        Raises:
            StrategyError: the hook crashed (naming the line of the strategy's file).
            ConfigError: raised by the hook itself, passed on unchanged.
        """
        if not _panel_hook_matches_signals(type(self), "grid_signals"):
            return None
        try:
            return self.grid_signals(combinations)
        except ConfigError:
            raise
        except Exception as exc:
            raise self._crashed("grid_signals", exc) from exc

    def _crashed(self, method: str, exc: Exception) -> StrategyError:
        where = code_file(getattr(type(self), method, None))
        return StrategyError(f"{self.label}: {method}() raised {describe_exception(exc, where)}")


def _panel_hook_matches_signals(cls: type[Strategy], hook: str = "panel_signals") -> bool:
    """Whether the class that gives ``cls`` its ``signals`` also gives it ``hook``."""

    def owner(method: str) -> type:
        return next(klass for klass in cls.__mro__ if method in vars(klass))

    return owner(hook) is owner("signals")


def _checked_signals(
    label: str, result: object, index: pd.Index, *, method: str = "signals()", column: str = ""
) -> Signals:
    """``result`` held to the contract; messages name ``method`` and, if given, the symbol."""
    if not isinstance(result, Signals):
        hint = " (is `return Signals(...)` missing?)" if result is None else ""
        raise StrategyError(
            f"{label}: {method} returned {describe_value(result)}{hint}, expected "
            "Signals(entries_long, exits_long, ...)"
        )
    check = OutputCheck(label, index, method, column)
    entries_long = check.flags("entries_long", result.entries_long)
    exits_long = check.flags("exits_long", result.exits_long)
    entries_short = _optional(check.flags, "entries_short", result.entries_short)
    exits_short = _optional(check.flags, "exits_short", result.exits_short)
    # size, rank and tag are read only where an entry fires; elsewhere anything goes.
    entries = entries_long if entries_short is None else entries_long | entries_short
    size_fraction = rank = tag = None
    if result.size_fraction is not None:
        size_fraction = check.fractions("size_fraction", result.size_fraction, entries)
    if result.rank is not None:
        rank = check.ranks("rank", result.rank, entries)
    if result.tag is not None:
        tag = check.tags("tag", result.tag, entries)
    return Signals(
        entries_long=entries_long,
        exits_long=exits_long,
        entries_short=entries_short,
        exits_short=exits_short,
        size_fraction=size_fraction,
        tag=tag,
        tag_names=_tag_names(label, result.tag_names, method),
        rank=rank,
    )


def _optional(
    convert: Callable[[str, object], np.ndarray], field: str, values: object
) -> np.ndarray | None:
    return None if values is None else convert(field, values)


def _tag_names(label: str, names: object, method: str) -> tuple[str, ...]:
    # A bare string would otherwise become one tag per character.
    if isinstance(names, str) or not isinstance(names, tuple | list):
        raise StrategyError(
            f"{label}: {method} returned tag_names as {describe_value(names)}, "
            "expected a tuple of names"
        )
    return tuple(str(name) for name in names)
