"""Position sizing as a compiled function, shared by the backtest kernel and the live side."""

from __future__ import annotations

import math

from numba import njit

from marketbot.core.codes import SIZING_FIXED_CASH, SIZING_FRACTION


@njit(cache=True, inline="always")
def position_units_nb(
    equity: float,
    fill_price: float,
    fee_rate: float,
    sizing_mode: int,
    sizing_value: float,
    signal_fraction: float,
) -> float:
    """Units to buy or sell short so that notional plus fee fits the allotted cash.

    All-in allots the whole equity, fraction mode ``sizing_value`` of it, fixed-cash mode
    ``sizing_value`` quote units (at most the equity). A finite ``signal_fraction`` from the
    strategy overrides the mode with that fraction of equity. Returns 0 when nothing fits.
    """
    if equity <= 0.0:
        return 0.0
    if not math.isnan(signal_fraction):
        allotted = equity * min(max(signal_fraction, 0.0), 1.0)
    elif sizing_mode == SIZING_FRACTION:
        allotted = equity * sizing_value
    elif sizing_mode == SIZING_FIXED_CASH:
        allotted = min(sizing_value, equity)
    else:
        allotted = equity
    return allotted / (fill_price * (1.0 + fee_rate))
