"""Keyword settings as a thin convenience over the settings objects.

``run_backtest``, ``optimize_strategy`` and ``walk_forward`` take a ``BacktestConfig`` (and
``PortfolioRules``); their keyword arguments (``fee=0.001, stop_loss=0.05, ...``) build the
same objects here, in one place, with the defaults of :mod:`marketbot.backtest.config`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, TypedDict

import pandas as pd

from marketbot.backtest.config import (
    DEFAULT_CASH,
    DEFAULT_FEE,
    DEFAULT_SLIPPAGE,
    BacktestConfig,
    ExitRules,
    SizingMode,
    parse_duration_seconds,
)
from marketbot.backtest.portfolio import PortfolioRules
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits

DateLike = str | date | datetime | pd.Timestamp | None
"""A bound of a run: ``YYYY-MM-DD`` text (a bare end date means that whole day), or a time."""


@dataclass(frozen=True, slots=True)
class DataSelection:
    """Which bars a run uses: one stored symbol, a stored universe, or frames; and the period.

    Exactly one of ``symbol``, ``symbols`` and ``data`` is set (each caller says so in its own
    words when not).

    Attributes:
        symbol: A stored series, e.g. ``bitcoin``.
        symbols: Stored series of a portfolio (universe) run.
        data: An OHLCV frame, or a mapping of symbol to frame.
        start_date: First bar traded (earlier bars feed the warm-up).
        end_date: Last bar traded (inclusive).
        timeframe: Which stored timeframe.
        source: Which stored source, when several have the symbol.
    """

    symbol: str | None = None
    symbols: Sequence[str] | None = None
    data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None
    start_date: DateLike = None
    end_date: DateLike = None
    timeframe: str | None = None
    source: str | None = None

    @property
    def choices_given(self) -> int:
        """How many of symbol, symbols and data are set (a valid selection has one)."""
        return sum(x is not None for x in (self.symbol, self.symbols, self.data))


class BacktestOptions(TypedDict, total=False):
    """The keyword form of a :class:`BacktestConfig`; None takes the default.

    Keys: ``fee``, ``slippage``, ``cash``, ``sizing``, ``size``, ``allow_short``, ``stop_loss``,
    ``take_profit``, ``trailing_stop``, ``trailing_activation``, ``max_hold`` (seconds, a
    timedelta or text such as ``24h``) and ``risk``.
    """

    fee: float | None
    slippage: float | None
    cash: float | None
    sizing: SizingMode
    size: float | None
    allow_short: bool | None
    stop_loss: float | None
    take_profit: float | None
    trailing_stop: float | None
    trailing_activation: float | None
    max_hold: float | str | timedelta | None
    risk: RiskLimits | None


class PortfolioOptions(TypedDict, total=False):
    """The keyword form of :class:`PortfolioRules`: slots, exposure cap, portfolio stop."""

    max_open_positions: int | None
    max_exposure: float | None
    portfolio_stop: float | None


class RunOptions(BacktestOptions, PortfolioOptions, total=False):
    """Every keyword setting of a run: the backtest's and the portfolio's."""


BACKTEST_KEYS: Final = frozenset(BacktestOptions.__annotations__)
PORTFOLIO_KEYS: Final = frozenset(PortfolioOptions.__annotations__)


def build_config(config: BacktestConfig | None, options: Mapping[str, Any]) -> BacktestConfig:
    """``config`` as given, or one built from the keyword settings (not both).

    Raises:
        ConfigError: an unknown keyword, both ``config`` and keywords, or a bad value.
    """
    chosen = {key: value for key, value in options.items() if key not in PORTFOLIO_KEYS}
    _check_known(chosen, BACKTEST_KEYS)
    if config is not None:
        if chosen:
            raise ConfigError(
                f"give config= or the keyword settings ({', '.join(sorted(chosen))}), not both"
            )
        return config

    def pick(key: str, default: Any) -> Any:
        value = chosen.get(key)
        return default if value is None else value

    return BacktestConfig(
        fee_rate=pick("fee", DEFAULT_FEE),
        slippage_rate=pick("slippage", DEFAULT_SLIPPAGE),
        initial_cash=pick("cash", DEFAULT_CASH),
        sizing=pick("sizing", "all_in"),
        size=chosen.get("size"),
        allow_short=chosen.get("allow_short"),
        exits=ExitRules(
            stop_loss=chosen.get("stop_loss"),
            take_profit=chosen.get("take_profit"),
            trailing_stop=chosen.get("trailing_stop"),
            trailing_activation=chosen.get("trailing_activation"),
            max_hold_seconds=parse_duration_seconds(chosen.get("max_hold"), name="max_hold"),
        ),
        risk=chosen.get("risk"),
    )


def build_rules(rules: PortfolioRules | None, options: Mapping[str, Any]) -> PortfolioRules:
    """``rules`` as given, or rules built from the portfolio keywords (not both).

    Raises:
        ConfigError: both ``rules`` and portfolio keywords, or a bad value.
    """
    chosen = {key: value for key, value in options.items() if key in PORTFOLIO_KEYS}
    if rules is not None:
        if any(value is not None for value in chosen.values()):
            raise ConfigError(
                f"give rules= or the portfolio settings ({', '.join(sorted(chosen))}), not both"
            )
        return rules
    return PortfolioRules(**chosen)


def _check_known(options: Mapping[str, Any], known: frozenset[str]) -> None:
    unknown = sorted(set(options) - known)
    if unknown:
        allowed = ", ".join(sorted(known | PORTFOLIO_KEYS))
        raise ConfigError(f"unknown setting {unknown[0]!r} (settings: {allowed})")
