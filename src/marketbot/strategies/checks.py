"""Holding a strategy's output to the contract, and telling a user's error in one line.

A strategy's ``signals`` may return lists, pandas Series or numpy arrays of any sensible
dtype. :class:`OutputCheck` turns each output into the one numpy dtype the kernels take, or
raises a StrategyError that names the strategy, the output, the first bad bar and what was
expected. :func:`describe_exception` tells an exception raised by the user's code in one line
that points at the user's own file and line, not at the pandas internals it died in.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd

from marketbot.core.errors import StrategyError

FLAGS_EXPECTED: Final = "expected True/False or 0/1 numbers"
FRACTION_EXPECTED: Final = "expected a fraction of equity from 0 to 1, or NaN for the run's sizing"
RANK_EXPECTED: Final = "expected a finite number, or NaN for symbol order"
TAG_EXPECTED: Final = "expected a whole number indexing tag_names (-1 or NaN: no tag)"
_MESSAGE_LIMIT: Final = 300
_NUMBER_KINDS: Final = "biuf"  # bool, signed and unsigned integer, float
_PLAIN_NUMBERS: Final = (bool, int, float, np.bool_, np.number)
_LARGEST_TAG: Final = 2.0**62  # beyond this a float tag would not survive the int64 cast


def one_line(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """``text`` with line breaks and runs of blanks made single spaces, cut at ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def describe_value(value: object) -> str:
    """What a value is, for a message: ``None``, ``a tuple of 2 items``, ``an int (3)``..."""
    if value is None:
        return "None"
    kind = type(value).__name__
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple):
        return f"{article} {kind} of shape {shape}"
    if isinstance(value, bool | int | float | np.number):
        return f"{article} {kind} ({value!r})"
    if isinstance(value, tuple | list | dict | set | frozenset):
        count = len(value)
        return f"{article} {kind} of {count} item{'' if count == 1 else 's'}"
    return f"{article} {kind}"


def code_file(function: object) -> str | None:
    """The source file of a function or method, as its traceback frames name it."""
    code = getattr(function, "__code__", None)
    return getattr(code, "co_filename", None)


def describe_exception(exc: BaseException, user_file: str | None) -> str:
    """``ZeroDivisionError: division by zero (my_strat.py, line 12)``: one line for a crash.

    The location is the last traceback frame inside ``user_file`` (the strategy's own file),
    so a crash deep inside pandas still points at the user's line that led there. Without
    such a frame the location is left out rather than pointing into someone else's code.
    """
    message = one_line(str(exc))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    line = None
    if user_file is not None:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename == user_file:
                line = frame.lineno
    if line is None or user_file is None:
        return text
    return f"{text} ({Path(user_file).name}, line {line})"


def checked_warmup(label: str, value: object) -> int:
    """``warmup_bars``' answer as an int, or a StrategyError when it is not a count of bars.

    A whole float (``30.0``, from a float parameter) is forgiven; a fraction, a negative
    number, a bool or anything else is named.
    """
    count = -1
    if isinstance(value, bool | np.bool_):
        pass  # True is an int to Python, but not a number of bars
    elif isinstance(value, int | np.integer | float | np.floating) and float(value).is_integer():
        count = int(value)
    if count < 0:
        raise StrategyError(
            f"{label}: warmup_bars() returned {describe_value(value)}, "
            "expected a whole number of bars >= 0"
        )
    return count


