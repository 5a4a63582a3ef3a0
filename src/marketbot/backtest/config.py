"""The settings of one backtest run: costs, sizing and exit rules, validated up front."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any, Final, Literal

from marketbot.backtest.kernel import KernelSettings
from marketbot.core.codes import SIZING_ALL_IN, SIZING_FIXED_CASH, SIZING_FRACTION
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits
from marketbot.core.timeframes import NANOSECONDS_PER_SECOND, timeframe_seconds

SizingMode = Literal["all_in", "fraction", "fixed_cash"]
_SIZING_CODES: Final = {
    "all_in": SIZING_ALL_IN,
    "fraction": SIZING_FRACTION,
    "fixed_cash": SIZING_FIXED_CASH,
}
DEFAULT_FEE: Final = 0.002
DEFAULT_SLIPPAGE: Final = 0.001
DEFAULT_CASH: Final = 10_000.0
_DURATION_PATTERN: Final = re.compile(r"^\d+[smhdw]$")


def parse_duration_seconds(value: float | int | str | timedelta | None, *, name: str) -> int:
    """A duration as whole seconds: a number of seconds, a timedelta, or text like ``24h``.

    None means off and gives 0.
    """
    if value is None:
        return 0
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip().lower()
        if _DURATION_PATTERN.match(text):
            seconds = float(timeframe_seconds(text))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ConfigError(
                    f"{name}={value!r}: use seconds or a duration like 24h, 3d, 90m"
                ) from None
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(f"{name}={value!r}: must be a positive duration")
    return round(seconds)


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Exit rules of a backtest, all off unless set (fractions: 0.05 is 5 %).

    Attributes:
        stop_loss: Exit when price moves this fraction against the entry fill.
        take_profit: Exit when price moves this fraction in favour of the entry fill.
        trailing_stop: Exit when price falls this fraction from the best price since entry.
        trailing_activation: Arm the trailing stop only after this much favourable move.
        max_hold_seconds: Exit at the first open at least this long after the entry (0: off).
    """

    stop_loss: float | None = None
    take_profit: float | None = None
    trailing_stop: float | None = None
    trailing_activation: float | None = None
    max_hold_seconds: int = 0

    def __post_init__(self) -> None:
        for name in ("stop_loss", "take_profit", "trailing_stop"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ConfigError(f"{name}={value!r}: must be a fraction between 0 and 1")
        activation = self.trailing_activation
        if activation is not None and not (math.isfinite(activation) and activation >= 0.0):
            raise ConfigError(f"trailing_activation={activation!r}: must be >= 0")
        if self.max_hold_seconds < 0:
            raise ConfigError(f"max_hold_seconds={self.max_hold_seconds}: must be >= 0")


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Costs, sizing and exits of one run; validated when constructed.

    Attributes:
        fee_rate: Fee as a fraction of each fill's notional (0.002 is 0.2 %).
        slippage_rate: Fraction a market fill moves against the order (0.001 is 0.1 %).
        initial_cash: Starting cash in quote currency.
        sizing: ``all_in`` (default), ``fraction`` of equity, or ``fixed_cash`` per entry.
        size: The fraction (0 < size <= 1) or cash amount for the non-default sizing modes.
        allow_short: Whether short entries are taken (None: when the strategy emits them).
        exits: Stop-loss, take-profit, trailing stop and max hold.
        risk: Hard risk limits applied as the live bot applies them (None: no limits).
    """

    fee_rate: float = DEFAULT_FEE
    slippage_rate: float = DEFAULT_SLIPPAGE
    initial_cash: float = DEFAULT_CASH
    sizing: SizingMode = "all_in"
    size: float | None = None
    allow_short: bool | None = None
    exits: ExitRules = field(default_factory=ExitRules)
    risk: RiskLimits | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.fee_rate) and 0.0 <= self.fee_rate < 1.0):
            raise ConfigError(f"fee={self.fee_rate!r}: must be a fraction in [0, 1)")
        if not (math.isfinite(self.slippage_rate) and 0.0 <= self.slippage_rate < 1.0):
            raise ConfigError(f"slippage={self.slippage_rate!r}: must be a fraction in [0, 1)")
        if not (math.isfinite(self.initial_cash) and self.initial_cash > 0.0):
            raise ConfigError(f"cash={self.initial_cash!r}: must be positive")
        if self.sizing not in _SIZING_CODES:
            raise ConfigError(f"sizing={self.sizing!r}: use one of {', '.join(_SIZING_CODES)}")
        if self.sizing == "fraction" and not (
            self.size is not None and math.isfinite(self.size) and 0.0 < self.size <= 1.0
        ):
            raise ConfigError(f"size={self.size!r}: fraction sizing needs 0 < size <= 1")
        if self.sizing == "fixed_cash" and not (
            self.size is not None and math.isfinite(self.size) and self.size > 0.0
        ):
            raise ConfigError(f"size={self.size!r}: fixed_cash sizing needs a positive amount")

    def kernel_settings(self, *, allow_short: bool) -> KernelSettings:
        """The kernel's scalar settings, with off rules as NaN."""
        exits = self.exits

        def off_as_nan(value: float | None) -> float:
            return math.nan if value is None else float(value)

        return KernelSettings(
            initial_cash=float(self.initial_cash),
            fee_rate=float(self.fee_rate),
            slippage_rate=float(self.slippage_rate),
            stop_loss=off_as_nan(exits.stop_loss),
            take_profit=off_as_nan(exits.take_profit),
            trailing_stop=off_as_nan(exits.trailing_stop),
            trailing_activation=off_as_nan(exits.trailing_activation),
            max_hold_ns=exits.max_hold_seconds * NANOSECONDS_PER_SECOND,
            sizing_mode=_SIZING_CODES[self.sizing],
            sizing_value=1.0 if self.size is None else float(self.size),
            allow_short=allow_short,
            **_risk_settings(self.risk),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings, as reported and stored with a run."""
        data = asdict(self)
        data["risk"] = None if self.risk is None else self.risk.model_dump()
        return data


def _risk_settings(limits: RiskLimits | None) -> dict[str, Any]:
    """The kernel's risk fields: every limit NaN (off) without limits."""
    if limits is None:
        return {
            "max_position_size": math.nan,
            "max_total_exposure": math.nan,
            "max_positions": math.nan,
            "max_daily_loss": math.nan,
            "max_drawdown_pct": math.nan,
            "daily_reset_offset_ns": 0,
        }
    return {
        "max_position_size": float(limits.max_position_size_usd),
        "max_total_exposure": float(limits.max_total_exposure_usd),
        "max_positions": float(limits.max_positions),
        "max_daily_loss": float(limits.max_daily_loss_usd),
        "max_drawdown_pct": float(limits.max_drawdown_pct),
        "daily_reset_offset_ns": limits.daily_reset_hour_utc * 3600 * NANOSECONDS_PER_SECOND,
    }
