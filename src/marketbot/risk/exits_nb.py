"""Exit rules as compiled functions: stop-loss, take-profit, trailing stop and max hold.

The backtest kernel calls these bar by bar and the live ``ExitManager`` calls the same
functions through a thin wrapper, so both decide identically. Levels are computed from the
entry fill price; a rule that is off is ``NaN`` (max hold: 0), and a NaN level never triggers.
"""

from __future__ import annotations

import math

from numba import njit

from marketbot.core.codes import (
    EXIT_NONE,
    EXIT_STOP_LOSS,
    EXIT_TAKE_PROFIT,
    EXIT_TRAILING_STOP,
    LONG,
)


@njit(cache=True, inline="always")
def stop_loss_level_nb(direction: int, entry_price: float, stop_loss: float) -> float:
    """Price at which the stop-loss triggers; NaN when the stop is off."""
    return entry_price * (1.0 - direction * stop_loss)


@njit(cache=True, inline="always")
def take_profit_level_nb(direction: int, entry_price: float, take_profit: float) -> float:
    """Price at which the take-profit triggers; NaN when it is off."""
    return entry_price * (1.0 + direction * take_profit)


@njit(cache=True, inline="always")
def trailing_level_nb(
    direction: int,
    entry_price: float,
    extreme_price: float,
    trailing_stop: float,
    trailing_activation: float,
) -> float:
    """Trailing-stop price from the best price since entry; NaN when off or not yet active.

    ``extreme_price`` is the highest high (long) or lowest low (short) seen at earlier closes.
    The stop arms once that extreme is ``trailing_activation`` beyond the entry price
    (``NaN`` or 0 activation: armed from the entry).
    """
    if math.isnan(trailing_stop):
        return math.nan
    if not math.isnan(trailing_activation) and trailing_activation > 0.0:
        armed_at = entry_price * (1.0 + direction * trailing_activation)
        if direction * (extreme_price - armed_at) < 0.0:
            return math.nan
    return extreme_price * (1.0 - direction * trailing_stop)


@njit(cache=True, inline="always")
def gap_exit_reason_nb(
    direction: int,
    open_price: float,
    stop_level: float,
    target_level: float,
    trail_level: float,
) -> int:
    """The exit an open price has gapped through, checked stop, trailing stop, target; or none.

    The same order as within the bar (:func:`intrabar_exit_nb`); the fill is the open
    whichever it is. (An open past both the target and the trailing level cannot happen: the
    high that lifted the trailing level above the target would have taken the target.) NaN
    levels never trigger (every comparison with NaN is false).
    """
    if direction * (open_price - stop_level) <= 0.0:
        return EXIT_STOP_LOSS
    if direction * (open_price - trail_level) <= 0.0:
        return EXIT_TRAILING_STOP
    if direction * (open_price - target_level) >= 0.0:
        return EXIT_TAKE_PROFIT
    return EXIT_NONE


@njit(cache=True, inline="always")
def intrabar_exit_nb(
    direction: int,
    open_price: float,
    high: float,
    low: float,
    stop_level: float,
    target_level: float,
    trail_level: float,
) -> tuple[int, float]:
    """The exit touched inside a bar and its price level (before slippage); or none.

    Checked stop-loss, then trailing stop, then take-profit: a bar's high and low do not say
    which was touched first, so when a stop and the target both trigger in one bar the stop
    is taken (the conservative assumption, as backtesting.py makes). A level on the wrong
    side of the open (possible on the entry bar) fills at the open, like a gap.
    """
    adverse = low if direction == LONG else high
    favourable = high if direction == LONG else low
    if direction * (adverse - stop_level) <= 0.0:
        return EXIT_STOP_LOSS, _worse_of_nb(direction, stop_level, open_price)
    if direction * (adverse - trail_level) <= 0.0:
        return EXIT_TRAILING_STOP, _worse_of_nb(direction, trail_level, open_price)
    if direction * (favourable - target_level) >= 0.0:
        return EXIT_TAKE_PROFIT, _better_of_nb(direction, target_level, open_price)
    return EXIT_NONE, math.nan


@njit(cache=True, inline="always")
def _worse_of_nb(direction: int, level: float, open_price: float) -> float:
    return min(level, open_price) if direction == LONG else max(level, open_price)


@njit(cache=True, inline="always")
def _better_of_nb(direction: int, level: float, open_price: float) -> float:
    return max(level, open_price) if direction == LONG else min(level, open_price)


@njit(cache=True, inline="always")
def max_hold_reached_nb(entry_time_ns: int, now_ns: int, max_hold_ns: int) -> bool:
    """Whether a position opened at ``entry_time_ns`` has been held ``max_hold_ns`` (0: off)."""
    return max_hold_ns > 0 and now_ns - entry_time_ns >= max_hold_ns
