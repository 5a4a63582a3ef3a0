"""Volatility-adjusted position sizing: settings, the sizing decision and fail-closed wrappers.

The rule itself lives in :mod:`marketbot.risk.volatility_nb`; this module validates settings
(a bad one raises :class:`ConfigError` naming the field), turns any bad input or unexpected
exception into a size of 0 with a reason, and computes realised volatility from closes.
docs/sizing_and_rebalancing.md defines the formulas and works the examples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from marketbot.core.errors import ConfigError
from marketbot.risk.volatility_nb import (
    SIZE_BY_VOLATILITY,
    SIZE_CAPPED_BY_PORTFOLIO,
    SIZE_CAPPED_BY_POSITION_LIMIT,
    SIZE_ZERO_INVALID_BASE,
    SIZE_ZERO_INVALID_PORTFOLIO,
    SIZE_ZERO_INVALID_SETTINGS,
    SIZE_ZERO_INVALID_VOLATILITY,
    realized_volatility_pct_nb,
    volatility_adjusted_size_nb,
)

__all__ = [
    "DEFAULT_PORTFOLIO_VALUE_USD",
    "DEFAULT_TARGET_VOLATILITY_PCT",
    "DEFAULT_VOLATILITY_WINDOW",
    "SizeLimitedBy",
    "SizingDecision",
    "VolatilitySizingConfig",
    "realized_volatility_pct",
    "volatility_adjusted_size",
]

DEFAULT_PORTFOLIO_VALUE_USD: Final = 10_000.0
DEFAULT_TARGET_VOLATILITY_PCT: Final = 10.0
DEFAULT_MAX_PORTFOLIO_FRACTION: Final = 0.2
DEFAULT_VOLATILITY_WINDOW: Final = 20

SizeLimitedBy = Literal[
    "volatility",
    "portfolio_cap",
    "position_limit",
    "invalid_base_size",
    "invalid_volatility",
    "invalid_portfolio_value",
    "invalid_settings",
    "error",
]
_LIMITED_BY: Final[dict[int, SizeLimitedBy]] = {
    SIZE_BY_VOLATILITY: "volatility",
    SIZE_CAPPED_BY_PORTFOLIO: "portfolio_cap",
    SIZE_CAPPED_BY_POSITION_LIMIT: "position_limit",
    SIZE_ZERO_INVALID_BASE: "invalid_base_size",
    SIZE_ZERO_INVALID_VOLATILITY: "invalid_volatility",
    SIZE_ZERO_INVALID_PORTFOLIO: "invalid_portfolio_value",
    SIZE_ZERO_INVALID_SETTINGS: "invalid_settings",
}


def _positive_finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0.0


@dataclass(frozen=True, slots=True)
class VolatilitySizingConfig:
    """Settings of volatility-adjusted sizing, validated when constructed.

    Attributes:
        target_volatility_pct: Volatility, in percent, at which the size equals the base
            size (10.0 is 10 %); must be > 0.
        max_portfolio_fraction: Cap on one position as a fraction of the portfolio value,
            in (0, 1]; 0.2 is the seed's 20 %.
        max_position_size_usd: Hard cap from the risk limits (RiskLimits'
            ``max_position_size_usd``); None means no such cap. Must be > 0 when set.
        volatility_window: Number of recent simple returns the volatility is computed from
            (>= 2; ``window + 1`` closes are read).
        bars_per_day: Scales per-bar volatility to daily: 1.0 for daily bars (the
            volatility stays per bar), 24.0 for hourly bars. Must be > 0.
    """

    target_volatility_pct: float = DEFAULT_TARGET_VOLATILITY_PCT
    max_portfolio_fraction: float = DEFAULT_MAX_PORTFOLIO_FRACTION
    max_position_size_usd: float | None = None
    volatility_window: int = DEFAULT_VOLATILITY_WINDOW
    bars_per_day: float = 1.0

    def __post_init__(self) -> None:
        if not _positive_finite(self.target_volatility_pct):
            raise ConfigError(
                f"target_volatility_pct={self.target_volatility_pct!r}: must be a number > 0"
            )
        fraction = self.max_portfolio_fraction
        if not (_positive_finite(fraction) and fraction <= 1.0):
            raise ConfigError(f"max_portfolio_fraction={fraction!r}: must be in (0, 1]")
        limit = self.max_position_size_usd
        if limit is not None and not _positive_finite(limit):
            raise ConfigError(f"max_position_size_usd={limit!r}: must be a number > 0 or None")
        _check_window(self.volatility_window)
        _check_bars_per_day(self.bars_per_day)


def _check_window(window: int) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ConfigError(f"volatility_window={window!r}: must be a whole number >= 2")


def _check_bars_per_day(bars_per_day: float) -> None:
    if not _positive_finite(bars_per_day):
        raise ConfigError(f"bars_per_day={bars_per_day!r}: must be a number > 0")


@dataclass(frozen=True, slots=True)
class SizingDecision:
    """The outcome of one volatility-adjusted sizing: the size and what bound it.

    Attributes:
        strategy: Name of the strategy the size is for (recorded, not used in the formula).
        size_usd: Position size in USD; 0 when an input is invalid.
        base_size_usd: The requested base size (size at the target volatility).
        volatility_pct: The volatility used, in percent (NaN when missing).
        scaled_size_usd: ``base x target / volatility`` before the caps (0 when invalid).
        limited_by: ``volatility`` (no cap bound), ``portfolio_cap``, ``position_limit``,
            or the ``invalid_*`` / ``error`` reason the size is 0.
        reason: One readable sentence for logs and the journal.
    """

    strategy: str
    size_usd: float
    base_size_usd: float
    volatility_pct: float
    scaled_size_usd: float
    limited_by: SizeLimitedBy
    reason: str

    @property
    def allowed(self) -> bool:
        """Whether the decision allows a position at all (a size above 0)."""
        return self.size_usd > 0.0


def _as_float(value: object) -> float:
    """A number as float; anything else (None, text, arrays) as NaN, so it fails closed."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        return math.nan
    return float(value)


