"""One bar step for every loop: the single kernel, the portfolio kernel, the fast grid, the bot.

The loops keep only their skeletons (which bars, which symbols, which slots, which
shortcuts); every decision and every fill of a bar is one of the functions below, compiled
into the caller (``inline="always"``), so a rule changed here changes every loop, and a bug
put into one shows in all of them. The small rules they are made of (fills and fees, exit
levels, sizing, risk limits) are the shared ``*_nb`` functions of ``core.costs_nb``,
``risk.exits_nb``, ``risk.sizing_nb`` and ``risk.limits_nb``.

A bar, in the order of docs/backtesting.md, for one symbol:

1. :func:`bar_orders_nb`: the orders pending from the previous bar's signals, conflicts
   resolved; :func:`open_exit_reason_nb`: the exit due at the open (a stop, trailing stop or
   target the open gapped through, then max hold, then the signal exit);
   :func:`exit_position_nb` fills it; :func:`entry_direction_nb`, :func:`size_entry_nb` (fill,
   sizing, caps and risk checks) and :func:`enter_position_nb` take the pending entry;
2. :func:`intrabar_step_nb`: stop-loss, then trailing stop, then take-profit at their levels;
3. :func:`close_step_nb`: the trailing extreme raised after the check, the position's value
   at the close; :func:`risk_close_nb`: the circuit breaker's checks on the marked equity;
4. after the last bar, :func:`end_of_data_nb`.

State is plain values: the open position is a :class:`Position` tuple (``FLAT`` direction
when there is none), cash, fees and the trade count an :class:`Account`, the risk
bookkeeping a :class:`RiskState`; each step returns the new values. Trades are records of
one dtype, :data:`TRADE_DTYPE`, written by one writer, :func:`write_trade_nb`, and read by
field name everywhere. The portfolio keeps one :data:`POSITION_DTYPE` record per symbol
(:func:`load_position_nb` / :func:`store_position_nb`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from marketbot.backtest.step_state_nb import (
    POSITION_DTYPE,
    TRADE_DTYPE,
    Account,
    Book,
    KernelSettings,
    Orders,
    Position,
    RiskState,
    flat_position_nb,
    limits_on_nb,
    load_position_nb,
    store_position_nb,
)
from marketbot.core.codes import (
    EXIT_END_OF_DATA,
    EXIT_MAX_HOLD,
    EXIT_NONE,
    EXIT_SIGNAL,
    FLAT,
    LONG,
    SHORT,
)
from marketbot.core.costs_nb import fee_nb, fill_price_nb
from marketbot.risk.exits_nb import (
    gap_exit_reason_nb,
    intrabar_exit_nb,
    max_hold_reached_nb,
    stop_loss_level_nb,
    take_profit_level_nb,
    trailing_level_nb,
)
from marketbot.risk.limits_nb import (
    DENIED_DAILY_LOSS,
    DENIED_DRAWDOWN,
    ENTRY_ALLOWED,
    cap_entry_notional_nb,
    check_entry_nb,
    close_breaches_nb,
    next_daily_reset_ns_nb,
)
from marketbot.risk.sizing_nb import position_units_nb

__all__ = [
    "POSITION_DTYPE",
    "TRADE_DTYPE",
    "Account",
    "Book",
    "KernelSettings",
    "Orders",
    "Position",
    "RiskState",
    "bar_orders_nb",
    "close_step_nb",
    "end_of_data_nb",
    "enter_position_nb",
    "entry_direction_nb",
    "exit_position_nb",
    "flat_position_nb",
    "intrabar_step_nb",
    "limits_on_nb",
    "load_position_nb",
    "open_exit_reason_nb",
    "risk_close_nb",
    "risk_open_nb",
    "risk_start_nb",
    "size_entry_nb",
    "store_position_nb",
    "write_trade_nb",
]


# -- (1) at the open -------------------------------------------------------------------------


@njit(cache=True, inline="always")
def bar_orders_nb(
    entry_long: bool, exit_long: bool, entry_short: bool, exit_short: bool, allow_short: bool
) -> Orders:
    """Resolve one bar's signals into orders (docs/backtesting.md, "Conflicts").

    Short entries count only when shorts are allowed. A long entry together with a long exit
    or a short entry is dropped, likewise a short entry with a short exit or a long entry;
    the exits stand, and an entry that survives also closes the opposite position.
    """
    wants_short = allow_short and entry_short
    enter_long = entry_long and not (exit_long or wants_short)
    enter_short = wants_short and not (exit_short or entry_long)
    entry = LONG if enter_long else (SHORT if enter_short else FLAT)
    return Orders(entry, exit_long or enter_short, exit_short or enter_long)


@njit(cache=True, inline="always")
def open_exit_reason_nb(
    position: Position,
    bar_open: float,
    now_ns: int,
    orders: Orders,
    settings: KernelSettings,
) -> int:
    """The exit due at this open for a held position, or ``EXIT_NONE``.

    First an exit the open has gapped through (stop-loss, trailing stop, take-profit), then
    max hold (``now_ns`` is this bar's open time), then the pending signal exit; they all
    fill at the open.
    """
    direction = position.direction
    reason = gap_exit_reason_nb(
        direction, bar_open, position.stop_level, position.target_level, position.trail_level
    )
    if reason == EXIT_NONE and max_hold_reached_nb(
        position.entry_time_ns, now_ns, settings.max_hold_ns
    ):
        reason = EXIT_MAX_HOLD
    if reason == EXIT_NONE and (
        (direction == LONG and orders.exit_long) or (direction == SHORT and orders.exit_short)
    ):
        reason = EXIT_SIGNAL
    return reason


@njit(cache=True, inline="always")
def entry_direction_nb(orders: Orders, position_at_signal: int) -> int:
    """The entry to take, judged against the position held when the signal was computed.

    A long entry while long at the signal is ignored (no pyramiding), even when that long
    has just been closed at this open; likewise for shorts.
    """
    if orders.entry not in (FLAT, position_at_signal):
        return orders.entry
    return FLAT


@njit(cache=True, inline="always")
def size_entry_nb(
    direction: int,
    bar_open: float,
    size_fraction: float,
    book: Book,
    risk: RiskState,
    exposure_fraction: float,
    limits_on: bool,
    settings: KernelSettings,
) -> tuple[float, float, int]:
    """The entry fill, the units of a new position and the risk verdict (0: allowed).

    The fill is the open plus slippage against the side. The units are sized on the book's
    equity (``risk.sizing_nb``); a long never spends more than the cash there is. The
    notional is then shrunk to the position-size and exposure limits and to
    ``exposure_fraction`` of the equity (NaN: no cap) less the exposure already open, and
    checked against the risk limits (only when ``limits_on``). Units are 0 when nothing fits.
    """
    fee_rate = settings.fee_rate
    entry_fill = fill_price_nb(bar_open, direction, settings.slippage_rate)
    units = position_units_nb(
        book.equity,
        entry_fill,
        fee_rate,
        settings.sizing_mode,
        settings.sizing_value,
        size_fraction,
    )
    if direction == LONG:
        # Shared cash: a long never spends more than the cash there is.
        units = min(units, max(book.cash, 0.0) / (entry_fill * (1.0 + fee_rate)))
    verdict = ENTRY_ALLOWED
    notional = units * entry_fill
    if limits_on:
        notional = cap_entry_notional_nb(
            notional, book.gross_exposure, settings.max_position_size, settings.max_total_exposure
        )
    if not math.isnan(exposure_fraction):
        room = exposure_fraction * book.equity - book.gross_exposure
        notional = min(notional, max(room, 0.0))
    if limits_on:
        verdict = check_entry_nb(
            notional,
            book.gross_exposure,
            risk.last_equity - risk.day_start_equity,
            book.open_positions,
            risk.last_equity,
            risk.peak_equity,
            risk.daily_halt or risk.drawdown_halt,
            settings.max_position_size,
            settings.max_daily_loss,
            settings.max_total_exposure,
            settings.max_drawdown_pct,
            settings.max_positions,
        )
    if notional < units * entry_fill:
        units = notional / entry_fill
    return entry_fill, units, verdict


@njit(cache=True, inline="always")
def enter_position_nb(
    account: Account,
    direction: int,
    entry_fill: float,
    units: float,
    bar: int,
    now_ns: int,
    tag: int,
    settings: KernelSettings,
) -> tuple[Account, Position]:
    """Open a position of ``units`` at ``entry_fill``: pay the fee, set its exit levels."""
    entry_fee = fee_nb(units, entry_fill, settings.fee_rate)
    cash = account.cash + (-direction * units * entry_fill - entry_fee)
    position = Position(
        direction,
        units,
        entry_fill,
        entry_fee,
        bar,
        now_ns,
        tag,
        entry_fill,
        stop_loss_level_nb(direction, entry_fill, settings.stop_loss),
        take_profit_level_nb(direction, entry_fill, settings.take_profit),
        trailing_level_nb(
            direction,
            entry_fill,
            entry_fill,
            settings.trailing_stop,
            settings.trailing_activation,
        ),
    )
    return Account(cash, account.total_fees + entry_fee, account.num_trades), position


@njit(cache=True, inline="always")
def exit_position_nb(
    account: Account,
    position: Position,
    price: float,
    bar: int,
    reason: int,
    symbol: int,
    trades: np.ndarray,
    settings: KernelSettings,
) -> tuple[Account, Position]:
    """Close ``position`` at ``price`` (the open or a level); returns the account, flat.

    The exit fills at ``price`` with slippage against the seller (long) or buyer (short),
    pays the fee on its notional, and the trade is recorded.
    """
    direction = position.direction
    exit_fill = fill_price_nb(price, -direction, settings.slippage_rate)
    exit_fee = fee_nb(position.units, exit_fill, settings.fee_rate)
    write_trade_nb(trades, account.num_trades, symbol, position, bar, exit_fill, exit_fee, reason)
    cash = account.cash + (direction * position.units * exit_fill - exit_fee)
    account = Account(cash, account.total_fees + exit_fee, account.num_trades + 1)
    return account, flat_position_nb()


# -- (2) intrabar ----------------------------------------------------------------------------


@njit(cache=True, inline="always")
def intrabar_step_nb(
    account: Account,
    position: Position,
    bar_open: float,
    high: float,
    low: float,
    bar: int,
    symbol: int,
    trades: np.ndarray,
    settings: KernelSettings,
) -> tuple[Account, Position]:
    """The intrabar exit of a held position: stop-loss, trailing stop, take-profit, at level.

    The trailing level is that of the extreme at earlier closes (this bar's high or low
    moves it only at the close). Returns the position unchanged when nothing triggers.
    """
    reason, level = intrabar_exit_nb(
        position.direction,
        bar_open,
        high,
        low,
        position.stop_level,
        position.target_level,
        position.trail_level,
    )
    if reason != EXIT_NONE:
        return exit_position_nb(
            account,
            position,
            level,
            bar,
            reason,
            symbol,
            trades,
            settings,
        )
    return account, position


# -- (3) at the close ------------------------------------------------------------------------


@njit(cache=True, inline="always")
def close_step_nb(
    position: Position, high: float, low: float, close: float, settings: KernelSettings
) -> tuple[Position, float]:
    """Raise the trailing extreme with this bar (after the check); the position's value.

    The trailing level follows the new extreme (it is checked from the next bar on). The
    value is ``direction x units x close``, the position's contribution to the equity.
    """
    direction = position.direction
    if direction == LONG:
        position = _with_extreme_nb(position, max(position.extreme, high), settings)
    elif direction == SHORT:
        position = _with_extreme_nb(position, min(position.extreme, low), settings)
    return position, direction * position.units * close


@njit(cache=True, inline="always")
def _with_extreme_nb(position: Position, extreme: float, settings: KernelSettings) -> Position:
    return Position(
        position.direction,
        position.units,
        position.entry_price,
        position.entry_fee,
        position.entry_bar,
        position.entry_time_ns,
        position.tag,
        extreme,
        position.stop_level,
        position.target_level,
        trailing_level_nb(
            position.direction,
            position.entry_price,
            extreme,
            settings.trailing_stop,
            settings.trailing_activation,
        ),
    )


@njit(cache=True, inline="always")
def risk_start_nb(settings: KernelSettings, first_time_ns: int) -> RiskState:
    """The risk bookkeeping before the first bar: everything at the starting cash."""
    cash = settings.initial_cash
    return RiskState(
        cash,
        cash,
        cash,
        next_daily_reset_ns_nb(first_time_ns, settings.daily_reset_offset_ns),
        False,
        False,
    )


@njit(cache=True, inline="always")
def risk_open_nb(risk: RiskState, time_ns: int, settings: KernelSettings) -> RiskState:
    """At a bar's open: a new risk day, when one starts, clears the daily breaker.

    The day's P&L then counts from the equity marked at the last close.
    """
    if time_ns < risk.next_reset_ns:
        return risk
    return RiskState(
        risk.last_equity,
        risk.peak_equity,
        risk.last_equity,
        next_daily_reset_ns_nb(time_ns, settings.daily_reset_offset_ns),
        False,
        risk.drawdown_halt,
    )


@njit(cache=True, inline="always")
def risk_close_nb(
    risk: RiskState, equity: float, settings: KernelSettings
) -> tuple[RiskState, int]:
    """At a close: mark the equity and trip the breakers it newly breaches.

    As the live bot's account update does. Returns the new state and the trip (a denial
    code: daily loss or drawdown; 0 for none).
    """
    peak_equity = max(risk.peak_equity, equity)
    daily_now, drawdown_now = close_breaches_nb(
        equity,
        peak_equity,
        equity - risk.day_start_equity,
        risk.daily_halt,
        risk.drawdown_halt,
        settings.max_daily_loss,
        settings.max_drawdown_pct,
    )
    trip = 0
    if daily_now:
        trip = DENIED_DAILY_LOSS
    if drawdown_now:
        trip = DENIED_DRAWDOWN
    state = RiskState(
        equity,
        peak_equity,
        risk.day_start_equity,
        risk.next_reset_ns,
        risk.daily_halt or daily_now,
        risk.drawdown_halt or drawdown_now,
    )
    return state, trip


# -- after the last bar, and the trade record ------------------------------------------------


@njit(cache=True, inline="always")
def end_of_data_nb(
    account: Account,
    position: Position,
    last_bar: int,
    last_close: float,
    symbol: int,
    trades: np.ndarray,
) -> tuple[Account, Position]:
    """A position still open after the last bar: a trade at the last close, no exit costs."""
    write_trade_nb(
        trades, account.num_trades, symbol, position, last_bar, last_close, 0.0, EXIT_END_OF_DATA
    )
    return Account(account.cash, account.total_fees, account.num_trades + 1), flat_position_nb()


@njit(cache=True, inline="always")
def write_trade_nb(
    trades: np.ndarray,
    index: int,
    symbol: int,
    position: Position,
    exit_bar: int,
    exit_price: float,
    exit_fee: float,
    reason: int,
) -> None:
    """Write record ``index`` of ``trades`` (``TRADE_DTYPE``): the one trade writer.

    ``pnl = direction x units x (exit - entry) - entry fee - exit fee``;
    ``pnl_pct = 100 x pnl / (units x entry)``.
    """
    direction = position.direction
    units = position.units
    entry_price = position.entry_price
    pnl = direction * units * (exit_price - entry_price) - position.entry_fee - exit_fee
    trade = trades[index]
    trade["symbol"] = symbol
    trade["entry_bar"] = position.entry_bar
    trade["exit_bar"] = exit_bar
    trade["direction"] = direction
    trade["size"] = units
    trade["entry_price"] = entry_price
    trade["exit_price"] = exit_price
    trade["pnl"] = pnl
    trade["pnl_pct"] = 100.0 * pnl / (units * entry_price)
    trade["fees"] = position.entry_fee + exit_fee
    trade["exit_reason"] = reason
    trade["tag"] = position.tag
