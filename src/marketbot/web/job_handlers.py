"""What each kind of job does, run by the worker process (never inside a request).

Each handler validates its stored request again (the model is the contract), reports
progress through :class:`JobRun` (which also stops a cancelled job) and returns what it made.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from marketbot.web.schemas import BacktestRequest
from marketbot.web.strategies import strategy_spec
from marketbot.web.worker import JobHandler, JobRun

if TYPE_CHECKING:
    from marketbot.backtest.result import BacktestResult


def _param_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def backtest_result(run: JobRun, request: BacktestRequest) -> tuple[BacktestResult, str, str]:
    """Backtest a request on stored bars: the result and the (source, timeframe) it used."""
    from marketbot.backtest.engine import BacktestingEngine
    from marketbot.backtest.run_config import load_run_config
    from marketbot.store.prices import PriceRepository
    from marketbot.strategies.loader import load_strategy

    spec = strategy_spec(request.strategy, run.settings.data_dir)
    source, timeframe = PriceRepository(run.database).resolve_series(
        request.symbol, timeframe=request.timeframe, source=request.source
    )
    run_config = load_run_config(
        None,
        settings=run.settings,
        bot_defaults=request.bot_defaults,
        overrides={
            "fee": request.fee,
            "slippage": request.slippage,
            "cash": request.cash,
            "stop_loss": request.stop_loss,
            "take_profit": request.take_profit,
            "trailing_stop": request.trailing_stop,
            "max_hold": request.max_hold,
            "risk": request.risk or None,
        },
    )
    risk_name = load_strategy(spec).name if run_config.risk is not None else None
    names = list(dict.fromkeys([request.symbol, *request.symbols]))
    portfolio = len(names) > 1
    result = BacktestingEngine(run.database).run_backtest(
        spec,
        _day(request.start),
        _day(request.end),
        symbol=None if portfolio else request.symbol,
        symbols=names if portfolio else None,
        params={key: _param_text(value) for key, value in request.params.items()},
        timeframe=timeframe,
        source=request.source if portfolio else source,
        config=run_config.backtest_config(risk_name),
        max_open_positions=request.max_positions,
        max_exposure=request.max_exposure,
        portfolio_stop=request.portfolio_stop,
        save=False,
    )
    return result, source, timeframe


def save_result(run: JobRun, result: BacktestResult, source: str, timeframe: str) -> int:
    """Store a finished backtest as a run; returns its id."""
    from marketbot.store.runs import BacktestRunRepository, record_from_result

    record = record_from_result(result, timeframe=timeframe, source=source)
    return BacktestRunRepository(run.database).save(record)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def run_backtest_job(run: JobRun) -> Mapping[str, Any]:
    """One backtest, saved as a run: ``{"run_id": n, "url": "/backtests/n"}``."""
    request = BacktestRequest.model_validate(run.params)
    run.progress(0.05, "loading the compiled kernel", status="compiling")
    import marketbot.backtest.engine  # noqa: F401 - loads (or compiles) the kernel here

    run.progress(0.2, f"backtesting {request.strategy} on {request.symbol}")
    result, source, timeframe = backtest_result(run, request)
    run.progress(0.9, "saving the run")
    run_id = save_result(run, result, source, timeframe)
    return {"run_id": run_id, "url": f"/backtests/{run_id}"}


def _handlers() -> dict[str, JobHandler]:
    from marketbot.web.job_handlers_more import MORE_HANDLERS

    return {"backtest": run_backtest_job, **MORE_HANDLERS}


HANDLERS: Mapping[str, JobHandler] = _handlers()
