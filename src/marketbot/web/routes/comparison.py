"""Strategy comparison: 2-4 strategies or runs side by side, best per row marked."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from marketbot.backtest.comparison import compare_runs
from marketbot.core.errors import ConfigError
from marketbot.store.runs import BacktestRunRepository, BacktestRunSummary
from marketbot.web.compare_jobs import given_runs, split_items
from marketbot.web.context import Context, SignedIn, WebContext, page, wants_fragment
from marketbot.web.errors import FieldError
from marketbot.web.metrics_view import json_number
from marketbot.web.routes.jobs import accepted, job_fragment
from marketbot.web.schemas import CompareRequest
from marketbot.web.strategies import available_strategies, strategy_files, strategy_spec

router = APIRouter(tags=["strategies"])
pages = APIRouter(include_in_schema=False)

RunList = Annotated[str, Query(max_length=100, pattern=r"^\d{1,18}(,\d{1,18}){1,3}$")]

_UNITS = {"return_pct": " %", "buy_hold_return_pct": " %", "cagr_pct": " %", "win_rate": " %",
          "max_drawdown_pct": " %"}  # fmt: skip


@router.get("/api/strategies/list")
def list_strategies(context: Context) -> Any:
    """The strategies the dashboard may run: built-ins, then the data dir's files."""
    files = strategy_files(context.data_dir)
    items = [
        {"name": name, "kind": "file" if name in files else "builtin"}
        for name in available_strategies(context.data_dir)
    ]
    return {"items": items, "total": len(items)}


@router.post("/api/strategies/compare", status_code=202)
def compare(request: Request, body: CompareRequest, context: Context, info: SignedIn) -> Any:
    """Queue the comparison (202 ``{"job_id": n}``): names are backtested and saved as runs."""
    ids, names = split_items(body.items)
    if len(set(body.items)) != len(body.items):
        raise FieldError("body.items", "an item is given twice: compare different ones")
    for name in names:
        strategy_spec(name, context.data_dir, field="body.items")
    given_runs(context.database, ids)
    if not ids and body.symbol is None:
        raise FieldError("body.symbol", "name the symbol to compare the strategies on")
    job = context.jobs.queue("compare", body.model_dump(mode="json"), by=info.username)
    if wants_fragment(request):
        return job_fragment(request, context, job, status_code=202)
    return accepted(job)


def _runs(context: WebContext, runs: str) -> list[BacktestRunSummary]:
    ids = [int(part) for part in runs.split(",")]
    return given_runs(context.database, ids)


def comparison_view(runs: list[BacktestRunSummary]) -> dict[str, Any]:
    """The comparison table: per row the formatted values and the best marks."""
    try:
        comparison = compare_runs(runs)
    except ConfigError as exc:
        raise FieldError("query.runs", str(exc)) from None
    rows = []
    for row in comparison.rows:
        cells = []
        for value, best in zip(row.values, row.best, strict=True):
            if isinstance(value, str):
                text = value
            elif math.isnan(value):
                text = "—"
            elif math.isinf(value):
                text = "∞"
            else:
                digits = 0 if row.key == "num_trades" else 2
                text = f"{value:,.{digits}f}{_UNITS.get(row.key, '')}"
            cells.append({"text": text, "best": best, "value": json_number(value)})
        rows.append({"key": row.key, "label": row.label, "cells": cells})
    return {"run_ids": list(comparison.run_ids), "rows": rows}


@router.get("/api/strategies/equity")
def compare_equity(context: Context, runs: RunList) -> Any:
    """Each run's equity curve on the shared time axis, with the common value range."""
    summaries = _runs(context, runs)
    repository = BacktestRunRepository(context.database)
    series = []
    low, high = math.inf, -math.inf
    intraday = False
    for summary in summaries:
        curve = repository.get(summary.id).record.equity_curve
        times = [int(t.timestamp()) for t in curve.index]
        values = [json_number(float(v)) for v in curve.to_numpy()]
        finite = [v for v in values if v is not None]
        if finite:
            low, high = min(low, *finite), max(high, *finite)
        intraday = intraday or any(t % 86_400 for t in times)
        series.append(
            {"run_id": summary.id, "label": f"#{summary.id} {summary.strategy}", "time": times,
             "equity": values}
        )  # fmt: skip
    return {
        "series": series,
        "min": None if math.isinf(low) else low,
        "max": None if math.isinf(high) else high,
        "intraday": intraday,
    }


@pages.get("/strategy_comparison")
def comparison_page(
    request: Request,
    context: Context,
    runs: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    """The comparison form; with ``?runs=3,7`` those runs side by side."""
    from marketbot.store.prices import PriceRepository

    view = None
    error = None
    if runs:
        try:
            parts = [int(part) for part in runs.split(",")]
            if not 2 <= len(parts) <= 4:
                raise ValueError
            summaries = given_runs(context.database, parts)
            view = {**comparison_view(summaries), "runs": summaries, "query": runs}
        except (ValueError, FieldError) as exc:
            error = str(exc) if isinstance(exc, FieldError) else "runs: give 2 to 4 run ids"
    return page(
        request,
        "comparison.html",
        {
            "view": view,
            "error": error,
            "strategies": available_strategies(context.data_dir),
            "series": PriceRepository(context.database).list_series(),
            "recent": BacktestRunRepository(context.database).list_runs(20),
        },
    )