def volatility_adjusted_size(
    strategy: str,
    base_size_usd: float,
    volatility_pct: float | None,
    portfolio_value_usd: float,
    config: VolatilitySizingConfig,
) -> SizingDecision:
    """Size a position inversely to volatility, capped; never raises (fails closed).

    ``size_usd = min(base x target_volatility_pct / volatility_pct, max_portfolio_fraction x
    portfolio_value_usd, max_position_size_usd)``. A base size that is NaN or negative, a
    volatility that is missing, NaN, infinite or <= 0, or a portfolio value that is not
    positive gives a size of 0 with the reason; so does any unexpected exception.

    Args:
        strategy: Strategy name, recorded in the decision.
        base_size_usd: Size in USD at the target volatility.
        volatility_pct: Current volatility in percent (10.0 is 10 %); None when unknown.
        portfolio_value_usd: Current portfolio value in USD.
        config: Target volatility and caps.

    Returns:
        The decision: the size, the size before caps, what bound it and why.
    """
    base = _as_float(base_size_usd)
    volatility = _as_float(volatility_pct)
    try:
        limit = config.max_position_size_usd
        size_usd, code = volatility_adjusted_size_nb(
            base,
            volatility,
            float(config.target_volatility_pct),
            _as_float(portfolio_value_usd),
            float(config.max_portfolio_fraction),
            math.nan if limit is None else float(limit),
        )
        limited_by = _LIMITED_BY[int(code)]
    except Exception as exc:  # fail closed: sizing must never crash the caller
        return SizingDecision(
            strategy, 0.0, base, volatility, 0.0, "error", f"size 0: sizing failed ({exc!r})"
        )
    scaled = (
        0.0
        if limited_by.startswith("invalid")
        else base * (config.target_volatility_pct / volatility)
    )
    reason = _reason(limited_by, float(size_usd), base, volatility, portfolio_value_usd, config)
    return SizingDecision(strategy, float(size_usd), base, volatility, scaled, limited_by, reason)


_REASONS: Final[dict[SizeLimitedBy, str]] = {
    "volatility": "${size:,.2f} = base ${base:,.2f} x target {target:g} % / volatility {vol:g} %",
    "portfolio_cap": "${size:,.2f}: capped at {fraction:.4g} % of portfolio value ${value:,.2f}",
    "position_limit": "${size:,.2f}: capped at the risk limit max_position_size_usd",
    "invalid_base_size": "size 0: base size {base!r} is not a number >= 0",
    "invalid_volatility": "size 0: volatility {vol!r} % is missing or not a number > 0",
    "invalid_portfolio_value": "size 0: portfolio value {value!r} is not a number > 0",
    "invalid_settings": "size 0: sizing settings are invalid",
}


def _reason(
    limited_by: SizeLimitedBy,
    size_usd: float,
    base_usd: float,
    volatility_pct: float,
    portfolio_value_usd: float,
    config: VolatilitySizingConfig,
) -> str:
    return _REASONS[limited_by].format(
        size=size_usd,
        base=base_usd,
        target=config.target_volatility_pct,
        vol=volatility_pct,
        fraction=config.max_portfolio_fraction * 100.0,
        value=portfolio_value_usd,
    )


def realized_volatility_pct(
    close_prices: Sequence[float] | npt.ArrayLike,
    window: int = DEFAULT_VOLATILITY_WINDOW,
    bars_per_day: float = 1.0,
) -> float:
    """Realised volatility of the last ``window`` simple returns, in percent (10.0 is 10 %).

    ``100 x std(r, ddof=1) x sqrt(bars_per_day)`` over ``r_k = close_k / close_{k-1} - 1``,
    the last ``window`` returns (the last ``window + 1`` closes). With daily bars and
    ``bars_per_day=1`` this is the daily volatility the seed's examples speak of.

    Args:
        close_prices: Close prices, oldest first (list, numpy array or pandas Series).
        window: Number of returns, >= 2.
        bars_per_day: 1.0 keeps the per-bar figure; 24.0 scales hourly bars to daily.

    Returns:
        The volatility, or NaN (which sizing turns into a size of 0) when there are fewer
        than ``window + 1`` closes or one of them is not a positive finite number.

    Raises:
        ConfigError: ``window`` is not a whole number >= 2 or ``bars_per_day`` is not > 0.
    """
    _check_window(window)
    _check_bars_per_day(bars_per_day)
    try:
        close = np.ascontiguousarray(close_prices, dtype=np.float64)
    except (TypeError, ValueError):
        return math.nan
    if close.ndim != 1:
        return math.nan
    return float(realized_volatility_pct_nb(close, close.shape[0] - 1, window, bars_per_day))
