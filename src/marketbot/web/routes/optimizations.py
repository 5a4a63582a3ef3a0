"""The optimiser: saved runs, one run's heatmap, sensitivity, walk-forward and ranking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from marketbot.core.errors import DataError
from marketbot.store.optimizations import OptimizationRunRepository, OptimizationRunSummary
from marketbot.store.web_queries import count_optimization_runs, optimization_head
from marketbot.web.context import Context, SignedIn, WebContext, page, wants_fragment
from marketbot.web.errors import FieldError, NotFoundError
from marketbot.web.metrics_view import json_number
from marketbot.web.optimization_view import (
    diagnostics_rows,
    heatmap,
    parameter_names,
    ranking,
    sensitivity,
)
from marketbot.web.optimize_jobs import parse_grid
from marketbot.web.routes.jobs import accepted, job_fragment
from marketbot.web.schemas import OptimizeRequest
from marketbot.web.strategies import available_strategies, strategy_spec

router = APIRouter(tags=["optimizations"])
pages = APIRouter(include_in_schema=False)

RunId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000)]
ParamName = Annotated[str | None, Query(max_length=64)]


def summary_json(run: OptimizationRunSummary) -> dict[str, Any]:
    """A saved optimisation for lists."""
    return {
        "id": run.id,
        "created_at": run.created_at.isoformat(),
        "strategy": run.strategy,
        "symbol": run.symbol,
        "method": run.method,
        "metric": run.metric,
        "best_params": run.best_params,
        "best_metric": json_number(run.best_metric),
        "combinations": run.combinations,
    }


def _loaded(context: WebContext, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    head = optimization_head(context.database, run_id)
    if head is None:
        raise NotFoundError(f"no optimisation run with id {run_id}")
    try:
        results = OptimizationRunRepository(context.database).get_results(run_id)
    except DataError as exc:
        raise NotFoundError(str(exc)) from None
    return head, results


@router.get("/api/optimizations/list")
def list_optimizations(
    request: Request, context: Context, limit: Limit = 50, offset: Offset = 0
) -> Any:
    """Saved optimisations, newest first: ``{"items": [...], "total": n}``."""
    runs = OptimizationRunRepository(context.database).list_runs(limit + offset)[offset:]
    return {
        "items": [summary_json(run) for run in runs],
        "total": count_optimization_runs(context.database),
    }


@router.get("/api/optimizations/{run_id}")
def get_optimization(run_id: RunId, context: Context) -> Any:
    """One optimisation: what was searched, the winner, diagnostics, the top 20."""
    head, results = _loaded(context, run_id)
    summary = head["summary"]
    minimise = bool(summary.get("minimise"))
    names = parameter_names(results, head["best_params"])
    walk = summary.get("walk_forward")
    return {
        **{k: v for k, v in head.items() if k != "summary"},
        "best_metric": json_number(head["best_metric"]),
        "parameters": names,
        "minimise": minimise,
        "diagnostics": summary.get("diagnostics"),
        "ranking": ranking(results, head["metric"], minimise),
        "sensitivity": sensitivity(results, names, head["metric"], minimise),
        "walk_forward": None
        if not isinstance(walk, dict)
        else {k: v for k, v in walk.items() if k != "equity"},
    }


@router.get("/api/optimizations/{run_id}/heatmap")
def optimization_heatmap(
    run_id: RunId, context: Context, x: ParamName = None, y: ParamName = None
) -> Any:
    """The metric over two parameters (default: the first two searched)."""
    head, results = _loaded(context, run_id)
    names = parameter_names(results, head["best_params"])
    if len(names) < 2:
        return {"x": None, "y": None, "xs": [], "ys": [], "cells": [], "metric": head["metric"]}
    x = x or names[0]
    y = y or (names[1] if names[1] != x else names[0])
    for field, name in (("query.x", x), ("query.y", y)):
        if name not in names:
            raise FieldError(field, f"not a searched parameter: use one of {', '.join(names)}")
    minimise = bool(head["summary"].get("minimise"))
    return heatmap(results, x, y, head["metric"], minimise)


@router.get("/api/optimizations/{run_id}/sensitivity")
def optimization_sensitivity(run_id: RunId, context: Context) -> Any:
    """Per parameter, the spread of the best metric across its values."""
    head, results = _loaded(context, run_id)
    names = parameter_names(results, head["best_params"])
    minimise = bool(head["summary"].get("minimise"))
    return {
        "metric": head["metric"],
        "parameters": sensitivity(results, names, head["metric"], minimise),
    }


@router.get("/api/optimizations/{run_id}/walk_forward")
def optimization_walk_forward(run_id: RunId, context: Context) -> Any:
    """The walk-forward run's stitched out-of-sample equity (empty when none was run)."""
    head, _results = _loaded(context, run_id)
    walk = head["summary"].get("walk_forward")
    equity = walk.get("equity") if isinstance(walk, dict) else None
    if not isinstance(equity, dict):
        return {"time": [], "equity": [], "intraday": False}
    times = equity.get("time", [])
    return {
        "time": times,
        "equity": equity.get("value", []),
        "intraday": any(t % 86_400 for t in times),
    }


@router.post("/api/optimizations/run", status_code=202)
def run_optimization(
    request: Request, body: OptimizeRequest, context: Context, info: SignedIn
) -> Any:
    """Queue an optimisation (202 ``{"job_id": n}``)."""
    strategy_spec(body.strategy, context.data_dir)
    parse_grid(body.grid)
    job = context.jobs.queue("optimize", body.model_dump(mode="json"), by=info.username)
    if wants_fragment(request):
        return job_fragment(request, context, job, status_code=202)
    return accepted(job)


@pages.get("/optimizations")
def optimizations_page(request: Request, context: Context) -> Any:
    """Saved optimisations and the form that starts one."""
    from marketbot.store.prices import PriceRepository

    runs = OptimizationRunRepository(context.database).list_runs(100)
    return page(
        request,
        "optimizations.html",
        {
            "runs": runs,
            "strategies": available_strategies(context.data_dir),
            "series": PriceRepository(context.database).list_series(),
        },
    )


@pages.get("/optimizations/{run_id}")
def optimization_page(
    request: Request, run_id: RunId, context: Context, x: ParamName = None, y: ParamName = None
) -> Any:
    """One optimisation: heatmap over two chosen parameters, sensitivity, walk-forward, ranking."""
    data = get_optimization(run_id, context)
    names = data["parameters"]
    x = x if x in names else (names[0] if names else None)
    y = y if y in names and y != x else next((n for n in names if n != x), None)
    return page(
        request,
        "optimization.html",
        {"run": data, "x": x, "y": y, "diagnostics": diagnostics_rows(data["diagnostics"])},
    )
