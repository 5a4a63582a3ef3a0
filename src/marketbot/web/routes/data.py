"""Stored price data: series, ranges, rows, gaps, lag; collect and fill-gaps jobs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from marketbot.store.prices import PriceRepository, SeriesSummary
from marketbot.web.context import Context, SignedIn, WebContext, page, wants_fragment
from marketbot.web.routes.jobs import accepted, job_fragment
from marketbot.web.schemas import CollectRequest, FillGapsRequest

router = APIRouter(tags=["data"])
pages = APIRouter(include_in_schema=False)


def series_json(series: SeriesSummary, now: datetime) -> dict[str, Any]:
    """A stored series with its lag: how long since its last bar opened."""
    last = series.last.to_pydatetime()
    return {
        "source": series.source,
        "symbol": series.symbol,
        "timeframe": series.timeframe,
        "first": series.first.isoformat(),
        "last": series.last.isoformat(),
        "rows": series.rows,
        "gaps": series.gaps,
        "missing_bars": series.missing_bars,
        "lag_hours": round((now - last).total_seconds() / 3600.0, 1),
    }


def _series(context: WebContext) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [series_json(s, now) for s in PriceRepository(context.database).list_series()]


@router.get("/api/data/list")
def list_data(request: Request, context: Context) -> Any:
    """Every stored series: ``{"items": [...], "total": n}``."""
    items = _series(context)
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/data_rows.html", {"series": items}
        )
    return {"items": items, "total": len(items)}


@router.post("/api/data/collect", status_code=202)
def collect(request: Request, body: CollectRequest, context: Context, info: SignedIn) -> Any:
    """Queue a CoinGecko collection (202 ``{"job_id": n}``)."""
    job = context.jobs.queue("collect", body.model_dump(mode="json"), by=info.username)
    if wants_fragment(request):
        return job_fragment(request, context, job, status_code=202)
    return accepted(job)


@router.post("/api/data/fill-gaps", status_code=202)
def fill_gaps(request: Request, body: FillGapsRequest, context: Context, info: SignedIn) -> Any:
    """Queue filling a CoinGecko series' gaps (202 ``{"job_id": n}``)."""
    job = context.jobs.queue("fill_gaps", body.model_dump(mode="json"), by=info.username)
    if wants_fragment(request):
        return job_fragment(request, context, job, status_code=202)
    return accepted(job)


@pages.get("/data")
def data_page(request: Request, context: Context) -> Any:
    """Stored series and the collection forms."""
    return page(request, "data.html", {"series": _series(context)})
