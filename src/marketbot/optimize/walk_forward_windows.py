"""Walk-forward windows: in-sample and out-of-sample row ranges cut on the bars' times.

In-sample (IS) bars ``[s, s + IS)`` choose the parameters, out-of-sample (OOS) bars
``[s + IS, s + IS + OOS)`` test them. Rolling windows step ``s`` by OOS; anchored windows keep
the IS start fixed and grow the IS by OOS each step. Only complete windows are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final, NamedTuple

import numpy as np
import pandas as pd

from marketbot.core.errors import ConfigError
from marketbot.core.timeframes import median_spacing_ns, timeframe_seconds

__all__ = ["WindowLength", "WindowPlan", "WindowScheme", "plan_windows"]

WindowLength = int | str | timedelta
"""A window length: a number of bars, or a duration (``'365d'``, ``'12h'``, a timedelta)."""

_LENGTH_HELP: Final = "a positive number of bars (int) or a duration such as '365d', '12h'"


class WindowScheme(NamedTuple):
    """How windows are laid: in-sample and out-of-sample lengths, rolling or anchored."""

    in_sample: WindowLength
    out_of_sample: WindowLength
    anchored: bool


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """One walk-forward step as half-open row ranges of the frame.

    In-sample rows are ``[in_sample_first, out_of_sample_first)``, out-of-sample rows
    ``[out_of_sample_first, out_of_sample_end)``: the IS always ends where the OOS begins.
    """

    number: int
    in_sample_first: int
    out_of_sample_first: int
    out_of_sample_end: int


def plan_windows(
    index: pd.DatetimeIndex,
    in_sample: WindowLength,
    out_of_sample: WindowLength,
    *,
    anchored: bool = False,
    first_row: int = 0,
) -> tuple[WindowPlan, ...]:
    """The walk-forward windows over ``index[first_row:]``, before any backtest runs.

    Bar counts step over rows; durations step over bar times (a window holds the bars whose
    open time falls inside it, and a window with no IS or no OOS bar, in a gap, is left out).

    Args:
        index: Bar open times, strictly increasing.
        in_sample: Length of each in-sample window (the first one, when anchored).
        out_of_sample: Length of each out-of-sample window, and the step.
        anchored: Keep the in-sample start at the first bar (the IS grows); else it rolls.
        first_row: Where the first in-sample window starts.

    Raises:
        ConfigError: a length is not positive or not understood, the two are of different
            kinds (bars and a duration), or not one complete window fits in the data.
    """
    is_length = _parse_length(in_sample, "in_sample")
    oos_length = _parse_length(out_of_sample, "out_of_sample")
    if isinstance(is_length, int) != isinstance(oos_length, int):
        raise ConfigError(
            f"in_sample={in_sample!r} and out_of_sample={out_of_sample!r}: give both as bar "
            "counts or both as durations"
        )
    times = index.as_unit("ns").asi8[first_row:]
    plans: list[tuple[int, int, int]] = []
    if isinstance(is_length, int):  # a bar count is a duration on rows, each lasting 1
        plans = _plan(np.arange(len(times)), is_length, int(oos_length), anchored, len(times))
    elif len(times) >= 2:  # the data lasts one (median) bar past its last open
        data_end = int(times[-1]) + round(median_spacing_ns(times))
        plans = _plan(times, int(is_length), int(oos_length), anchored, data_end)
    if not plans:
        span = f"{len(times)} bars" + (f", {index[first_row]} to {index[-1]}" if len(times) else "")
        raise ConfigError(
            f"in_sample={in_sample!r} plus out_of_sample={out_of_sample!r} is longer than the "
            f"data ({span}): not one complete window fits; shorten them or give more data"
        )
    return tuple(
        WindowPlan(number, first + first_row, oos_first + first_row, oos_end + first_row)
        for number, (first, oos_first, oos_end) in enumerate(plans, start=1)
    )


def _parse_length(value: object, name: str) -> int | np.int64:
    """A bar count as int, or a duration as int64 nanoseconds (``np.int64``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}={value!r}: use {_LENGTH_HELP}")
    if isinstance(value, int | np.integer):
        if value <= 0:
            raise ConfigError(f"{name}={value!r}: must be {_LENGTH_HELP}")
        return int(value)
    if isinstance(value, timedelta):
        nanoseconds = pd.Timedelta(value).value
    elif isinstance(value, str):
        try:
            nanoseconds = timeframe_seconds(value.strip().lower()) * 1_000_000_000
        except ConfigError:
            raise ConfigError(
                f"{name}={value!r}: not a duration; use {_LENGTH_HELP} (units s, m, h, d, w)"
            ) from None
    else:
        raise ConfigError(f"{name}={value!r}: use {_LENGTH_HELP}")
    if nanoseconds <= 0:
        raise ConfigError(f"{name}={value!r}: must be {_LENGTH_HELP}")
    return np.int64(nanoseconds)


def _plan(
    times: np.ndarray, is_length: int, oos_length: int, anchored: bool, data_end: int
) -> list[tuple[int, int, int]]:
    """(IS first row, OOS first row, OOS end row) of each window with bars on both sides."""
    plans: list[tuple[int, int, int]] = []
    if len(times) == 0:
        return plans
    origin = int(times[0])
    oos_start = origin + is_length
    while oos_start + oos_length <= data_end:
        is_start = origin if anchored else oos_start - is_length
        first, oos_first, oos_end = (
            int(row)
            for row in np.searchsorted(times, [is_start, oos_start, oos_start + oos_length])
        )
        if first < oos_first < oos_end:
            plans.append((first, oos_first, oos_end))
        oos_start += oos_length
    return plans
