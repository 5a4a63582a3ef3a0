"""The optimisation job: a grid search of one strategy, saved as an optimisation run.

With in-sample and out-of-sample lengths it also runs the walk-forward validation and keeps
its windows and (thinned) out-of-sample equity in the saved run's summary, for the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from marketbot.core.errors import ConfigError
from marketbot.web.errors import FieldError
from marketbot.web.schemas import OptimizeRequest
from marketbot.web.strategies import strategy_spec
from marketbot.web.worker import JobRun

MAX_EQUITY_POINTS = 2000


def parse_grid(grid: Mapping[str, str]) -> dict[str, Any]:
    """``V1,V2`` lists and ``LOW:HIGH[:STEP]`` ranges as the optimiser's parameter ranges."""
    from marketbot.optimize.smart_search import ParamRange

    ranges: dict[str, Any] = {}
    for name, text in grid.items():
        try:
            if ":" in text:
                ranges[name] = ParamRange.parse(text)
            else:
                values = [part.strip() for part in text.split(",") if part.strip()]
                if not values:
                    raise ConfigError("no values")
                ranges[name] = values
        except ConfigError as exc:
            raise FieldError(
                f"body.grid.{name}", f"use V1,V2,... or LOW:HIGH[:STEP] ({exc})"
            ) from None
    return ranges


def _window(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _equity_json(equity: Any) -> dict[str, list[Any]]:
    count = len(equity)
    keep = np.unique(np.linspace(0, count - 1, min(count, MAX_EQUITY_POINTS)).astype(int))
    times = [int(t.timestamp()) for t in equity.index[keep]]
    values = [float(v) if np.isfinite(v) else None for v in equity.to_numpy()[keep]]
    return {"time": times, "value": values}


def run_optimize_job(run: JobRun) -> Mapping[str, Any]:
    """Search the grid, save the run (with walk-forward results when asked): its id."""
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.optimize.optimizer import StrategyOptimizer
    from marketbot.optimize.walk_forward import walk_forward
    from marketbot.store.optimizations import OptimizationRunRepository
    from marketbot.store.prices import PriceRepository

    request = OptimizeRequest.model_validate(run.params)
    spec = strategy_spec(request.strategy, run.settings.data_dir)
    ranges = parse_grid(request.grid)
    source, timeframe = PriceRepository(run.database).resolve_series(
        request.symbol, timeframe=request.timeframe, source=request.source
    )
    run.progress(0.02, "loading the compiled kernels", status="compiling")
    optimizer = StrategyOptimizer(BacktestingEngine(run.database), jobs=1)
    share = 0.5 if request.in_sample else 0.9
    run.progress(0.05, f"searching {request.strategy}'s grid on {request.symbol}")

    def advance(done: int, total: int) -> None:
        run.progress(0.05 + share * done / max(1, total), f"combination {done} of {total}")

    start = None if request.start is None else request.start.isoformat()
    end = None if request.end is None else request.end.isoformat()
    result = optimizer.optimize_strategy(
        spec, ranges, request.metric, symbol=request.symbol, timeframe=timeframe,
        min_trades=request.min_trades, save=False, progress=advance, start_date=start,
        end_date=end,
    )  # fmt: skip
    summary = result.to_dict()
    summary["symbol"] = request.symbol
    summary["source"] = source
    summary["timeframe"] = timeframe
    if request.in_sample and request.out_of_sample:
        run.progress(0.6, "walk-forward validation")
        walk = walk_forward(
            optimizer, spec, ranges, request.metric, symbol=request.symbol,
            in_sample=_window(request.in_sample), out_of_sample=_window(request.out_of_sample),
            timeframe=timeframe, min_trades=request.min_trades,
            progress=lambda done, total: run.progress(0.6 + 0.35 * done / max(1, total),
                                                      f"window {done} of {total}"),
            start_date=start, end_date=end,
        )  # fmt: skip
        summary["walk_forward"] = {**walk.to_dict(), "equity": _equity_json(walk.equity)}
    run.progress(0.97, "saving the run")
    run_id = OptimizationRunRepository(run.database).save(summary)
    return {"optimization_id": run_id, "url": f"/optimizations/{run_id}"}
