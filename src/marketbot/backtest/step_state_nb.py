"""The bar-step core's state: the settings, the position, the account, the orders, the risk.

Plain values that the steps of :mod:`marketbot.backtest.step_nb` take and return: a
:class:`Position` tuple per symbol (a :data:`POSITION_DTYPE` record in the portfolio), an
:class:`Account`, the :class:`Orders` pending at an open, the :class:`Book` an entry is sized
against, the circuit breaker's :class:`RiskState`, and one trade record dtype,
:data:`TRADE_DTYPE`. Only numpy and numba here.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple, get_type_hints

import numpy as np
from numba import njit

from marketbot.core.codes import FLAT

__all__ = [
    "POSITION_DTYPE",
    "TRADE_DTYPE",
    "Account",
    "Book",
    "KernelSettings",
    "Orders",
    "Position",
    "RiskState",
    "flat_position_nb",
    "limits_on_nb",
    "load_position_nb",
    "store_position_nb",
]

# One trade: bars index the loop's time axis; prices are fills (``exit_price`` of an
# ``end_of_data`` trade is the last close); ``symbol`` is the column in a portfolio (0 in a
# single-symbol run); ``tag`` is the entry signal's tag (-1: none).
TRADE_DTYPE: Final = np.dtype(
    [
        ("symbol", np.int64),
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("direction", np.int64),
        ("size", np.float64),
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("pnl", np.float64),
        ("pnl_pct", np.float64),
        ("fees", np.float64),
        ("exit_reason", np.int64),
        ("tag", np.int64),
    ]
)


class KernelSettings(NamedTuple):
    """Scalar settings of one simulation, as the loops take them (rates are fractions).

    Off rules and limits are ``NaN`` (``max_hold_ns`` 0). Build it with
    ``BacktestConfig.kernel_settings``. The risk limits are those of ``RiskLimits`` in quote
    currency; ``daily_reset_offset_ns`` is the daily reset's offset from UTC midnight.
    """

    initial_cash: float
    fee_rate: float
    slippage_rate: float
    stop_loss: float
    take_profit: float
    trailing_stop: float
    trailing_activation: float
    max_hold_ns: int
    sizing_mode: int
    sizing_value: float
    allow_short: bool
    max_position_size: float
    max_total_exposure: float
    max_positions: float
    max_daily_loss: float
    max_drawdown_pct: float
    daily_reset_offset_ns: int


class Position(NamedTuple):
    """The open position of one symbol, or none (``direction`` FLAT).

    Attributes:
        direction: LONG, SHORT or FLAT.
        units: Units of the asset held.
        entry_price: The entry fill (levels are relative to it).
        entry_fee: The fee paid on entry, in quote currency.
        entry_bar: The bar whose open filled the entry.
        entry_time_ns: That bar's open time (for max hold).
        tag: The entry signal's tag (-1: none).
        extreme: Highest high (long) or lowest low (short) at earlier closes; starts at the
            entry fill. The trailing stop's anchor.
        stop_level: The stop-loss price (NaN: off).
        target_level: The take-profit price (NaN: off).
        trail_level: The trailing stop's price from ``extreme`` (NaN: off or not armed yet),
            kept with the extreme so that the open and the intrabar check read one value.
    """

    direction: int
    units: float
    entry_price: float
    entry_fee: float
    entry_bar: int
    entry_time_ns: int
    tag: int
    extreme: float
    stop_level: float
    target_level: float
    trail_level: float


# The same fields as a record, for loops that keep one position per symbol in an array.
POSITION_DTYPE: Final = np.dtype(
    [
        (name, np.int64 if kind is int else np.float64)
        for name, kind in get_type_hints(Position).items()
    ]
)


class Account(NamedTuple):
    """Cash (quote currency), the fees paid so far and the trades recorded so far."""

    cash: float
    total_fees: float
    num_trades: int


class Orders(NamedTuple):
    """The market orders pending at a bar's open, from the previous bar's signals.

    Attributes:
        entry: LONG, SHORT or FLAT: the entry that survived the conflict rules.
        exit_long: A long position exits (a long exit signal, or a short entry).
        exit_short: A short position exits (a short exit signal, or a long entry).
    """

    entry: int
    exit_long: bool
    exit_short: bool


class Book(NamedTuple):
    """The account at an open, as an entry is sized against it.

    Attributes:
        equity: Cash plus the open positions at their marks.
        cash: Cash.
        gross_exposure: Notional of the open positions at their marks.
        open_positions: How many are open.
    """

    equity: float
    cash: float
    gross_exposure: float
    open_positions: int


class RiskState(NamedTuple):
    """The circuit breaker's bookkeeping between bars.

    Attributes:
        last_equity: The equity marked at the last close.
        peak_equity: Its high-water mark.
        day_start_equity: The equity at the start of the risk day.
        next_reset_ns: When the next risk day starts.
        daily_halt: The daily-loss breaker has tripped (clears at the next reset).
        drawdown_halt: The drawdown breaker has tripped (for good).
    """

    last_equity: float
    peak_equity: float
    day_start_equity: float
    next_reset_ns: int
    daily_halt: bool
    drawdown_halt: bool


# -- state -----------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def flat_position_nb() -> Position:
    """No position."""
    return Position(FLAT, 0.0, 0.0, 0.0, 0, 0, -1, 0.0, math.nan, math.nan, math.nan)


@njit(cache=True, inline="always")
def load_position_nb(positions: np.ndarray, index: int) -> Position:
    """The position stored in record ``index`` of a ``POSITION_DTYPE`` array."""
    record = positions[index]
    return Position(
        record["direction"],
        record["units"],
        record["entry_price"],
        record["entry_fee"],
        record["entry_bar"],
        record["entry_time_ns"],
        record["tag"],
        record["extreme"],
        record["stop_level"],
        record["target_level"],
        record["trail_level"],
    )


@njit(cache=True, inline="always")
def store_position_nb(positions: np.ndarray, index: int, position: Position) -> None:
    """Store ``position`` in record ``index`` of a ``POSITION_DTYPE`` array."""
    record = positions[index]
    record["direction"] = position.direction
    record["units"] = position.units
    record["entry_price"] = position.entry_price
    record["entry_fee"] = position.entry_fee
    record["entry_bar"] = position.entry_bar
    record["entry_time_ns"] = position.entry_time_ns
    record["tag"] = position.tag
    record["extreme"] = position.extreme
    record["stop_level"] = position.stop_level
    record["target_level"] = position.target_level
    record["trail_level"] = position.trail_level


@njit(cache=True, inline="always")
def limits_on_nb(settings: KernelSettings) -> bool:
    """Whether any risk limit is set (NaN: off); without one a loop skips their bookkeeping."""
    return not (
        math.isnan(settings.max_position_size)
        and math.isnan(settings.max_total_exposure)
        and math.isnan(settings.max_positions)
        and math.isnan(settings.max_daily_loss)
        and math.isnan(settings.max_drawdown_pct)
    )