@dataclass(frozen=True, slots=True)
class OutputCheck:
    """Checks one ``signals`` result of one strategy on one frame, output by output.

    Attributes:
        label: How messages name the strategy (``my_strat.py:MyStrategy``, ``sma_crossover``).
        index: The frame's index: one value per bar is expected, and bad bars are named by it.
        method: The method whose output this is, as messages name it.
        column: The symbol, when the output is one column of a panel hook's output.
    """

    label: str
    index: pd.Index
    method: str = "signals()"
    column: str = ""

    def flags(self, field: str, values: object) -> np.ndarray:
        """Entries or exits as a bool array: booleans, or numbers that are all 0 or 1."""
        array = self._array(field, values)
        if array.dtype.kind == "b":
            return array
        if array.dtype.kind in "iuf":
            bad = ~((array == 0) | (array == 1))
            if bad.any():
                raise self._error_at(field, array, bad, FLAGS_EXPECTED)
            return np.asarray(array != 0, dtype=np.bool_)
        raise self._dtype_error(field, array, FLAGS_EXPECTED)

    def fractions(self, field: str, values: object, entries: np.ndarray) -> np.ndarray:
        """``size_fraction`` as float64; where an entry fires it must be NaN or in [0, 1]."""
        array = self._numbers(field, values, FRACTION_EXPECTED)
        bad = entries & ~(np.isnan(array) | ((array >= 0.0) & (array <= 1.0)))
        if bad.any():
            raise self._error_at(field, array, bad, FRACTION_EXPECTED, where_entry=True)
        return array

    def ranks(self, field: str, values: object, entries: np.ndarray) -> np.ndarray:
        """``rank`` as float64; where an entry fires it must be finite or NaN."""
        array = self._numbers(field, values, RANK_EXPECTED)
        bad = entries & np.isinf(array)
        if bad.any():
            raise self._error_at(field, array, bad, RANK_EXPECTED, where_entry=True)
        return array

    def tags(self, field: str, values: object, entries: np.ndarray) -> np.ndarray:
        """``tag`` as int64 (NaN becomes -1, no tag); where an entry fires it must be whole."""
        array = self._array(field, values)
        if array.dtype.kind in "iu":
            return array.astype(np.int64, copy=False)
        array = self._numbers(field, array, TAG_EXPECTED)
        whole = (np.abs(array) < _LARGEST_TAG) & (array == np.round(array))
        bad = entries & ~np.isnan(array) & ~whole
        if bad.any():
            raise self._error_at(field, array, bad, TAG_EXPECTED, where_entry=True)
        # Where no entry fires the tag is never read: any value there means "no tag".
        return np.where(whole, array, -1.0).astype(np.int64)

    def _numbers(self, field: str, values: object, expected: str) -> np.ndarray:
        array = self._array(field, values)
        if array.dtype.kind not in _NUMBER_KINDS:
            raise self._dtype_error(field, array, expected)
        return np.asarray(array, dtype=np.float64)

    def _array(self, field: str, values: object) -> np.ndarray:
        length = len(self.index)
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as exc:
            raise StrategyError(
                f"{self.label}: {self.method} returned {field} as {describe_value(values)} that "
                f"numpy cannot read as an array ({one_line(str(exc), 120)})"
            ) from exc
        if array.ndim == 0:
            raise StrategyError(
                f"{self.label}: {self.method} returned {field} as {describe_value(values)}, "
                f"expected an array of {length} values (one per bar)"
            )
        if array.ndim != 1:
            raise StrategyError(
                f"{self.label}: {self.method} returned {field} of shape {array.shape}, "
                f"expected ({length},) (one value per bar)"
            )
        if len(array) != length:
            raise StrategyError(
                f"{self.label}: {self.method} returned {field} of length {len(array)}, "
                f"expected {length} (one per bar)"
            )
        return array

    def _dtype_error(self, field: str, array: np.ndarray, expected: str) -> StrategyError:
        if array.dtype.kind in "OUS":  # Python objects, text, bytes: name the first odd one
            odd = np.array([not isinstance(v, _PLAIN_NUMBERS) for v in array], dtype=np.bool_)
            if odd.any():
                return self._error_at(field, array, odd, expected)
        return StrategyError(
            f"{self.label}: {self.method} returned {field} of dtype {array.dtype}; {expected}"
        )

    def _error_at(
        self,
        field: str,
        array: np.ndarray,
        bad: np.ndarray,
        expected: str,
        *,
        where_entry: bool = False,
    ) -> StrategyError:
        bars = np.flatnonzero(bad)
        first = int(bars[0])
        value = array[first]
        if isinstance(value, np.generic):
            value = value.item()
        shown = f"{value:g}" if isinstance(value, float) else repr(value)
        place = self._bar(first) + (", where an entry fires" if where_entry else "")
        others = len(bars) - 1
        if others:
            such = " such" if where_entry else ""
            place += f", and at {others} more{such} bar{'s' if others > 1 else ''}"
        return StrategyError(
            f"{self.label}: {self.method} returned {field} holding {shown} at {place}; {expected}"
        )

    def _bar(self, position: int) -> str:
        when = self.index[position]
        shown = when.isoformat() if isinstance(when, pd.Timestamp) else str(when)
        of_column = f" of {self.column}" if self.column else ""
        return f"bar {position} ({shown}){of_column}"
