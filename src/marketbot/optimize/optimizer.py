"""The strategy optimiser: search a parameter space and report which parameters to trust.

``StrategyOptimizer(...).optimize_strategy(name, param_ranges, metric="sharpe", ...)`` is the
seed's API. Every combination is backtested with the same engine and cost defaults as
``run_backtest``; the bars are validated and cut once, each combination runs the compiled
kernel, and only scalar metrics are kept per combination (memory stays flat however large
the grid). ``method="grid"`` evaluates every combination, in chunks on an executor (worker
threads by default, local processes or a Dask cluster: executors.py); ``method="optuna"``
spends a budget of trials where TPE expects the best (smart_search.py). Both give the same
result shape.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

import pandas as pd

from marketbot.backtest.binary_config import BinaryConfig, build_binary_config
from marketbot.backtest.binary_markets import BinaryMarkets
from marketbot.backtest.binary_run import MarketChoice, load_binary_strategy, select_markets
from marketbot.backtest.config import BacktestConfig
from marketbot.backtest.engine import BacktestingEngine, TradingWindow, parse_date_range
from marketbot.backtest.options import (
    DataSelection,
    DateLike,
    RunOptions,
    build_config,
    build_rules,
)
from marketbot.backtest.portfolio import PortfolioRules
from marketbot.core.bars import normalize_ohlcv
from marketbot.core.errors import ConfigError
from marketbot.core.metrics import METRIC_KEYS
from marketbot.optimize.diagnostics import (
    DailySums,
    diagnostics_from_daily_sums,
    overfitting_diagnostics,
)
from marketbot.optimize.evaluation import Evaluation
from marketbot.optimize.executors import (
    Executor,
    ThreadExecutor,
    evaluate_in_chunks,
)
from marketbot.optimize.fast_grid import run_fast_grid
from marketbot.optimize.grid import ParameterGrid, expand_grid
from marketbot.optimize.overfitting import PBO_TOP_COMBINATIONS
from marketbot.optimize.result import OptimizationResult, select_best
from marketbot.optimize.smart_search import (
    Dimension,
    RangeSpec,
    StudySettings,
    TrialRunner,
    grid_axes,
    run_study,
    search_space,
)
from marketbot.strategies.base import Strategy
from marketbot.strategies.binary import BinaryStrategy
from marketbot.strategies.loader import StrategySpec, load_strategy

__all__ = ["Evaluation", "OptimizationResult", "StrategyOptimizer", "select_best"]

LOG = logging.getLogger("marketbot.optimize")
ProgressCallback = Callable[[int, int], None]


class StrategyOptimizer:
    """Finds good parameters for a strategy and says how far to trust them.

    Args:
        engine: Where stored data comes from (and its database, where runs are saved);
            default: a BacktestingEngine on the configured database, opened on first use.
        jobs: Worker threads for the grid (default: the machine's cores).
        executor: Where the grid's chunks run (default: ``ThreadExecutor(jobs)``); see
            executors.py for local processes and Dask.
    """

    def __init__(
        self,
        engine: BacktestingEngine | None = None,
        *,
        jobs: int | None = None,
        executor: Executor | None = None,
    ):
        self.engine = engine or BacktestingEngine()
        self.jobs = max(1, jobs or os.cpu_count() or 1)
        self.executor: Executor = executor or ThreadExecutor(self.jobs)

    def optimize_strategy(  # noqa: PLR0913 - the seed's keywords; config= carries settings
        self,
        strategy_name: StrategySpec,
        param_ranges: Mapping[str, RangeSpec],
        metric: str = "sharpe",
        *,
        symbol: str | None = None,
        symbols: Sequence[str] | None = None,
        data: pd.DataFrame | Mapping[str, pd.DataFrame] | BinaryMarkets | None = None,
        market: str | None = None,
        markets: MarketChoice = None,
        start_date: DateLike = None,
        end_date: DateLike = None,
        method: str = "grid",
        trials: int = 100,
        seed: int | None = None,
        storage: str | None = None,
        study_name: str | None = None,
        min_trades: int = 0,
        timeframe: str | None = None,
        config: BacktestConfig | BinaryConfig | None = None,
        rules: PortfolioRules | None = None,
        save: bool | None = None,
        progress: ProgressCallback | None = None,
        executor: Executor | None = None,
        diagnostics: bool = True,
        top_k: int = PBO_TOP_COMBINATIONS,
        **options: Unpack[RunOptions],
    ) -> OptimizationResult:
        """Search ``param_ranges`` and pick the best combination by ``metric``.

        Args:
            strategy_name: A built-in name, a Strategy class or instance, or ``file.py:Class``.
            param_ranges: Per parameter, a list of values (``{'fast': [5, 10]}``) or a numeric
                range: ``ParamRange(low, high, step=None)`` or ``{'low':, 'high':, 'step':}``.
                The grid expands ranges (int step 1 by default; a float range needs a step).
            metric: Any metric key; drawdowns are minimised, the rest maximised.
            symbol: Stored symbol to optimise on (one of symbol, symbols and data).
            symbols: A stored universe: each combination is a portfolio backtest.
            data: An OHLCV frame, or a mapping of symbol to frame for a universe; for a
                binary strategy, BinaryMarkets.
            market: A stored binary market (binary strategies).
            markets: Stored binary markets: slugs or ``"all"`` (the default of a binary
                strategy: every stored market with books).
            start_date: First bar traded (earlier bars feed the warm-up).
            end_date: Last bar traded.
            method: ``grid`` (every combination) or ``optuna`` (TPE, ``trials`` backtests).
            trials: Optuna's budget: trials this call adds to the study (grid: unused).
            seed: Optuna sampler seed; the same seed gives the same trials (grid: unused).
            storage: Optuna RDB storage URL (``sqlite:///study.db``) to keep and share the
                study between processes or machines; optuna only.
            study_name: The study's name in ``storage``; optuna only.
            min_trades: Fewer trades than this (and than 1) make a combination ineligible.
                Without an eligible combination the result has ``best_params=None``,
                ``best_metric=nan`` and a ``message`` (it is not saved).
            timeframe: Stored timeframe (default as in ``run_backtest``).
            config: Costs, sizing, exits and risk limits of every combination, as for
                ``run_backtest`` (default: ``BacktestConfig()``).
            rules: Portfolio slots, exposure cap and portfolio stop for a universe.
            save: Store the run (default: when the data came from the store).
            progress: Called as ``progress(done, total)`` while combinations finish.
            executor: Where this grid's chunks run, instead of the optimiser's executor;
                grid only (Optuna's trials run one after another in this process).
            diagnostics: Add the deflated Sharpe ratio of the winner and the probability of
                backtest overfitting of the best ``top_k``, on daily returns: from sums the
                fast grid keeps in its one pass, or (without the fast grid) by re-running
                the ``top_k`` for their equity curves.
            top_k: How many of the best combinations feed the overfitting checks.
            **options: The settings as keywords instead of ``config``/``rules``, exactly as
                ``run_backtest`` takes them (fee, slippage, cash, sizing, size, allow_short,
                stop_loss, take_profit, trailing_stop, trailing_activation, max_hold, risk,
                max_open_positions, max_exposure, portfolio_stop).

        Raises:
            ConfigError: an unknown metric or method, an empty or invalid range, an option
                the method does not use, or bad settings; all before any backtest runs.
            DataError: no usable data.
        """
        _check_options(metric, method, min_trades, storage, study_name, executor)
        strategy = load_strategy(strategy_name)
        binary = (
            isinstance(strategy, BinaryStrategy)
            or market is not None
            or (markets is not None or isinstance(data, BinaryMarkets))
        )
        space = search_space(strategy, param_ranges)
        plan: ParameterGrid | StudySettings = (
            StudySettings(trials, seed, storage, study_name)
            if method == "optuna"
            else expand_grid(strategy, grid_axes(space))
        )
        if binary:
            evaluation, label, described = self._binary_evaluation(
                strategy, config, DataSelection(symbol, symbols, None, start_date, end_date),
                (market, markets, data), options,
            )  # fmt: skip
        else:
            selection = DataSelection(symbol, symbols, data, start_date, end_date, timeframe)  # type: ignore[arg-type]  # not BinaryMarkets here
            run_config = build_config(config, options)  # type: ignore[arg-type]  # OHLCV here
            portfolio_rules = build_rules(rules, options)
            evaluation, label = self._evaluation(strategy, run_config, selection, portfolio_rules)
            described = label
        daily: DailySums | None = None
        if isinstance(plan, StudySettings):
            result = _smart_search(
                evaluation, space, plan, metric, min_trades, (label, described), progress
            )
        else:
            optimizer = self if executor is None else self._with_executor(executor)
            rows, daily = optimizer._evaluate_grid(
                evaluation, plan.combinations, progress, keep_daily=diagnostics
            )
            result = select_best(
                strategy.name, plan, rows, metric, min_trades=min_trades, symbol=label,
                data_description=described,
            )  # fmt: skip
        if diagnostics and int(result.results["eligible"].sum()) >= 2:
            result = _with_diagnostics(result, evaluation, top_k, daily)
        LOG.info(
            "optimised %s on %s by %s: %d rows (%d skipped), best %s = %s at %s",
            strategy.name, label, method, len(result.results), result.skipped, metric,
            result.best_metric, result.best_params,
        )  # fmt: skip
        if result.best_params is not None and (save if save is not None else data is None):
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
        """Metrics of each combination, in the order given.

        On this machine's executor (threads), a strategy with a grid hook
        (``Strategy.grid_signals``; every built-in has one) runs every combination in one
        parallel numba pass that shares the indicators; anything else goes in chunks to
        ``self.executor``. Both give the same numbers (tests/unit/optimize/test_fast_grid.py).
        """
        rows, _ = self._evaluate_grid(evaluation, combinations, progress, keep_daily=False)
        return rows

    def _evaluate_grid(
        self,
        evaluation: Evaluation,
        combinations: Sequence[Mapping[str, Any]],
        progress: ProgressCallback | None,
        *,
        keep_daily: bool,
    ) -> tuple[list[dict[str, float | int]], DailySums | None]:
        """:meth:`evaluate`, and the daily sums of the diagnostics when the fast grid ran."""
        # Only the plain thread executor: a custom one (a subclass too) gets its chunks.
        if evaluation.window is not None and type(self.executor) is ThreadExecutor:
            fast = run_fast_grid(
                evaluation.window,
                evaluation.strategy,
                combinations,
                evaluation.config,
                keep_daily=keep_daily,
                progress=progress,
                threads=self.executor.workers,
            )
            if fast is not None:
                return fast.metrics, fast.daily
        rows = evaluate_in_chunks(self.executor, evaluation, combinations, progress=progress)
        return rows, None

    def _with_executor(self, executor: Executor) -> StrategyOptimizer:
        # A shallow copy shares the engine; only where the chunks run differs.
        clone = copy.copy(self)
        clone.executor = executor
        return clone

    def _evaluation(
        self,
        strategy: Strategy,
        config: BacktestConfig,
        selection: DataSelection,
        rules: PortfolioRules,
    ) -> tuple[Evaluation, str]:
        symbol, symbols, data = selection.symbol, selection.symbols, selection.data
        timeframe = selection.timeframe
        start, end = parse_date_range(selection.start_date, selection.end_date)
        if selection.choices_given != 1:
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

    def _binary_evaluation(
        self,
        strategy: Strategy,
        config: BacktestConfig | BinaryConfig | None,
        selection: DataSelection,
        choice: tuple[str | None, MarketChoice, object],
        options: Mapping[str, Any],
    ) -> tuple[Evaluation, str, str]:
        """A binary strategy's evaluation, the label of its data and how messages name it.

        ``choice`` is ``(market, markets, data)`` as ``optimize_strategy`` got them.
        """
        market, markets, data = choice
        binary = load_binary_strategy(strategy)
        if selection.symbol is not None or selection.symbols is not None:
            raise ConfigError(
                f"{binary.name} trades binary markets: give market= or markets=, not symbol="
            )
        if selection.start_date is not None or selection.end_date is not None:
            raise ConfigError(
                "start and end dates do not apply to binary markets: choose the markets instead"
            )
        binary_config = build_binary_config(config, options)
        chosen = select_markets(lambda: self.engine.database, market, markets, data)
        label = chosen.slugs[0] if len(chosen) == 1 else f"{len(chosen)} markets"
        evaluation = Evaluation(
            binary, BacktestConfig(), markets=chosen, binary_config=binary_config
        )
        return evaluation, label, chosen.describe()

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


def _with_diagnostics(
    result: OptimizationResult, evaluation: Evaluation, top_k: int, daily: DailySums | None
) -> OptimizationResult:
    """The result with its overfitting diagnostics (rows keep their grid-order index).

    From the grid pass's daily sums when the fast grid kept them; otherwise (another
    executor, no grid hook, Optuna, a portfolio, or a day whose return is not finite) the
    best ``top_k`` combinations are backtested again for their equity curves.
    """
    if daily is not None:
        found = diagnostics_from_daily_sums(
            result.results, daily, result.metric, minimise=result.minimise, top_k=top_k
        )
        if found is not None:
            return dataclasses.replace(result, diagnostics={**result.diagnostics, **found})
    combinations = [
        {**evaluation.strategy.defaults(), **row}
        for row in result.results[list(_parameter_columns(result.results))].to_dict("records")
    ]
    found = overfitting_diagnostics(
        result.results,
        [evaluation.strategy.resolve_params(params) for params in combinations],
        result.metric,
        evaluation.equity_curve,
        minimise=result.minimise,
        top_k=top_k,
    )
    return dataclasses.replace(result, diagnostics={**result.diagnostics, **found})


def _parameter_columns(table: pd.DataFrame) -> list[str]:
    excluded = {*METRIC_KEYS, "eligible", "trial"}
    return [str(column) for column in table.columns if column not in excluded]


def _check_options(
    metric: str,
    method: str,
    min_trades: int,
    storage: str | None,
    study_name: str | None,
    executor: Executor | None,
) -> None:
    if metric not in METRIC_KEYS:
        raise ConfigError(f"unknown metric {metric!r} (metrics: {', '.join(METRIC_KEYS)})")
    if method not in ("grid", "optuna"):
        raise ConfigError(f"unknown method {method!r}: use 'grid' or 'optuna'")
    if min_trades < 0:
        raise ConfigError(f"min_trades={min_trades}: must be >= 0")
    if method == "grid" and (storage is not None or study_name is not None):
        raise ConfigError("storage= and study_name= keep an Optuna study: use method='optuna'")
    if method == "optuna" and executor is not None:
        raise ConfigError(
            "executor= runs the grid's chunks; Optuna's trials run one after another in this "
            "process (to use more processes or machines, share a study through storage=)"
        )


def _smart_search(
    evaluation: Evaluation,
    space: tuple[Dimension, ...],
    settings: StudySettings,
    metric: str,
    min_trades: int,
    labels: tuple[str, str],
    progress: ProgressCallback | None,
) -> OptimizationResult:
    """Run the Optuna study and assemble its trials as the grid's result shape."""
    label, described = labels
    strategy = evaluation.strategy
    setup = {
        "strategy": strategy.name,
        "data": label,
        "metric": metric,
        "min_trades": min_trades,
        **evaluation.describe(),
    }
    runner = TrialRunner(strategy, space, evaluation.metrics, metric, min_trades)
    outcome = run_study(runner, settings, setup=setup, progress=progress)
    if not outcome.rows:
        example = outcome.skip_reasons[0] if outcome.skip_reasons else "no trial finished"
        raise ConfigError(
            f"no valid combination in {settings.trials} trials ({outcome.skipped} rejected by "
            f"the strategy, e.g. {example}): narrow the ranges"
        )
    trials = ParameterGrid(
        outcome.names, outcome.combinations, outcome.skipped, outcome.skip_reasons
    )
    result = select_best(
        strategy.name, trials, outcome.rows, metric, min_trades=min_trades, symbol=label,
        trial_numbers=outcome.numbers, data_description=described,
    )  # fmt: skip
    if settings.storage is None:
        return result
    return dataclasses.replace(result, diagnostics={"study_name": outcome.study_name})
