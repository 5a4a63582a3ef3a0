"""The job worker: one process that runs ``jobs`` rows in id order, one at a time.

It runs apart from the web server so that a backtest's numba compilation or an optimiser's
grid never stalls a request. At start it fails the jobs a previous worker left started (their
process is gone). A job reports progress through :class:`JobRun`; a cancel request stops it
at its next report.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from marketbot.config import Settings
from marketbot.core.errors import MarketbotError
from marketbot.store.database import Database
from marketbot.store.jobs import JobCancelledError, JobInfo, JobRepository

_LOG = logging.getLogger(__name__)
IDLE_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class JobRun:
    """What a job handler gets: its job, the database, the settings and a progress line."""

    job: JobInfo
    database: Database
    settings: Settings
    jobs: JobRepository

    @property
    def params(self) -> dict[str, Any]:
        """The job's validated request."""
        return self.job.params

    def progress(self, fraction: float, message: str, *, status: str = "running") -> None:
        """Record progress; raises JobCancelledError when someone cancelled the job."""
        self.jobs.report(self.job.id, status=status, progress=fraction, message=message)


JobHandler = Callable[[JobRun], Mapping[str, Any]]


def run_next_job(
    database: Database,
    settings: Settings,
    jobs: JobRepository,
    handlers: Mapping[str, JobHandler] | None = None,
) -> JobInfo | None:
    """Claim and run the oldest queued job; None when none waits. Returns it as it ended."""
    job = jobs.claim_next()
    if job is None:
        return None
    if handlers is None:
        from marketbot.web.job_handlers import HANDLERS

        handlers = HANDLERS
    handler = handlers.get(job.kind)
    run = JobRun(job, database, settings, jobs)
    try:
        if handler is None:
            raise MarketbotError(f"no handler for jobs of kind {job.kind!r}")
        result = handler(run)
    except JobCancelledError:
        pass
    except MarketbotError as exc:
        jobs.fail(job.id, str(exc))
    except Exception as exc:
        _LOG.exception("job %s (%s) crashed", job.id, job.kind)
        jobs.fail(job.id, f"internal error: {type(exc).__name__}")
    else:
        jobs.finish(job.id, result)
    return jobs.get(job.id)


def run_worker(settings: Settings, should_stop: Callable[[float], bool]) -> None:
    """The worker's loop: fail jobs left started, then run queued ones until told to stop.

    Args:
        settings: marketbot's settings (the database, API roots).
        should_stop: Waits up to the given seconds; True when the worker must stop.
    """
    database = Database.from_settings(settings)
    try:
        database.migrate()
        jobs = JobRepository(database)
        failed = jobs.fail_started()
        if failed:
            _LOG.warning("failed %d job(s) left running by a previous worker", failed)
        while not should_stop(0):
            if run_next_job(database, settings, jobs) is None and should_stop(IDLE_POLL_SECONDS):
                break
    finally:
        database.dispose()


def _worker_main(settings: Settings, stop: Any) -> None:
    # Ctrl-C reaches the whole process group: the server stops the worker through ``stop``
    # after its lifespan ends, so the worker itself ignores the interrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_worker(settings, stop.wait)


class WorkerProcess:
    """The worker process started with the app; :meth:`stop` ends it."""

    def __init__(self, process: Any, stop: Any) -> None:
        self._process = process
        self._stop = stop

    @property
    def pid(self) -> int | None:
        """The process id."""
        pid: int | None = self._process.pid
        return pid

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Ask the worker to stop after its current job; kill it if it does not in time."""
        self._stop.set()
        self._process.join(timeout_seconds)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout_seconds)


def start_worker_process(settings: Settings) -> WorkerProcess:
    """Start the job worker as a separate (spawned) process."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    process = context.Process(
        target=_worker_main, args=(settings, stop), name="marketbot-web-worker", daemon=True
    )
    # An ignored SIGINT survives exec, so a Ctrl-C during the child's imports cannot reach
    # it either (only the main thread may change signal handlers).
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        process.start()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    return WorkerProcess(process, stop)
