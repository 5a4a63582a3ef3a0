"""The portfolio manager: the live side's entry point to volatility-adjusted sizing.

It holds the current portfolio value and the sizing settings, and sizes a strategy's next
position with the compiled rule in :mod:`marketbot.risk.volatility_nb`, failing closed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy.typing as npt

from marketbot.core.errors import ConfigError
from marketbot.risk.volatility_sizing import (
    DEFAULT_PORTFOLIO_VALUE_USD,
    SizingDecision,
    VolatilitySizingConfig,
    realized_volatility_pct,
    volatility_adjusted_size,
)

__all__ = ["PortfolioManager"]


class PortfolioManager:
    """Sizes positions against the portfolio value, scaled by volatility and capped.

    Example (the seed's, with the defaults: $10,000 and a target volatility of 10 %)::

        manager = PortfolioManager()
        manager.calculate_position_size_volatility_adjusted("momentum", 100.0, volatility=10.0)
        # 100.0
        manager.calculate_position_size_volatility_adjusted("momentum", 100.0, volatility=2.0)
        # 500.0
    """

    def __init__(
        self,
        portfolio_value_usd: float = DEFAULT_PORTFOLIO_VALUE_USD,
        sizing: VolatilitySizingConfig | None = None,
    ) -> None:
        """Create a manager.

        Args:
            portfolio_value_usd: Current portfolio value in USD, > 0.
            sizing: Target volatility, caps and volatility window (defaults when None).

        Raises:
            ConfigError: ``portfolio_value_usd`` is not a number > 0.
        """
        if not _is_positive_number(portfolio_value_usd):
            raise ConfigError(f"portfolio_value_usd={portfolio_value_usd!r}: must be a number > 0")
        self._portfolio_value_usd = float(portfolio_value_usd)
        self._sizing = sizing if sizing is not None else VolatilitySizingConfig()

    @property
    def portfolio_value_usd(self) -> float:
        """The portfolio value the fractional cap is taken of, in USD."""
        return self._portfolio_value_usd

    @property
    def sizing(self) -> VolatilitySizingConfig:
        """The sizing settings."""
        return self._sizing

    def update_portfolio_value(self, portfolio_value_usd: float) -> None:
        """Record a new portfolio value (for example the equity after a fill).

        The value is stored as given: a NaN, infinite or non-positive value is not an
        error here, but every size computed while it stands is 0 with the reason.
        """
        self._portfolio_value_usd = _number_or_nan(portfolio_value_usd)

    def volatility_pct(self, close_prices: Sequence[float] | npt.ArrayLike) -> float:
        """Realised volatility of the configured window of recent returns, in percent.

        NaN when there are too few closes or a bad one (see ``realized_volatility_pct``).
        """
        return realized_volatility_pct(
            close_prices, self._sizing.volatility_window, self._sizing.bars_per_day
        )

    def size_position(
        self, strategy: str, base_size_usd: float, volatility_pct: float | None
    ) -> SizingDecision:
        """Size a position for ``strategy``: the full decision, never raising.

        Args:
            strategy: Strategy name, recorded in the decision.
            base_size_usd: Size in USD at the target volatility.
            volatility_pct: Current volatility in percent (10.0 is 10 %); None when unknown.

        Returns:
            The size, the size before caps, what bound it and why (size 0 on bad input).
        """
        return volatility_adjusted_size(
            strategy, base_size_usd, volatility_pct, self._portfolio_value_usd, self._sizing
        )

    def size_position_from_prices(
        self, strategy: str, base_size_usd: float, close_prices: Sequence[float] | npt.ArrayLike
    ) -> SizingDecision:
        """Size a position with the volatility computed from recent closes (oldest first)."""
        return self.size_position(strategy, base_size_usd, self.volatility_pct(close_prices))

    def calculate_position_size_volatility_adjusted(
        self, strategy: str, base_size: float, volatility: float | None
    ) -> float:
        """The seed's call: the volatility-adjusted size in USD (0.0 when it fails closed).

        Args:
            strategy: Strategy name.
            base_size: Size in USD at the target volatility.
            volatility: Current volatility in percent (10.0 is 10 %).

        Returns:
            ``min(base_size x target / volatility, 20 % of the portfolio value, the risk
            limit)`` with the defaults; see :meth:`size_position` for the reason.
        """
        return self.size_position(strategy, base_size, volatility).size_usd


def _is_positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0.0
    )


def _number_or_nan(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)
