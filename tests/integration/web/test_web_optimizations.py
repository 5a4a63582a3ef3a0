"""The optimiser page: a grid search run as a job, its heatmap, sensitivity and walk-forward."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.web.conftest import run_jobs, store_sample_bars


def test_optimization_when_run_with_walk_forward_shows_heatmap_and_oos_equity(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)

    queued = client.post(
        "/api/optimizations/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "p1": "fast", "v1": "5,10,20",
              "p2": "slow", "v2": "30:50:20", "start": "2021-01-01", "in_sample": "365d",
              "out_of_sample": "180d"},
    )  # fmt: skip
    assert queued.status_code == 202

    (job,) = run_jobs(client)

    assert job.status == "done", job.error
    run_id = job.result["optimization_id"]
    listed = client.get("/api/optimizations/list").json()
    assert listed["total"] == 1
    assert listed["items"][0]["combinations"] == 6
    detail = client.get(f"/api/optimizations/{run_id}").json()
    assert detail["parameters"] == ["fast", "slow"]
    assert len(detail["ranking"]) == 6
    assert detail["walk_forward"]["windows"]
    heat = client.get(f"/api/optimizations/{run_id}/heatmap").json()
    assert (heat["x"], heat["y"]) == ("fast", "slow")
    assert heat["xs"] == ["5", "10", "20"]
    assert heat["ys"] == ["30", "50"]
    assert len(heat["cells"]) == 6
    best = max(cell["v"] for cell in heat["cells"] if cell["v"] is not None)
    assert abs(best - detail["best_metric"]) < 1e-5
    sens = client.get(f"/api/optimizations/{run_id}/sensitivity").json()
    assert [p["name"] for p in sens["parameters"]] == ["fast", "slow"]
    walk = client.get(f"/api/optimizations/{run_id}/walk_forward").json()
    assert len(walk["time"]) == len(walk["equity"]) > 0
    page = client.get(f"/optimizations/{run_id}")
    assert page.status_code == 200
    assert 'data-chart="opt-heatmap"' in page.text
    assert client.get(f"/api/optimizations/{run_id}/heatmap?x=nope").status_code == 400


def test_optimization_when_grid_or_windows_wrong_is_refused(client: TestClient, csrf: str) -> None:
    bad_grid = client.post(
        "/api/optimizations/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "grid": {"fast": "1:"}},
    )
    one_window = client.post(
        "/api/optimizations/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "grid": {"fast": "5,10"},
              "in_sample": "365d"},
    )  # fmt: skip

    assert bad_grid.status_code == 400
    assert bad_grid.json()["detail"][0]["field"] == "body.grid.fast"
    assert one_window.status_code == 422
    assert client.get("/api/jobs/list").json()["total"] == 0


def test_optimization_when_unknown_id_is_404(client: TestClient, csrf: str) -> None:
    assert client.get("/api/optimizations/3").status_code == 404
    assert client.get("/optimizations/3").status_code == 404
    assert client.get("/api/optimizations/3/heatmap").status_code == 404
