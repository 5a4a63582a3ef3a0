"""Risk-limit checks as compiled functions on plain numbers, shared by kernel and live side.

``check_entry_nb`` returns a code: ``ENTRY_ALLOWED`` or the first limit a proposed entry
would break, checked in this order: the circuit breaker, daily loss, drawdown, open
positions, position size, total exposure. Daily loss and drawdown are *breaches* of the
account's state and trip the circuit breaker; the others only refuse this one entry. A limit
given as NaN is off. Exits are never checked: they are always allowed.
"""

from __future__ import annotations

import math
from typing import Final

from numba import njit

ENTRY_ALLOWED: Final = 0
DENIED_HALTED: Final = 1
DENIED_DAILY_LOSS: Final = 2
DENIED_DRAWDOWN: Final = 3
DENIED_POSITIONS: Final = 4
DENIED_POSITION_SIZE: Final = 5
DENIED_EXPOSURE: Final = 6
DENIED_INVALID_INPUT: Final = 7
DENIAL_NAMES: Final = (
    "allowed",
    "circuit breaker",
    "daily loss",
    "drawdown",
    "positions",
    "position size",
    "exposure",
    "invalid input",
)


@njit(cache=True, inline="always")
def drawdown_pct_nb(equity: float, peak_equity: float) -> float:
    """Percent below the high-water mark (0 when there is no positive peak yet)."""
    if not peak_equity > 0.0:
        return 0.0
    return max(0.0, 100.0 * (peak_equity - equity) / peak_equity)


@njit(cache=True)
def check_entry_nb(
    trade_size: float,
    current_exposure: float,
    daily_pnl: float,
    num_positions: int,
    equity: float,
    peak_equity: float,
    halted: bool,
    max_position_size: float,
    max_daily_loss: float,
    max_total_exposure: float,
    max_drawdown_pct: float,
    max_positions: float,
) -> int:
    """The first limit a new entry of notional ``trade_size`` would break, or allowed.

    ``equity``/``peak_equity`` of NaN skip the drawdown check (no equity known yet); every
    other NaN or negative amount is invalid input and refused.
    """
    if (
        not trade_size >= 0.0
        or not current_exposure >= 0.0
        or math.isnan(daily_pnl)
        or num_positions < 0
    ):
        return DENIED_INVALID_INPUT
    if halted:
        return DENIED_HALTED
    if daily_pnl <= -max_daily_loss:
        return DENIED_DAILY_LOSS
    known_equity = not math.isnan(equity) and not math.isnan(peak_equity)
    if known_equity and drawdown_pct_nb(equity, peak_equity) >= max_drawdown_pct:
        return DENIED_DRAWDOWN
    if num_positions >= max_positions:
        return DENIED_POSITIONS
    if trade_size > max_position_size:
        return DENIED_POSITION_SIZE
    if current_exposure + trade_size > max_total_exposure:
        return DENIED_EXPOSURE
    return ENTRY_ALLOWED


@njit(cache=True, inline="always")
def cap_entry_notional_nb(
    wanted: float,
    current_exposure: float,
    max_position_size: float,
    max_total_exposure: float,
) -> float:
    """Shrink a wanted entry notional to what the size and exposure limits leave room for."""
    capped = wanted
    if not math.isnan(max_position_size):
        capped = min(capped, max_position_size)
    if not math.isnan(max_total_exposure):
        capped = min(capped, max_total_exposure - current_exposure)
    return max(capped, 0.0)


_DAY_NS: Final = 86_400 * 1_000_000_000


@njit(cache=True, inline="always")
def next_daily_reset_ns_nb(time_ns: int, offset_ns: int) -> int:
    """The first daily reset strictly after ``time_ns`` (resets at ``offset_ns`` past midnight)."""
    return ((time_ns - offset_ns) // _DAY_NS + 1) * _DAY_NS + offset_ns


@njit(cache=True, inline="always")
def close_breaches_nb(
    equity: float,
    peak_equity: float,
    daily_pnl: float,
    daily_halt: bool,
    drawdown_halt: bool,
    max_daily_loss: float,
    max_drawdown_pct: float,
) -> tuple[bool, bool]:
    """Which loss limits the equity marked at a close newly breaches: (daily, drawdown).

    A limit already tripped is not reported again; a NaN limit never trips. The kernels call
    this at every close, as the live bot's ``RiskEnforcer.update_account`` does.
    """
    daily = not daily_halt and daily_pnl <= -max_daily_loss
    drawdown = not drawdown_halt and drawdown_pct_nb(equity, peak_equity) >= max_drawdown_pct
    return daily, drawdown
