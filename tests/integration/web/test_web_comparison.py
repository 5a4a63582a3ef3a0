"""Strategy comparison: names backtested in one job and saved, runs on other data refused."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.web.conftest import run_jobs, store_sample_bars


def test_compare_when_two_names_backtests_both_and_marks_the_best(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)

    queued = client.post(
        "/api/strategies/compare",
        json={"items": ["sma_crossover", "momentum"], "symbol": "bitcoin", "start": "2023-01-01"},
    )
    assert queued.status_code == 202

    (job,) = run_jobs(client)

    assert job.status == "done", job.error
    run_ids = job.result["runs"]
    assert len(run_ids) == 2
    assert client.get("/api/backtests/list").json()["total"] == 2
    page = client.get(f"/strategy_comparison?runs={run_ids[0]},{run_ids[1]}")
    assert page.status_code == 200
    assert "★" in page.text
    assert page.text.count('class="num best"') >= 1
    equity = client.get(f"/api/strategies/equity?runs={run_ids[0]},{run_ids[1]}").json()
    assert [s["run_id"] for s in equity["series"]] == run_ids
    assert equity["series"][0]["time"] == equity["series"][1]["time"]
    assert equity["min"] <= equity["max"]


def test_compare_when_a_run_id_and_a_name_backtests_the_name_on_the_runs_data(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)
    client.post(
        "/api/backtests/run",
        json={
            "strategy": "momentum",
            "symbol": "bitcoin",
            "start": "2024-01-01",
            "end": "2024-12-31",
        },
    )
    (first,) = run_jobs(client)

    client.post(
        "/api/strategies/compare", json={"items": [str(first.result["run_id"]), "mean_reversion"]}
    )
    (job,) = run_jobs(client)

    assert job.status == "done", job.error
    assert job.result["runs"][0] == first.result["run_id"]


def test_compare_when_runs_on_other_data_is_refused_by_name(client: TestClient, csrf: str) -> None:
    store_sample_bars(client)
    for start in ("2024-01-01", "2024-03-01"):
        client.post(
            "/api/backtests/run", json={"strategy": "momentum", "symbol": "bitcoin", "start": start}
        )
    ids = [job.result["run_id"] for job in run_jobs(client)]

    response = client.post("/api/strategies/compare", json={"items": [str(i) for i in ids]})

    assert response.status_code == 400
    assert response.json()["detail"][0]["field"] == "body.items"
    assert "different data" in response.json()["detail"][0]["message"]
    assert client.get("/api/jobs/list").json()["total"] == 2


def test_compare_when_item_count_or_name_wrong_is_refused(client: TestClient, csrf: str) -> None:
    one = client.post("/api/strategies/compare", json={"items": ["momentum"], "symbol": "bitcoin"})
    five = client.post("/api/strategies/compare", json={"items": ["a", "b", "c", "d", "e"]})
    unknown = client.post(
        "/api/strategies/compare", json={"items": ["momentum", "nope"], "symbol": "bitcoin"}
    )
    missing = client.post("/api/strategies/compare", json={"items": ["momentum", "999"]})

    assert one.status_code == 422
    assert one.json()["detail"][0]["field"] == "body.items"
    assert five.status_code == 422
    assert unknown.status_code == 400
    assert unknown.json()["detail"][0]["field"] == "body.items"
    assert missing.status_code == 404


def test_strategies_list_when_asked_names_the_builtins(client: TestClient, csrf: str) -> None:
    names = [item["name"] for item in client.get("/api/strategies/list").json()["items"]]

    assert names[:3] == ["sma_crossover", "momentum", "mean_reversion"]


def test_compare_when_form_sends_a_blank_run_id_ignores_it(client: TestClient, csrf: str) -> None:
    store_sample_bars(client)

    response = client.post(
        "/api/strategies/compare",
        json={"items": ["sma_crossover", "momentum", ""], "symbol": "bitcoin",
              "start": "2024-01-01", "end": "", "fee": "", "slippage": ""},
    )  # fmt: skip

    assert response.status_code == 202
