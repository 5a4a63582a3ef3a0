"""Strategies: the base contract, built-ins, indicators and the loader for users' classes."""

from marketbot.strategies.base import Parameter, Signals, Strategy
from marketbot.strategies.loader import builtin_strategies, load_strategy

__all__ = ["Parameter", "Signals", "Strategy", "builtin_strategies", "load_strategy"]
