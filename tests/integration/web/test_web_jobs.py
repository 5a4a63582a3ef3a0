"""Jobs: run in order by the worker, progress and cancel, a restart fails the running ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from marketbot.core.errors import DataError
from marketbot.store.jobs import JobRepository
from marketbot.web.worker import JobRun, run_next_job


def jobs(client: TestClient) -> JobRepository:
    return client.app.state.web_context.jobs  # type: ignore[attr-defined, no-any-return]


def run_one(client: TestClient, handlers: Mapping[str, Any]) -> Any:
    context = client.app.state.web_context  # type: ignore[attr-defined]
    return run_next_job(context.database, context.settings, context.jobs, handlers)


def test_worker_when_jobs_queued_runs_them_in_order_with_progress(
    client: TestClient, csrf: str
) -> None:
    seen: list[tuple[int, str]] = []

    def handler(run: JobRun) -> Mapping[str, Any]:
        run.progress(0.5, "half way")
        seen.append((run.job.id, jobs(client).get(run.job.id).status))
        return {"n": run.params["n"]}

    first = jobs(client).queue("collect", {"n": 1}, by="admin")
    second = jobs(client).queue("collect", {"n": 2}, by="admin")

    ended = [run_one(client, {"collect": handler}) for _ in range(3)]

    assert seen == [(first.id, "running"), (second.id, "running")]
    assert [job.status for job in ended[:2]] == ["done", "done"]
    assert [job.result for job in ended[:2]] == [{"n": 1}, {"n": 2}]
    assert ended[2] is None
    listed = client.get("/api/jobs/list").json()
    assert listed["total"] == 2
    assert [item["id"] for item in listed["items"]] == [second.id, first.id]


def test_cancel_when_queued_is_immediate_and_when_running_stops_at_next_progress(
    client: TestClient, csrf: str
) -> None:
    queued = jobs(client).queue("collect", {}, by="admin")
    assert client.post(f"/api/jobs/{queued.id}/cancel").json()["status"] == "cancelled"
    running = jobs(client).queue("collect", {}, by="admin")

    def handler(run: JobRun) -> Mapping[str, Any]:
        client.post(f"/api/jobs/{run.job.id}/cancel")
        run.progress(0.9, "after the cancel")
        return {"reached": "the end"}

    ended = run_one(client, {"collect": handler})

    assert ended.id == running.id
    assert ended.status == "cancelled"
    assert ended.result is None


def test_job_when_handler_raises_fails_in_one_line(client: TestClient, csrf: str) -> None:
    jobs(client).queue("collect", {}, by="admin")
    jobs(client).queue("collect", {}, by="admin")

    def refuses(run: JobRun) -> Mapping[str, Any]:
        raise DataError("bitcoin: no stored 1h bars")

    def crashes(run: JobRun) -> Mapping[str, Any]:
        raise ZeroDivisionError("secret detail")

    refused = run_one(client, {"collect": refuses})
    crashed = run_one(client, {"collect": crashes})

    assert (refused.status, refused.error) == ("failed", "bitcoin: no stored 1h bars")
    assert (crashed.status, crashed.error) == ("failed", "internal error: ZeroDivisionError")


def test_restart_when_jobs_were_running_fails_them(client: TestClient, csrf: str) -> None:
    started = jobs(client).queue("backtest", {}, by="admin")
    waiting = jobs(client).queue("backtest", {}, by="admin")
    assert jobs(client).claim_next() is not None

    assert jobs(client).fail_started() == 1

    assert jobs(client).get(started.id).status == "failed"
    assert "restarted" in (jobs(client).get(started.id).error or "")
    assert jobs(client).get(waiting.id).status == "queued"


def test_job_when_unknown_is_404_and_unknown_kind_refused(client: TestClient, csrf: str) -> None:
    assert client.get("/api/jobs/7").status_code == 404
    assert client.post("/api/jobs/7/cancel").status_code == 404
    with pytest.raises(DataError):
        jobs(client).queue("mining", {}, by="admin")
