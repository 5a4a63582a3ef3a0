"""What combinations are evaluated on: a strategy, the data and the run settings, picklable.

Executors send an :class:`Evaluation` to threads, processes or Dask workers and call
:meth:`Evaluation.chunk_metrics` there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from marketbot.backtest.binary_backtest import simulate_markets
from marketbot.backtest.binary_config import BinaryConfig
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import BacktestingEngine, TradingWindow
from marketbot.backtest.portfolio import PortfolioRules
from marketbot.core.errors import ConfigError
from marketbot.optimize.executors import FileStrategyReference, portable_strategy
from marketbot.strategies.base import Strategy
from marketbot.strategies.binary import BinaryStrategy


@dataclass(frozen=True)
class Evaluation:
    """What to evaluate combinations on: a strategy, the data and the run settings.

    It pickles, so executors can send it to other processes and machines: a strategy loaded
    from ``file.py:Class`` travels as a reference to its file (executors.portable_strategy).
    A binary strategy is evaluated on ``markets`` with ``binary_config`` (``config`` is then
    unused).
    """

    strategy: Strategy
    config: BacktestConfig
    window: TradingWindow | None = None
    frames: Mapping[str, pd.DataFrame] | None = None
    rules: PortfolioRules | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    markets: BinaryMarkets | None = None
    binary_config: BinaryConfig | None = None

    def metrics(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        """Backtest one combination and return its metrics."""
        binary = self._binary()
        if binary is not None:
            strategy, markets, config = binary
            return simulate_markets(strategy, markets, params, config).metrics
        if self.window is not None:
            return self.window.run(self.strategy, params, self.config).metrics
        if self.frames is None or self.rules is None:
            raise ConfigError("an evaluation needs a trading window or portfolio frames")
        result = BacktestingEngine().backtest_portfolio(
            self.strategy,
            self.frames,
            dict(params),
            self.config,
            self.rules,
            start=self.start,
            end=self.end,
        )
        return result.metrics

    def equity_curve(self, params: Mapping[str, Any]) -> pd.Series:
        """Backtest one combination and return its equity curve (for the diagnostics)."""
        binary = self._binary()
        if binary is not None:
            strategy, markets, config = binary
            return simulate_markets(strategy, markets, params, config).equity
        if self.window is not None:
            run = self.window.run(self.strategy, params, self.config)
            return pd.Series(run.output.equity, index=self.window.index)
        if self.frames is None or self.rules is None:
            raise ConfigError("an evaluation needs a trading window or portfolio frames")
        result = BacktestingEngine().backtest_portfolio(
            self.strategy, self.frames, dict(params), self.config, self.rules,
            start=self.start, end=self.end,
        )  # fmt: skip
        return result.equity_curve

    def chunk_metrics(
        self, combinations: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, float | int]]:
        """Metrics of each combination of a chunk, in order (what executors run)."""
        return [self.metrics(params) for params in combinations]

    def describe(self) -> dict[str, str]:
        """What the trials depend on besides the parameters, as text (for a stored study)."""
        if self.markets is not None:
            span = {"markets": ",".join(self.markets.slugs)}
            return {**span, "config": repr(self.binary_config)}
        elif self.window is not None:
            index = self.window.bars.index
            span = {"first_bar": str(index[0]), "last_bar": str(index[-1])}
        else:
            frames = self.frames or {}
            bars = ", ".join(f"{k}: {f.index[0]}..{f.index[-1]}" for k, f in frames.items())
            span = {"start": str(self.start), "end": str(self.end), "bars": bars}
            span["rules"] = repr(self.rules)
        return {**span, "config": repr(self.config)}

    def _binary(self) -> tuple[BinaryStrategy, BinaryMarkets, BinaryConfig] | None:
        """The strategy, markets and settings of a binary evaluation; None for OHLCV."""
        if self.markets is None:
            return None
        if not isinstance(self.strategy, BinaryStrategy) or self.binary_config is None:
            raise ConfigError("markets need a binary strategy and a BinaryConfig")
        return self.strategy, self.markets, self.binary_config

    def __reduce__(self) -> tuple[Any, ...]:
        others = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        strategy = portable_strategy(others.pop("strategy"))
        return (_rebuild_evaluation, (type(self), strategy, others))


def _rebuild_evaluation(
    cls: type[Evaluation], strategy: Strategy | FileStrategyReference, others: dict[str, Any]
) -> Evaluation:
    if isinstance(strategy, FileStrategyReference):
        strategy = strategy.load()
    return cls(strategy=strategy, **others)
