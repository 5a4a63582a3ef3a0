"""The job API: list, one job, cancel. Long actions elsewhere answer 202 ``{"job_id": n}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse

from marketbot.core.errors import DataError
from marketbot.store.jobs import JobInfo
from marketbot.web.context import Context, WebContext, wants_fragment
from marketbot.web.errors import NotFoundError

router = APIRouter(prefix="/api/jobs", tags=["jobs"])

# Ids are SQLite/PostgreSQL 64-bit integers: a larger number is refused, not overflowed.
JobId = Annotated[int, Path(ge=1, le=2**62)]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=2**31)]


def job_or_404(context: WebContext, job_id: int) -> JobInfo:
    """The job, or a 404."""
    try:
        return context.jobs.get(job_id)
    except DataError as exc:
        raise NotFoundError(str(exc)) from None


def job_fragment(
    request: Request, context: WebContext, job: JobInfo, *, status_code: int = 200
) -> Any:
    """The job as the HTML fragment that polls itself every 2 s while it runs."""
    return context.templates.TemplateResponse(
        request, "fragments/job.html", {"job": job}, status_code=status_code
    )


def accepted(job: JobInfo) -> JSONResponse:
    """The 202 answer of a request that queued a job."""
    return JSONResponse({"job_id": job.id}, status_code=202)


@router.get("/list")
def list_jobs(
    request: Request,
    context: Context,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Any:
    """The newest jobs first: ``{"items": [...], "total": n}``."""
    jobs, total = context.jobs.list_jobs(limit=limit, offset=offset)
    if wants_fragment(request):
        return context.templates.TemplateResponse(
            request, "fragments/jobs.html", {"jobs": jobs, "total": total}
        )
    return {"items": [job.to_json() for job in jobs], "total": total}


@router.get("/{job_id}")
def get_job(request: Request, job_id: JobId, context: Context) -> Any:
    """One job: status, progress, message, result."""
    job = job_or_404(context, job_id)
    if wants_fragment(request):
        return job_fragment(request, context, job)
    return job.to_json()


@router.post("/{job_id}/cancel")
def cancel_job(job_id: JobId, context: Context) -> Any:
    """Cancel a queued job, or ask a running one to stop."""
    job_or_404(context, job_id)
    return context.jobs.cancel(job_id).to_json()
