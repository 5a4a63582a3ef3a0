"""Pages without their own API module: the jobs list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from marketbot.web.context import Context, page

router = APIRouter(include_in_schema=False)


@router.get("/jobs")
def jobs_page(request: Request, context: Context) -> Any:
    """Every job, newest first, polled while they run."""
    jobs, total = context.jobs.list_jobs(limit=100)
    return page(request, "jobs.html", {"jobs": jobs, "total": total})
