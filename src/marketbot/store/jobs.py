"""The dashboard's long actions as rows: queued by a request, run in order by the worker.

Statuses move forward only: ``queued`` -> ``compiling`` -> ``running`` -> ``done`` |
``failed`` | ``cancelled``. A queued job is cancelled at once; a started one is asked to stop
(``cancel_requested``) and stops at its next progress report. When the worker starts it fails
the jobs a previous worker left started: their process is gone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa

from marketbot.core.clock import as_utc
from marketbot.core.errors import DataError
from marketbot.store._codec import to_json_value
from marketbot.store.database import Database
from marketbot.store.models import JOB_KINDS, Job, utc_now

Clock = Callable[[], datetime]

STARTED: Final = ("compiling", "running")
FINISHED: Final = ("done", "failed", "cancelled")


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as stored."""

    id: int
    kind: str
    params: dict[str, Any]
    status: str
    progress: float
    message: str | None
    result: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The job for the API (times as ISO 8601)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "params": self.params,
            "status": self.status,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "started_at": None if self.started_at is None else self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
        }


class JobCancelledError(Exception):
    """Raised inside a running job when someone asked to cancel it."""


def _info(row: Job) -> JobInfo:
    return JobInfo(
        id=row.id,
        kind=row.kind,
        params=dict(row.params or {}),
        status=row.status,
        progress=float(row.progress),
        message=row.message,
        result=None if row.result is None else dict(row.result),
        error=row.error,
        cancel_requested=bool(row.cancel_requested),
        created_by=row.created_by,
        created_at=as_utc(row.created_at),
        started_at=None if row.started_at is None else as_utc(row.started_at),
        finished_at=None if row.finished_at is None else as_utc(row.finished_at),
    )


class JobRepository:
    """Jobs: queue, list, claim the next, report progress, finish, cancel.

    Args:
        database: A database migrated to the current schema.
        clock: Returns the current time; tests pass a fixed one.
    """

    def __init__(self, database: Database, *, clock: Clock = utc_now) -> None:
        self._database = database
        self._clock = clock

    def queue(self, kind: str, params: Mapping[str, Any], *, by: str) -> JobInfo:
        """Store a queued job.

        Raises:
            DataError: an unknown kind, or parameters that are not JSON.
        """
        if kind not in JOB_KINDS:
            raise DataError(f"unknown job kind {kind!r}: use one of {', '.join(JOB_KINDS)}")
        row = Job(
            kind=kind,
            params=to_json_value(dict(params), where="job params"),
            status="queued",
            progress=0.0,
            cancel_requested=False,
            created_by=by[:100],
            created_at=as_utc(self._clock()),
        )
        with self._database.session() as session, session.begin():
            session.add(row)
            session.flush()
            return _info(row)

    def get(self, job_id: int) -> JobInfo:
        """One job.

        Raises:
            DataError: there is no such job.
        """
        with self._database.session() as session:
            row = session.get(Job, job_id)
            if row is None:
                raise DataError(f"no job with id {job_id}")
            return _info(row)

    def list_jobs(self, *, limit: int = 50, offset: int = 0) -> tuple[list[JobInfo], int]:
        """The newest jobs first, and how many there are."""
        with self._database.session() as session:
            total = int(session.scalar(sa.select(sa.func.count()).select_from(Job)) or 0)
            rows = session.scalars(
                sa.select(Job).order_by(Job.id.desc()).limit(limit).offset(offset)
            ).all()
            return [_info(row) for row in rows], total

    def claim_next(self) -> JobInfo | None:
        """Start the oldest queued job (status ``compiling``), or None when none waits."""
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            job_id = session.scalar(
                sa.select(Job.id).where(Job.status == "queued").order_by(Job.id).limit(1)
            )
            if job_id is None:
                return None
            claimed = session.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.status == "queued")
                .values(status="compiling", started_at=now, message="starting")
            )
            if int(getattr(claimed, "rowcount", 0)) != 1:
                return None
            row = session.get(Job, job_id, populate_existing=True)
            assert row is not None
            return _info(row)

    def report(
        self, job_id: int, *, status: str | None = None, progress: float, message: str
    ) -> None:
        """Record a started job's progress (a fraction 0..1) and what it is doing.

        Raises:
            JobCancelledError: someone asked to cancel the job; it is marked cancelled.
        """
        fraction = min(1.0, max(0.0, progress)) if math.isfinite(progress) else 0.0
        values: dict[str, Any] = {"progress": fraction, "message": message[:500]}
        if status is not None:
            values["status"] = status
        with self._database.session() as session, session.begin():
            row = session.get(Job, job_id)
            if row is None:
                raise DataError(f"no job with id {job_id}")
            if row.cancel_requested:
                row.status = "cancelled"
                row.finished_at = as_utc(self._clock())
                row.message = "cancelled"
                raise_after = True
            else:
                raise_after = False
                for key, value in values.items():
                    setattr(row, key, value)
        if raise_after:
            raise JobCancelledError(f"job {job_id} was cancelled")

    def finish(self, job_id: int, result: Mapping[str, Any]) -> None:
        """Mark a started job done with what it made."""
        self._end(job_id, "done", result=dict(result), message="done")

    def fail(self, job_id: int, error: str) -> None:
        """Mark a started job failed, saying why in one line."""
        self._end(job_id, "failed", error=error[:2000], message="failed")

    def _end(self, job_id: int, status: str, **values: Any) -> None:
        now = as_utc(self._clock())
        if "result" in values:
            values["result"] = to_json_value(values["result"], where="job result")
        with self._database.session() as session, session.begin():
            session.execute(
                sa.update(Job)
                .where(Job.id == job_id, Job.status.in_(STARTED))
                .values(status=status, finished_at=now, **values)
            )

    def cancel(self, job_id: int) -> JobInfo:
        """Cancel a queued job now, or ask a started one to stop; a finished job is unchanged.

        Raises:
            DataError: there is no such job.
        """
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            row = session.get(Job, job_id)
            if row is None:
                raise DataError(f"no job with id {job_id}")
            if row.status == "queued":
                row.status = "cancelled"
                row.finished_at = now
                row.message = "cancelled before it started"
            elif row.status in STARTED:
                row.cancel_requested = True
            session.flush()
            return _info(row)

    def fail_started(self, reason: str = "the worker restarted while it ran") -> int:
        """Fail every started job (their worker is gone); returns how many."""
        now = as_utc(self._clock())
        with self._database.session() as session, session.begin():
            failed = session.execute(
                sa.update(Job)
                .where(Job.status.in_(STARTED))
                .values(status="failed", error=reason, message="failed", finished_at=now)
            )
            return int(getattr(failed, "rowcount", 0))
