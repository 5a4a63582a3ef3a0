"""Volatility-adjusted sizing and realised volatility as compiled functions on plain numbers.

The backtest kernel may call these bar by bar; the live ``PortfolioManager`` calls the same
functions through the fail-closed wrappers in :mod:`marketbot.risk.volatility_sizing`, so
both size identically. Neither function raises or allocates: a bad input gives a size of 0
with a status code saying why, or a NaN volatility.

Formula (docs/sizing_and_rebalancing.md works examples)::

    size_usd = min(base_size_usd * target_volatility_pct / volatility_pct,
                   max_portfolio_fraction * portfolio_value_usd,
                   max_position_size_usd)          # the last cap only when not NaN
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final, TypeVar, cast

import numpy as np
import numpy.typing as npt
from numba import njit

# Status codes of volatility_adjusted_size_nb: which cap bound the size, or why it is 0.
SIZE_BY_VOLATILITY: Final = 0
SIZE_CAPPED_BY_PORTFOLIO: Final = 1
SIZE_CAPPED_BY_POSITION_LIMIT: Final = 2
SIZE_ZERO_INVALID_BASE: Final = 3
SIZE_ZERO_INVALID_VOLATILITY: Final = 4
SIZE_ZERO_INVALID_PORTFOLIO: Final = 5
SIZE_ZERO_INVALID_SETTINGS: Final = 6

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func: _F) -> _F:
    """``numba.njit(cache=True)`` that keeps the function's signature visible to mypy."""
    return cast(_F, njit(cache=True)(func))


@_jit
def _is_positive_finite_nb(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


@_jit
def volatility_adjusted_size_nb(
    base_size_usd: float,
    volatility_pct: float,
    target_volatility_pct: float,
    portfolio_value_usd: float,
    max_portfolio_fraction: float,
    max_position_size_usd: float,
) -> tuple[float, int]:
    """Position size in USD scaled inversely with volatility, then capped; and a status code.

    Args:
        base_size_usd: Size at the target volatility; 0 gives 0, NaN or negative fails closed.
        volatility_pct: Current volatility in percent (10.0 is 10 %); must be finite and > 0.
        target_volatility_pct: Volatility at which the size equals ``base_size_usd``.
        portfolio_value_usd: Portfolio value the fractional cap is taken of.
        max_portfolio_fraction: Cap as a fraction of the portfolio value, in (0, 1].
        max_position_size_usd: Hard cap from the risk limits; NaN means no such cap.

    Returns:
        ``(size_usd, code)``: code ``SIZE_BY_VOLATILITY`` when no cap bound, a
        ``SIZE_CAPPED_*`` code naming the binding cap (the position limit wins a tie), or a
        ``SIZE_ZERO_*`` code with a size of 0 when an input is invalid.
    """
    if not (math.isfinite(base_size_usd) and base_size_usd >= 0.0):
        return 0.0, SIZE_ZERO_INVALID_BASE
    if not _is_positive_finite_nb(volatility_pct):
        return 0.0, SIZE_ZERO_INVALID_VOLATILITY
    if not _is_positive_finite_nb(portfolio_value_usd):
        return 0.0, SIZE_ZERO_INVALID_PORTFOLIO
    fraction_ok = _is_positive_finite_nb(max_portfolio_fraction) and max_portfolio_fraction <= 1.0
    limit_ok = math.isnan(max_position_size_usd) or max_position_size_usd >= 0.0
    if not (_is_positive_finite_nb(target_volatility_pct) and fraction_ok and limit_ok):
        return 0.0, SIZE_ZERO_INVALID_SETTINGS
    scaled = base_size_usd * (target_volatility_pct / volatility_pct)
    portfolio_cap = max_portfolio_fraction * portfolio_value_usd
    cap = portfolio_cap
    capped_code = SIZE_CAPPED_BY_PORTFOLIO
    if not math.isnan(max_position_size_usd) and max_position_size_usd <= portfolio_cap:
        cap = max_position_size_usd
        capped_code = SIZE_CAPPED_BY_POSITION_LIMIT
    if scaled <= cap:
        return scaled, SIZE_BY_VOLATILITY
    return cap, capped_code


@_jit
def realized_volatility_pct_nb(
    close: npt.NDArray[np.float64], end: int, window: int, bars_per_day: float
) -> float:
    """Standard deviation (ddof 1) of the ``window`` simple returns ending at bar ``end``, in %.

    The returns are ``close[k] / close[k - 1] - 1`` for ``k`` in ``end - window + 1 .. end``,
    so ``window + 1`` closes are read. The per-bar figure is scaled by ``sqrt(bars_per_day)``
    (1.0 leaves it per bar; 24 turns hourly bars into a daily volatility).

    Returns:
        The volatility in percent (10.0 is 10 %), or NaN when ``window < 2``, ``end`` is out
        of range or too early, ``bars_per_day`` is not positive, a close read is not a
        positive finite number, or the result overflows.
    """
    if window < 2 or end >= close.shape[0] or end - window < 0:
        return math.nan
    if not _is_positive_finite_nb(bars_per_day):
        return math.nan
    start = end - window
    for k in range(start, end + 1):
        if not _is_positive_finite_nb(close[k]):
            return math.nan
    total = 0.0
    for k in range(start + 1, end + 1):
        total += close[k] / close[k - 1] - 1.0
    mean = total / window
    squares = 0.0
    for k in range(start + 1, end + 1):
        deviation = close[k] / close[k - 1] - 1.0 - mean
        squares += deviation * deviation
    volatility_pct = math.sqrt(squares / (window - 1)) * math.sqrt(bars_per_day) * 100.0
    # Absurd price jumps (1e300x) overflow; an infinite volatility is no usable number.
    return volatility_pct if math.isfinite(volatility_pct) else math.nan
