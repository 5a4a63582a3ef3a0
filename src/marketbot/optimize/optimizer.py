"""The strategy optimiser: evaluate a parameter grid and report which parameters to trust.

``StrategyOptimizer(...).optimize_strategy(name, param_ranges, metric="sharpe", ...)`` is the
seed's API. Every combination is backtested with the same engine and cost defaults as
``run_backtest``; the bars are validated and cut once, each combination runs the compiled
kernel, and only scalar metrics are kept per combination (memory stays flat however large
the grid). Combinations run on worker threads: the kernel and the indicators release the
GIL, so both cores work.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from marketbot.backtest.config import BacktestConfig, ExitRules, parse_duration_seconds
from marketbot.backtest.engine import BacktestingEngine, DateLike, TradingWindow, _parse_range
from marketbot.backtest.portfolio import PortfolioRules
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import ConfigError, DataError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.core.risk_limits import RiskLimits
from marketbot.optimize.grid import ParameterGrid, expand_grid, is_minimised
from marketbot.strategies.base import Strategy
from marketbot.strategies.loader import StrategySpec, load_strategy

if TYPE_CHECKING:
    pass

LOG = logging.getLogger("marketbot.optimize")
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class OptimizationResult:
    """The outcome of an optimisation.

    Attributes:
        strategy: The strategy's name.
        metric: The metric optimised.
        minimise: True for drawdown metrics (smaller is better).
        best_params: The winning combination (ties go to the first in grid order).
        best_metric: Its metric value.
        results: One row per combination, in grid order: its parameters, every metric, and
            ``eligible`` (False when it had fewer trades than ``min_trades``).
        skipped: Combinations the strategy rejected (constraints such as fast >= slow).
        symbol: What was optimised on (a symbol, ``a,b`` for a universe, or ``data``).
        method: ``grid`` or ``optuna``.
        diagnostics: Overfitting checks and other extras (deflated Sharpe, PBO...).
    """

    strategy: str
    metric: str
    minimise: bool
    best_params: dict[str, Any]
    best_metric: float
    results: pd.DataFrame
    skipped: int = 0
    symbol: str = "data"
    method: str = "grid"
    diagnostics: dict[str, Any] = field(default_factory=dict)

    def ranked(self) -> pd.DataFrame:
        """Eligible combinations, best first (ties keep grid order)."""
        eligible = self.results[self.results["eligible"]]
        return eligible.sort_values(self.metric, ascending=self.minimise, kind="stable")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: best parameters, metric, and every row (inf as null)."""
        rows = [
            {str(k): _json_value(v) for k, v in row.items()}
            for row in self.results.to_dict("records")
        ]
        return {
            "strategy": self.strategy,
            "symbol": self.symbol,
            "method": self.method,
            "metric": self.metric,
            "minimise": self.minimise,
            "best_params": self.best_params,
            "best_metric": _json_value(self.best_metric),
            "skipped": self.skipped,
            "diagnostics": {k: _json_value(v) for k, v in self.diagnostics.items()},
            "results": rows,
        }


