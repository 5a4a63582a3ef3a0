"""The settings of a binary-market backtest: fee model, sizing, exits, risk limits.

The instrument's defaults live here beside the OHLCV ones of ``backtest.config``, and
:func:`instrument_costs` is the one place that says which apply: ``fee``/``slippage`` None
mean the instrument's default in the API, the CLI and the optimiser.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

from marketbot.backtest.config import (
    DEFAULT_CASH,
    DEFAULT_FEE,
    DEFAULT_SLIPPAGE,
    parse_duration_seconds,
)
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits

BinarySizing = Literal["shares", "fixed_cash", "fraction"]
FEE_MODELS: Final = ("polymarket_taker",)
DEFAULT_BINARY_FEE: Final = 0.07
"""Polymarket's published taker rate for crypto markets (0 where trading is free)."""
DEFAULT_BINARY_SLIPPAGE: Final = 0.0
"""The ask already pays the spread."""
DEFAULT_GROUP_CASH: Final = 1_000.0
_SIZINGS: Final = ("shares", "fixed_cash", "fraction")
_OPTION_KEYS: Final = frozenset(
    {"fee", "slippage", "cash", "sizing", "size", "stop_loss", "take_profit", "max_hold", "risk"}
)
_OHLCV_ONLY: Final = frozenset(
    {"allow_short", "trailing_stop", "trailing_activation", "max_open_positions",
     "max_exposure", "portfolio_stop"}
)  # fmt: skip


def instrument_costs(instrument: str) -> tuple[float, float]:
    """The default (fee, slippage) of an instrument: ``ohlcv`` or ``binary``."""
    if instrument == "binary":
        return DEFAULT_BINARY_FEE, DEFAULT_BINARY_SLIPPAGE
    return DEFAULT_FEE, DEFAULT_SLIPPAGE


@dataclass(frozen=True, slots=True)
class BinaryConfig:
    """Costs, sizing, exits and limits of a binary run; validated when constructed.

    Attributes:
        fee_model: ``polymarket_taker``: a fill of q shares at price p pays
            q x fee_rate x p x (1 - p); every backtest fill is a taker fill.
        fee_rate: The taker rate (0.07 by default).
        slippage_rate: Fraction a fill moves against the order (default 0).
        initial_cash: Starting cash, USD.
        sizing: ``fixed_cash`` (default: ``size`` USD a group, fees included, equal shares
            per leg), ``shares`` (``size`` shares per leg) or ``fraction`` (``size`` of
            equity a group). A strategy's own shares win over the sizing.
        size: The amount of the sizing mode (fixed_cash default 1,000; shares and fraction
            need one).
        stop_loss: Exit a group whose value at mids fell this fraction below its cost.
        take_profit: Exit a group whose value at mids rose this fraction above its cost.
        max_hold_seconds: Exit at the first event at least this long after the entry (0: off).
        risk: Position size, total exposure (both at cost) and open groups limits, or None.
    """

    fee_model: str = "polymarket_taker"
    fee_rate: float = DEFAULT_BINARY_FEE
    slippage_rate: float = DEFAULT_BINARY_SLIPPAGE
    initial_cash: float = DEFAULT_CASH
    sizing: BinarySizing = "fixed_cash"
    size: float | None = None
    stop_loss: float | None = None
    take_profit: float | None = None
    max_hold_seconds: int = 0
    risk: RiskLimits | None = None

    def __post_init__(self) -> None:
        if self.fee_model not in FEE_MODELS:
            raise ConfigError(f"fee_model={self.fee_model!r}: use one of {', '.join(FEE_MODELS)}")
        if not (math.isfinite(self.fee_rate) and 0.0 <= self.fee_rate < 1.0):
            raise ConfigError(f"fee={self.fee_rate!r}: must be a fraction in [0, 1)")
        if not (math.isfinite(self.slippage_rate) and 0.0 <= self.slippage_rate < 1.0):
            raise ConfigError(f"slippage={self.slippage_rate!r}: must be a fraction in [0, 1)")
        if not (math.isfinite(self.initial_cash) and self.initial_cash > 0.0):
            raise ConfigError(f"cash={self.initial_cash!r}: must be positive")
        if self.sizing not in _SIZINGS:
            raise ConfigError(
                f"sizing={self.sizing!r}: a binary run uses one of {', '.join(_SIZINGS)}"
            )
        size = self.size
        if size is not None and not (math.isfinite(size) and size > 0.0):
            raise ConfigError(f"size={size!r}: must be a positive number")
        if self.sizing == "shares" and size is None:
            raise ConfigError("sizing='shares' needs size= (shares per leg)")
        if self.sizing == "fraction" and not (size is not None and size <= 1.0):
            raise ConfigError(f"size={size!r}: fraction sizing needs 0 < size <= 1")
        for name in ("stop_loss", "take_profit"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and 0.0 < value < 1.0):
                raise ConfigError(f"{name}={value!r}: must be a fraction between 0 and 1")
        if self.max_hold_seconds < 0:
            raise ConfigError(f"max_hold_seconds={self.max_hold_seconds}: must be >= 0")

    @property
    def group_size(self) -> float:
        """The sizing amount, with fixed_cash's default of $1,000 a group."""
        return DEFAULT_GROUP_CASH if self.size is None else float(self.size)

    def fee(self, shares: float, price: float) -> float:
        """The taker fee of a fill of ``shares`` at ``price``."""
        return shares * self.fee_rate * price * (1.0 - price)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings, as reported with a run."""
        data = asdict(self)
        data["instrument"] = "binary"
        data["risk"] = None if self.risk is None else self.risk.model_dump()
        return data


def build_binary_config(config: object | None, options: Mapping[str, Any]) -> BinaryConfig:
    """``config`` as given, or a :class:`BinaryConfig` from ``run_backtest``'s keywords.

    Raises:
        ConfigError: an OHLCV-only setting, an unknown keyword, both ``config`` and
            keywords, or a bad value.
    """
    chosen = {key: value for key, value in options.items() if value is not None}
    for key in chosen:
        if key in _OHLCV_ONLY:
            raise ConfigError(f"{key}: not a setting of binary markets (long-only share groups)")
        if key not in _OPTION_KEYS:
            allowed = ", ".join(sorted(_OPTION_KEYS))
            raise ConfigError(f"unknown setting {key!r} (binary settings: {allowed})")
    if config is not None:
        if not isinstance(config, BinaryConfig):
            raise ConfigError(
                f"a binary strategy takes a BinaryConfig, not {type(config).__name__}"
            )
        if chosen:
            raise ConfigError(
                f"give config= or the keyword settings ({', '.join(sorted(chosen))}), not both"
            )
        return config
    fee, slippage = instrument_costs("binary")
    return BinaryConfig(
        fee_rate=float(chosen.get("fee", fee)),
        slippage_rate=float(chosen.get("slippage", slippage)),
        initial_cash=float(chosen.get("cash", DEFAULT_CASH)),
        sizing=chosen.get("sizing", "fixed_cash"),
        size=None if chosen.get("size") is None else float(chosen["size"]),
        stop_loss=chosen.get("stop_loss"),
        take_profit=chosen.get("take_profit"),
        max_hold_seconds=parse_duration_seconds(chosen.get("max_hold"), name="max_hold"),
        risk=chosen.get("risk"),
    )
