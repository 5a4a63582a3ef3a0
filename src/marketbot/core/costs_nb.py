"""Trading costs: the price a market order fills at after slippage, and the fee on notional."""

from __future__ import annotations

from numba import njit


@njit(cache=True, inline="always")
def fill_price_nb(price: float, side: int, slippage_rate: float) -> float:
    """The price a market order gets: a buy (side 1) pays more, a sell (side -1) gets less."""
    return price * (1.0 + side * slippage_rate)


@njit(cache=True, inline="always")
def fee_nb(units: float, fill_price: float, fee_rate: float) -> float:
    """The fee of a fill: a fraction of its notional value."""
    return units * fill_price * fee_rate