def _json_value(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return value


@dataclass(frozen=True)
class Evaluation:
    """What to evaluate combinations on: a strategy, the data and the run settings."""

    strategy: Strategy
    config: BacktestConfig
    window: TradingWindow | None = None
    frames: Mapping[str, pd.DataFrame] | None = None
    rules: PortfolioRules | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def metrics(self, params: Mapping[str, Any]) -> dict[str, float | int]:
        """Backtest one combination and return its metrics."""
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


class StrategyOptimizer:
    """Finds good parameters for a strategy and says how far to trust them.

    Args:
        engine: Where stored data comes from (and its database, where runs are saved);
            default: a BacktestingEngine on the configured database, opened on first use.
        jobs: Worker threads for the grid (default: the machine's cores).
    """

    def __init__(self, engine: BacktestingEngine | None = None, *, jobs: int | None = None):
        self.engine = engine or BacktestingEngine()
        self.jobs = max(1, jobs or os.cpu_count() or 1)

    def optimize_strategy(
        self,
        strategy_name: StrategySpec,
        param_ranges: Mapping[str, Sequence[object]],
        metric: str = "sharpe",
        *,
        symbol: str | None = None,
        symbols: Sequence[str] | None = None,
        data: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
        start_date: DateLike = None,
        end_date: DateLike = None,
        method: str = "grid",
        min_trades: int = 0,
        fee: float = 0.002,
        slippage: float = 0.001,
        cash: float = 10_000,
        timeframe: str | None = None,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        trailing_stop: float | None = None,
        max_hold: float | str | timedelta | None = None,
        risk: RiskLimits | None = None,
        max_open_positions: int | None = None,
        save: bool | None = None,
        progress: ProgressCallback | None = None,
    ) -> OptimizationResult:
        """Evaluate every combination of ``param_ranges`` and pick the best by ``metric``.

        Args:
            strategy_name: A built-in name, a Strategy class or instance, or ``file.py:Class``.
            param_ranges: Values per parameter, e.g. ``{'fast': [5, 10], 'slow': [50, 100]}``.
            metric: Any metric key; drawdowns are minimised, the rest maximised.
            symbol: Stored symbol to optimise on (one of symbol, symbols and data).
            symbols: A stored universe: each combination is a portfolio backtest.
            data: An OHLCV frame, or a mapping of symbol to frame for a universe.
            start_date: First bar traded (earlier bars feed the warm-up).
            end_date: Last bar traded.
            method: ``grid`` (every combination).
            min_trades: Fewer trades than this make a combination ineligible to win.
            fee: Fee per fill (fraction), as in ``run_backtest``.
            slippage: Slippage per fill (fraction).
            cash: Starting cash.
            timeframe: Stored timeframe (default as in ``run_backtest``).
            stop_loss: Stop-loss fraction for every combination.
            take_profit: Take-profit fraction.
            trailing_stop: Trailing-stop fraction.
            max_hold: Longest hold.
            risk: Risk limits, applied as in ``run_backtest``.
            max_open_positions: Portfolio slots for a universe.
            save: Store the run (default: when the data came from the store).
            progress: Called as ``progress(done, total)`` while combinations finish.

        Raises:
            ConfigError: an unknown metric or method, an empty or invalid range, or bad
                settings; all before any backtest runs.
            DataError: no combination had ``min_trades`` trades, or no usable data.
        """
        if metric not in METRIC_KEYS:
            raise ConfigError(f"unknown metric {metric!r} (metrics: {', '.join(METRIC_KEYS)})")
        if method != "grid":
            raise ConfigError(f"unknown method {method!r}: use 'grid'")
        if min_trades < 0:
            raise ConfigError(f"min_trades={min_trades}: must be >= 0")
        strategy = load_strategy(strategy_name)
        grid = expand_grid(strategy, param_ranges)
        config = BacktestConfig(
            fee_rate=fee,
            slippage_rate=slippage,
            initial_cash=cash,
            exits=ExitRules(
                stop_loss=stop_loss,
                take_profit=take_profit,
                trailing_stop=trailing_stop,
                max_hold_seconds=parse_duration_seconds(max_hold, name="max_hold"),
            ),
            risk=risk,
        )
        evaluation, label = self._evaluation(
            strategy, config, symbol, symbols, data, start_date, end_date, timeframe,
            PortfolioRules(max_open_positions=max_open_positions),
        )  # fmt: skip
        rows = self.evaluate(evaluation, grid.combinations, progress=progress)
        result = select_best(strategy.name, grid, rows, metric, min_trades=min_trades, symbol=label)
        LOG.info(
            "optimised %s on %s: %d combinations (%d skipped), best %s = %s at %s",
            strategy.name, label, len(grid), grid.skipped, metric, result.best_metric,
            result.best_params,
        )  # fmt: skip
        if save if save is not None else data is None:
            from marketbot.store.optimizations import OptimizationRunRepository

            OptimizationRunRepository(self.engine.database).save(result.to_dict())
        return result

    def evaluate(
        self,
        evaluation: Evaluation,
        combinations: Sequence[Mapping[str, Any]],
        *,
        progress: ProgressCallback | None = None,
    ) -> list[dict[str, float | int]]:
        """Metrics of each combination, in the order given, on ``self.jobs`` threads."""
        total = len(combinations)
        done = 0
        results: list[dict[str, float | int]] = []
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for metrics in pool.map(evaluation.metrics, combinations):
                results.append(metrics)
                done += 1
                if progress is not None:
                    progress(done, total)
        return results

    def _evaluation(
        self,
        strategy: Strategy,
        config: BacktestConfig,
        symbol: str | None,
        symbols: Sequence[str] | None,
        data: pd.DataFrame | Mapping[str, pd.DataFrame] | None,
        start_date: DateLike,
        end_date: DateLike,
        timeframe: str | None,
        rules: PortfolioRules,
    ) -> tuple[Evaluation, str]:
        start, end = _parse_range(start_date, end_date)
        if sum(x is not None for x in (symbol, symbols, data)) != 1:
            raise ConfigError("give exactly one of symbol=, symbols= or data=")
        if symbols is not None or isinstance(data, Mapping):
            frames = self._frames(symbols, data, timeframe, end)
            return (
                Evaluation(strategy, config, frames=frames, rules=rules, start=start, end=end),
                ",".join(frames),
            )
        if symbol is not None:
            frame = self.engine.load_stored(symbol, timeframe=timeframe, source=None, end=end)[2]
            label = symbol
        else:
            frame = normalize_ohlcv(data, where="data")  # type: ignore[arg-type]  # a frame
            label = "data"
        window = TradingWindow.of(frame, start=start, end=end, label=label)
        return Evaluation(strategy, config, window=window), label

    def _frames(
        self,
        symbols: Sequence[str] | None,
        data: pd.DataFrame | Mapping[str, pd.DataFrame] | None,
        timeframe: str | None,
        end: pd.Timestamp | None,
    ) -> dict[str, pd.DataFrame]:
        if isinstance(data, Mapping):
            return {name: normalize_ohlcv(frame, where=name) for name, frame in data.items()}
        names = list(dict.fromkeys(symbols or ()))
        if not names:
            raise ConfigError("symbols= is empty: name at least one stored symbol")
        return {
            name: self.engine.load_stored(name, timeframe=timeframe, source=None, end=end)[2]
            for name in names
        }


def select_best(
    strategy: str,
    grid: ParameterGrid,
    rows: Iterable[Mapping[str, float | int]],
    metric: str,
    *,
    min_trades: int = 0,
    symbol: str = "data",
    method: str = "grid",
) -> OptimizationResult:
    """Assemble the results table and pick the best eligible row (first in grid order on ties).

    Raises:
        DataError: no combination reached ``min_trades`` trades.
    """
    table = pd.DataFrame(
        [
            {**{name: params[name] for name in grid.names}, **row}
            for params, row in zip(grid.combinations, rows, strict=True)
        ]
    )
    table["eligible"] = table["num_trades"] >= min_trades
    minimise = is_minimised(metric)
    eligible = table[table["eligible"]]
    if eligible.empty:
        raise DataError(
            f"no combination made at least {min_trades} trades "
            f"(most: {int(table['num_trades'].max())}); lower min_trades or widen the ranges"
        )
    values = eligible[metric]
    best_position = int(values.to_numpy().argmin() if minimise else values.to_numpy().argmax())
    best_position = int(eligible.index[best_position])
    return OptimizationResult(
        strategy=strategy,
        metric=metric,
        minimise=minimise,
        best_params=dict(grid.combinations[best_position]),
        best_metric=float(table[metric].to_numpy()[best_position]),
        results=table,
        skipped=grid.skipped,
        symbol=symbol,
        method=method,
    )
