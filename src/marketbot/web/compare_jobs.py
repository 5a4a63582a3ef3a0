"""Strategy comparison: names are backtested in one job and saved as runs, then compared.

Items are strategy names or ids of saved runs. Runs given by id fix the data (source, symbol,
timeframe, period) and the names are backtested on it; without runs the request's symbol and
period do. Runs on other data are refused by name (``compare_runs``' own check).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from marketbot.backtest.comparison import check_same_data
from marketbot.core.errors import DataError
from marketbot.store.database import Database
from marketbot.store.runs import BacktestRunRepository, BacktestRunSummary
from marketbot.web.errors import FieldError, NotFoundError
from marketbot.web.schemas import BacktestRequest, CompareRequest
from marketbot.web.worker import JobRun


def split_items(items: Sequence[str]) -> tuple[list[int], list[str]]:
    """Run ids (all digits) and strategy names, each in the order given."""
    ids = [int(item) for item in items if item.strip().isdigit() and len(item.strip()) < 19]
    names = [item for item in items if not (item.strip().isdigit() and len(item.strip()) < 19)]
    return ids, names


def given_runs(database: Database, ids: Sequence[int]) -> list[BacktestRunSummary]:
    """The runs named by id; NotFoundError for an unknown one; refused when on other data."""
    repository = BacktestRunRepository(database)
    runs = []
    for run_id in ids:
        try:
            runs.append(repository.get_summary(run_id))
        except DataError as exc:
            raise NotFoundError(str(exc)) from None
    if len(runs) > 1:
        try:
            check_same_data(runs)
        except Exception as exc:
            raise FieldError("body.items", str(exc)) from None
    return runs


def run_compare_job(run: JobRun) -> Mapping[str, Any]:
    """Backtest every named strategy on the common data, save them, check they compare."""
    from marketbot.web.job_handlers import backtest_result, save_result

    request = CompareRequest.model_validate(run.params)
    ids, names = split_items(request.items)
    runs = given_runs(run.database, ids)
    new_ids: list[int] = []
    run.progress(0.05, "loading the compiled kernel", status="compiling")
    for number, name in enumerate(names):
        run.progress(0.1 + 0.8 * number / max(1, len(names)), f"backtesting {name}")
        backtest = _backtest_request(request, name, runs[0] if runs else None)
        result, source, timeframe = backtest_result(run, backtest)
        new_ids.append(save_result(run, result, source, timeframe))
    order = {name: new_id for name, new_id in zip(names, new_ids, strict=True)}
    all_ids = [order[item] if item in order else int(item) for item in request.items]
    check_same_data(given_runs(run.database, all_ids))
    joined = ",".join(str(run_id) for run_id in all_ids)
    return {"runs": all_ids, "url": f"/strategy_comparison?runs={joined}"}


def _backtest_request(
    request: CompareRequest, name: str, reference: BacktestRunSummary | None
) -> BacktestRequest:
    if reference is not None:
        return BacktestRequest(
            strategy=name,
            symbol=reference.symbol,
            timeframe=reference.timeframe,
            source=reference.source,
            start=reference.start.date(),
            end=reference.end.date(),
            fee=request.fee,
            slippage=request.slippage,
        )
    if request.symbol is None:
        raise FieldError("body.symbol", "name the symbol to compare the strategies on")
    return BacktestRequest(
        strategy=name,
        symbol=request.symbol,
        timeframe=request.timeframe,
        source=request.source,
        start=request.start,
        end=request.end,
        fee=request.fee,
        slippage=request.slippage,
    )
