"""The daily scheduler: when it fires, and that runs never overlap."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from marketbot.core.errors import ConfigError
from marketbot.sources.daily_update import DAILY_JOB_ID, build_daily_scheduler


def test_build_daily_scheduler_when_hour_given_fires_daily_at_that_hour_utc() -> None:
    scheduler = build_daily_scheduler(lambda: None, hour_utc=1, scheduler=BackgroundScheduler())

    trigger = scheduler.get_job(DAILY_JOB_ID).trigger
    after = datetime(2026, 3, 10, 5, 30, tzinfo=UTC)
    first = trigger.get_next_fire_time(None, after)
    second = trigger.get_next_fire_time(first, first.replace(minute=1))
    assert first == datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    assert second == datetime(2026, 3, 12, 1, 0, tzinfo=UTC)
    assert scheduler.get_job(f"{DAILY_JOB_ID}-at-start") is not None


def test_build_daily_scheduler_when_not_at_start_has_only_the_daily_job() -> None:
    scheduler = build_daily_scheduler(
        lambda: None, hour_utc=0, run_at_start=False, scheduler=BackgroundScheduler()
    )

    assert [job.id for job in scheduler.get_jobs()] == [DAILY_JOB_ID]


@pytest.mark.parametrize("hour", [-1, 24, 1.5, True])
def test_build_daily_scheduler_when_hour_invalid_raises(hour: int) -> None:
    with pytest.raises(ConfigError, match="0-23"):
        build_daily_scheduler(lambda: None, hour_utc=hour, scheduler=BackgroundScheduler())


def test_scheduled_job_when_previous_run_still_going_skips_the_new_one() -> None:
    started = threading.Event()
    release = threading.Event()
    runs: list[str] = []

    def slow_job() -> str:
        runs.append("run")
        started.set()
        release.wait(5)
        return "done"

    scheduler = build_daily_scheduler(slow_job, hour_utc=1, scheduler=BackgroundScheduler())
    job = scheduler.get_job(DAILY_JOB_ID).func
    first = threading.Thread(target=job)
    first.start()
    assert started.wait(5)

    assert job() is None  # skipped: the first run holds the lock
    release.set()
    first.join(5)
    assert runs == ["run"]
    assert job() == "done"
