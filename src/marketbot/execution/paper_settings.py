"""What a paper account is: its costs, starting cash, bracket rules and quote currency."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.step_nb import KernelSettings
from marketbot.core.errors import ConfigError

__all__ = ["PaperSettings"]


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """What a paper account is: its costs, starting cash and bracket rules.

    Attributes:
        config: Fee, slippage, ``initial_cash`` (the starting quote balance) and ``exits``
            (the bracket of every position). Sizing and risk limits are the bot's: the venue
            buys what an entry's quote amount pays for. Long only: ``allow_short`` must be
            off or unset.
        quote: The quote currency's code (balances, fees).
    """

    config: BacktestConfig
    quote: str = "USD"

    def __post_init__(self) -> None:
        if self.config.allow_short:
            raise ConfigError("paper exchange: long only, so allow_short must be off")
        if not isinstance(self.quote, str) or not self.quote.strip():
            raise ConfigError(f"paper exchange: quote={self.quote!r}: give a currency code")

    def kernel_settings(self) -> KernelSettings:
        """The step core's settings (long only)."""
        return self.config.kernel_settings(allow_short=False)

    def to_json(self) -> str:
        """Canonical JSON of the settings (what the ledger stores and hashes)."""
        return json.dumps({"config": self.config.to_dict(), "quote": self.quote}, sort_keys=True)

    def digest(self) -> str:
        """SHA-256 of :meth:`to_json`: a ledger made with another is refused."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()
