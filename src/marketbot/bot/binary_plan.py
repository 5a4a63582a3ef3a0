"""What a paper run on binary markets trades: the strategy, the markets, the settings, the window.

``marketbot run --paper --strategy NAME --market SLUG [--market ...] --replay START END``
replays stored books (``BinaryMarkets.from_store``); without ``--replay`` the bot polls the
CLOB books of the stored markets (bot/binary_feed.py). The settings are the binary backtest's
(``BinaryConfig``): its defaults, or the keys of ``--config FILE`` that a binary backtest
takes as options (fee, slippage, cash, sizing, size, stop_loss, take_profit, max_hold,
``[risk.limits]``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pandas as pd
from pydantic import ValidationError

from marketbot.backtest.binary_config import BinaryConfig, build_binary_config
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.core.errors import ConfigError
from marketbot.core.risk_limits import RiskLimits
from marketbot.strategies.base import Strategy
from marketbot.strategies.binary import BinaryStrategy
from marketbot.strategies.loader import load_strategy

_FILE_KEYS: Final = (
    "fee", "slippage", "cash", "sizing", "size", "stop_loss", "take_profit", "max_hold", "risk",
)  # fmt: skip
SYMBOL_LENGTH: Final = 100  # bot_runs.symbol


@dataclass(frozen=True)
class BinaryPlan:
    """One binary paper run, checked.

    Attributes:
        strategy: The binary strategy.
        params: Its resolved parameters.
        markets: The markets traded, in slug order.
        config: Costs, sizing and limits (the backtest's).
        start: The replay's first instant (UTC); live: when the run started.
        end: The replay's last instant (UTC); None for live paper.
    """

    strategy: BinaryStrategy
    params: dict[str, Any]
    markets: BinaryMarkets
    config: BinaryConfig
    start: datetime
    end: datetime | None

    @property
    def symbol(self) -> str:
        """The run's symbol: the slugs joined by commas (shortened past 100 characters)."""
        joined = ",".join(self.markets.slugs)
        if len(joined) <= SYMBOL_LENGTH:
            return joined
        return f"{self.markets.slugs[0]} +{len(self.markets) - 1} markets"[:SYMBOL_LENGTH]

    def identity(self) -> dict[str, Any]:
        """What a resumed run must keep: the markets, the settings and (replays) START."""
        identity = {
            "instrument": "binary",
            "markets": list(self.markets.slugs),
            "settings": self.config.to_dict(),
            "mode": "replay" if self.end is not None else "live",
        }
        if self.end is not None:  # live paper starts when it is started, again after a stop
            identity["start"] = self.start.isoformat()
        return identity


def load_binary_strategy_named(name: str) -> BinaryStrategy:
    """The strategy ``name`` when it trades binary markets.

    Raises:
        ConfigError: it is an OHLCV strategy (naming ``--symbol``).
    """
    strategy = load_strategy(name)
    if not isinstance(strategy, BinaryStrategy):
        raise ConfigError(
            f"{strategy.name} trades OHLCV bars, not binary markets: use --symbol, not --market"
        )
    return strategy


def refuse_binary(strategy: Strategy) -> None:
    """A one-line error for a binary strategy on OHLCV bars (its signals read order books).

    Raises:
        ConfigError: ``NAME is a binary-market strategy: use --market SLUG``.
    """
    if isinstance(strategy, BinaryStrategy):
        raise ConfigError(f"{strategy.name} is a binary-market strategy: use --market SLUG")


def binary_config_from_file(path: Path | None) -> BinaryConfig:
    """The run's settings: the binary defaults, with the file's keys on top.

    Raises:
        ConfigError: an unreadable file, an unknown key or a bad value (one line naming the
            file and the key).
    """
    if path is None:
        return build_binary_config(None, {})
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the run configuration: {exc}") from exc
    options: dict[str, Any] = {}
    for key, value in data.items():
        if key not in _FILE_KEYS:
            raise ConfigError(
                f"{path}: {key}: not a setting of binary paper runs "
                f"(they take {', '.join(_FILE_KEYS)})"
            )
        options[key] = value
    if "risk" in options:
        options["risk"] = _risk_limits(path, options["risk"])
    try:
        return build_binary_config(None, options)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _risk_limits(path: Path, table: object) -> RiskLimits:
    if not isinstance(table, Mapping) or set(table) - {"limits"}:
        raise ConfigError(f"{path}: risk: use a [risk.limits] table")
    try:
        return RiskLimits(**dict(table.get("limits", {})))
    except (ValidationError, TypeError) as exc:
        first = str(exc).splitlines()
        raise ConfigError(f"{path}: risk.limits: {' '.join(first[:3])}") from exc


def replay_window(start: str, end: str) -> tuple[datetime, datetime]:
    """START and END as UTC instants; a bare END date is the whole day.

    Raises:
        ConfigError: a date that cannot be read, or START after END.
    """
    try:
        first = pd.Timestamp(start)
        last = pd.Timestamp(end)
    except ValueError as exc:
        raise ConfigError(f"--replay {start} {end}: use dates such as 2026-01-05") from exc
    first = first.tz_localize("UTC") if first.tzinfo is None else first.tz_convert("UTC")
    last = last.tz_localize("UTC") if last.tzinfo is None else last.tz_convert("UTC")
    if len(end.strip()) <= len("2026-01-05"):
        last = last + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
    if first > last:
        raise ConfigError(f"--replay {start} {end}: START is after END")
    return first.to_pydatetime(), last.to_pydatetime()
