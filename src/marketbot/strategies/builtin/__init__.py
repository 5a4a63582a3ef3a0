"""The built-in strategies."""

from marketbot.strategies.builtin.binary_momentum import BinaryMomentum
from marketbot.strategies.builtin.mean_reversion import MeanReversion
from marketbot.strategies.builtin.momentum import Momentum
from marketbot.strategies.builtin.polymarket_arbitrage import PolymarketArbitrage
from marketbot.strategies.builtin.sma_crossover import SmaCrossover

__all__ = ["BinaryMomentum", "MeanReversion", "Momentum", "PolymarketArbitrage", "SmaCrossover"]
