"""Hard risk limits as validated, frozen settings: global, and overridable per strategy.

The defaults are the seed's live-bot limits. A backtest applies limits only when the user
configures them; the bot always does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from marketbot.core.errors import ConfigError


class RiskLimits(BaseModel):
    """The hard stops between a strategy and money (amounts in USD, quote currency).

    Attributes:
        max_position_size_usd: Largest notional of one new position.
        max_daily_loss_usd: Loss since the daily reset that trips the circuit breaker.
        max_total_exposure_usd: Largest sum of open positions' notional, the new one included.
        max_drawdown_pct: Drop from the equity high-water mark, in percent, that trips the
            breaker until a manual reset.
        max_positions: Open positions allowed; with this many open, a new entry is blocked.
        daily_reset_hour_utc: Hour (UTC) at which the daily loss starts again from zero.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_position_size_usd: float = Field(default=1_000.0, gt=0, allow_inf_nan=False)
    max_daily_loss_usd: float = Field(default=500.0, gt=0, allow_inf_nan=False)
    max_total_exposure_usd: float = Field(default=5_000.0, gt=0, allow_inf_nan=False)
    max_drawdown_pct: float = Field(default=20.0, gt=0, le=100, allow_inf_nan=False)
    max_positions: int = Field(default=10, ge=1)
    daily_reset_hour_utc: int = Field(default=0, ge=0, le=23)

    @model_validator(mode="after")
    def _position_fits_exposure(self) -> RiskLimits:
        if self.max_position_size_usd > self.max_total_exposure_usd:
            raise ValueError(
                f"max_position_size_usd ({self.max_position_size_usd:g}) exceeds "
                f"max_total_exposure_usd ({self.max_total_exposure_usd:g})"
            )
        return self


class RiskConfig(BaseModel):
    """Global limits plus per-strategy overrides of any of their fields.

    Attributes:
        limits: The global limits.
        strategies: Per strategy name, the fields that differ from the global limits.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    limits: RiskLimits = Field(default_factory=RiskLimits)
    strategies: dict[str, dict[str, float | int]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _overrides_are_valid(self) -> RiskConfig:
        for name in self.strategies:
            self.limits_for(name)
        return self

    def limits_for(self, strategy: str) -> RiskLimits:
        """The limits that apply to ``strategy``: the global ones with its overrides."""
        overrides = self.strategies.get(strategy)
        if not overrides:
            return self.limits
        return RiskLimits(**{**self.limits.model_dump(), **overrides})


def risk_config_from_mapping(data: Mapping[str, Any], *, where: str) -> RiskConfig:
    """Validate risk settings from a parsed file or environment, naming any bad key.

    Raises:
        ConfigError: a negative limit, a drawdown above 100 %, an unknown key, and so on.
    """
    try:
        return RiskConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'limits'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{where}: invalid risk limits: {problems}") from exc
