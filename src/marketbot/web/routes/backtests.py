"""Backtests: the list, one run (metrics, verdict, charts), its HTML report, and new runs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from marketbot.core.errors import DataError
from marketbot.store.runs import BacktestRunRepository, BacktestRunSummary, StoredBacktestRun
from marketbot.store.web_queries import count_backtest_runs
from marketbot.web.context import Context, SignedIn, WebContext, page, wants_fragment
from marketbot.web.errors import NotFoundError
from marketbot.web.metrics_view import json_metrics, metric_rows
from marketbot.web.routes.jobs import accepted, job_fragment
from marketbot.web.schemas import BacktestRequest
from marketbot.web.strategies import available_strategies, strategy_spec

router = APIRouter(tags=["backtests"])
pages = APIRouter(include_in_schema=False)

RunId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
Filter = Annotated[str | None, Query(max_length=100)]


def summary_json(run: BacktestRunSummary) -> dict[str, Any]:
    """A run for lists: what, on what, when, the verdict and the headline metrics."""
    return {
        "id": run.id,
        "created_at": run.created_at.isoformat(),
        "strategy": run.strategy,
        "symbol": run.symbol,
        "timeframe": run.timeframe,
        "source": run.source,
        "start": run.start.isoformat(),
        "end": run.end.isoformat(),
        "params": run.params,
        "recommendation": run.recommendation,
        "trade_count": run.trade_count,
        "metrics": json_metrics(run.metrics),
    }


def stored_run(context: WebContext, run_id: int) -> StoredBacktestRun:
    """A saved run in full, or a 404."""
    try:
        return BacktestRunRepository(context.database).get(run_id)
    except DataError as exc:
        raise NotFoundError(str(exc)) from None


def _runs(
    context: WebContext, limit: int, offset: int, strategy: str | None, symbol: str | None
) -> tuple[list[BacktestRunSummary], int]:
    repository = BacktestRunRepository(context.database)
    runs = repository.list_runs(limit + offset, strategy=strategy, symbol=symbol)[offset:]
    total = count_backtest_runs(context.database, strategy=strategy, symbol=symbol)
    return runs, total


@router.get("/api/backtests/list")
def list_backtests(
    request: Request,
    context: Context,
    limit: Limit = 50,
    offset: Offset = 0,
    strategy: Filter = None,
    symbol: Filter = None,
) -> Any:
    """Saved runs, newest first: ``{"items": [...], "total": n}``."""
    runs, total = _runs(context, limit, offset, strategy, symbol)
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/backtest_rows.html", {"runs": runs}
        )
    return {"items": [summary_json(run) for run in runs], "total": total}


def _result(context: WebContext, stored: StoredBacktestRun) -> Any:
    from marketbot.backtest.stored import result_from_record, stored_bars
    from marketbot.store.prices import PriceRepository

    record = stored.record
    if record.data_file is not None:
        return result_from_record(record)
    frames = stored_bars(record, PriceRepository(context.database), run_id=stored.id)
    return result_from_record(record, next(iter(frames.values())), prices=frames)


@router.get("/api/backtests/{run_id}")
def get_backtest(run_id: RunId, context: Context) -> Any:
    """One run: settings, metrics, verdict and trades."""
    stored = stored_run(context, run_id)
    record = stored.record
    summary = BacktestRunRepository(context.database).get_summary(run_id)
    return {
        **summary_json(summary),
        "settings": dict(record.settings),
        "trades": [dict(trade) for trade in record.trades],
    }


@router.get("/api/backtests/{run_id}/chart")
def backtest_chart(run_id: RunId, context: Context) -> Any:
    """The run's chart data: equity, buy and hold, drawdown, candles and trade markers."""
    from marketbot.backtest.report_charts import build_chart_data

    stored = stored_run(context, run_id)
    try:
        result = _result(context, stored)
        return build_chart_data(result)
    except DataError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=409)


@router.post("/api/backtests/run", status_code=202)
def run_backtest(request: Request, body: BacktestRequest, context: Context, info: SignedIn) -> Any:
    """Queue a backtest (202 ``{"job_id": n}``); the worker saves it as a run."""
    strategy_spec(body.strategy, context.data_dir)
    job = context.jobs.queue("backtest", body.model_dump(mode="json"), by=info.username)
    if wants_fragment(request):
        return job_fragment(request, context, job, status_code=202)
    return accepted(job)


@router.post("/api/backtests/{run_id}/delete")
def delete_backtest(request: Request, run_id: RunId, context: Context) -> Any:
    """Delete a saved run."""
    if not BacktestRunRepository(context.database).delete(run_id):
        raise NotFoundError(f"no backtest run with id {run_id}")
    if wants_fragment(request):
        return HTMLResponse("")
    return {"deleted": run_id}


@pages.get("/backtests")
def backtests_page(request: Request, context: Context) -> Any:
    """Saved runs and the form that starts one."""
    from marketbot.store.prices import PriceRepository

    runs, total = _runs(context, 100, 0, None, None)
    return page(
        request,
        "backtests.html",
        {
            "runs": runs,
            "total": total,
            "strategies": available_strategies(context.data_dir),
            "series": PriceRepository(context.database).list_series(),
        },
    )


@pages.get("/backtests/{run_id}")
def backtest_page(request: Request, run_id: RunId, context: Context) -> Any:
    """One run: verdict, metrics with units, equity vs buy and hold, drawdown, candles."""
    stored = stored_run(context, run_id)
    summary = BacktestRunRepository(context.database).get_summary(run_id)
    return page(
        request,
        "backtest.html",
        {
            "run": summary,
            "record": stored.record,
            "metrics": metric_rows(summary.metrics),
            "trades": list(stored.record.trades)[:500],
        },
    )


@pages.get("/backtests/{run_id}/report")
def backtest_report(run_id: RunId, context: Context) -> Any:
    """The run's HTML report as a download."""
    from marketbot.backtest.report import render_report

    stored = stored_run(context, run_id)
    html = render_report(_result(context, stored))
    return HTMLResponse(
        html,
        headers={"content-disposition": f'attachment; filename="backtest-{run_id}.html"'},
    )
