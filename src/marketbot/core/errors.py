"""The exception taxonomy: one root, and a class for each way the user must react.

Risk denials are not here: a refused trade is a result with a reason, not an exception.
"""

from __future__ import annotations


class MarketbotError(Exception):
    """Root of every error marketbot raises on purpose."""


class ConfigError(MarketbotError):
    """A setting, parameter or argument is wrong; the message says which and why."""


class DataError(MarketbotError):
    """Price data is missing or malformed; the message names the problem and where it is."""


class StrategyError(MarketbotError):
    """A strategy is unknown, cannot be loaded, or failed while computing its signals."""


class TemporaryError(MarketbotError):
    """A transient failure (rate limit, timeout, 5xx) that is worth retrying with backoff."""


class ExchangeError(MarketbotError):
    """An exchange refused or failed an operation for a reason a retry will not fix."""
