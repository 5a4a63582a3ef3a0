"""marketbot: test trading strategies on real price history before money is at risk.

The public API is importable from here and loaded lazily, so ``import marketbot`` stays fast:

    from marketbot import BacktestingEngine
    result = BacktestingEngine().run_backtest("sma_crossover", data=frame)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from marketbot._compile_cache import configure_numba_cache

# Before any kernel compiles: a cache folder per version of the compiled sources, so a warm
# cache never runs an inlined helper's old code (see _compile_cache).
configure_numba_cache()

if TYPE_CHECKING:
    from marketbot.backtest.binary_config import BinaryConfig
    from marketbot.backtest.binary_markets import BinaryMarkets
    from marketbot.backtest.config import BacktestConfig, ExitRules
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.backtest.lookahead import LookaheadReport, check_lookahead
    from marketbot.backtest.result import BacktestResult
    from marketbot.config import Settings, load_settings
    from marketbot.core.errors import (
        ConfigError,
        DataError,
        ExchangeError,
        MarketbotError,
        StrategyError,
        TemporaryError,
    )
    from marketbot.core.recommendation import Recommendation, RecommendationThresholds
    from marketbot.core.risk_limits import RiskConfig, RiskLimits
    from marketbot.net.rate_limiter import PriorityRateLimiter
    from marketbot.optimize.optimizer import OptimizationResult, StrategyOptimizer
    from marketbot.risk.enforcer import RiskDecision, RiskEnforcer
    from marketbot.risk.exit_manager import ExitManager, ExitRuleSet, Position
    from marketbot.risk.portfolio_manager import PortfolioManager
    from marketbot.risk.rebalancer import Rebalancer
    from marketbot.sources.collector import HistoricalDataCollector
    from marketbot.sources.polymarket import PolymarketCollector
    from marketbot.strategies.base import Parameter, Signals, Strategy
    from marketbot.strategies.binary import BinarySignals, BinaryStrategy
    from marketbot.strategies.loader import builtin_strategies, load_strategy

__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "BacktestingEngine",
    "BinaryConfig",
    "BinaryMarkets",
    "BinarySignals",
    "BinaryStrategy",
    "ConfigError",
    "DataError",
    "ExchangeError",
    "ExitManager",
    "ExitRuleSet",
    "ExitRules",
    "HistoricalDataCollector",
    "LookaheadReport",
    "MarketbotError",
    "OptimizationResult",
    "Parameter",
    "PolymarketCollector",
    "PortfolioManager",
    "Position",
    "PriorityRateLimiter",
    "Rebalancer",
    "Recommendation",
    "RecommendationThresholds",
    "RiskConfig",
    "RiskDecision",
    "RiskEnforcer",
    "RiskLimits",
    "Settings",
    "Signals",
    "Strategy",
    "StrategyError",
    "StrategyOptimizer",
    "TemporaryError",
    "builtin_strategies",
    "check_lookahead",
    "load_settings",
    "load_strategy",
]

_HOMES = {
    "BacktestConfig": "marketbot.backtest.config",
    "ExitRules": "marketbot.backtest.config",
    "BacktestingEngine": "marketbot.backtest.engine",
    "BinaryConfig": "marketbot.backtest.binary_config",
    "BinaryMarkets": "marketbot.backtest.binary_markets",
    "BinarySignals": "marketbot.strategies.binary",
    "BinaryStrategy": "marketbot.strategies.binary",
    "LookaheadReport": "marketbot.backtest.lookahead",
    "check_lookahead": "marketbot.backtest.lookahead",
    "BacktestResult": "marketbot.backtest.result",
    "Settings": "marketbot.config",
    "load_settings": "marketbot.config",
    "ConfigError": "marketbot.core.errors",
    "DataError": "marketbot.core.errors",
    "ExchangeError": "marketbot.core.errors",
    "MarketbotError": "marketbot.core.errors",
    "StrategyError": "marketbot.core.errors",
    "TemporaryError": "marketbot.core.errors",
    "Recommendation": "marketbot.core.recommendation",
    "RecommendationThresholds": "marketbot.core.recommendation",
    "RiskConfig": "marketbot.core.risk_limits",
    "RiskLimits": "marketbot.core.risk_limits",
    "RiskDecision": "marketbot.risk.enforcer",
    "RiskEnforcer": "marketbot.risk.enforcer",
    "ExitManager": "marketbot.risk.exit_manager",
    "ExitRuleSet": "marketbot.risk.exit_manager",
    "Position": "marketbot.risk.exit_manager",
    "PortfolioManager": "marketbot.risk.portfolio_manager",
    "Rebalancer": "marketbot.risk.rebalancer",
    "PriorityRateLimiter": "marketbot.net.rate_limiter",
    "HistoricalDataCollector": "marketbot.sources.collector",
    "PolymarketCollector": "marketbot.sources.polymarket",
    "OptimizationResult": "marketbot.optimize.optimizer",
    "StrategyOptimizer": "marketbot.optimize.optimizer",
    "Parameter": "marketbot.strategies.base",
    "Signals": "marketbot.strategies.base",
    "Strategy": "marketbot.strategies.base",
    "builtin_strategies": "marketbot.strategies.loader",
    "load_strategy": "marketbot.strategies.loader",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'marketbot' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
