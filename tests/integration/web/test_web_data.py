"""The data page: stored series, and collections run as jobs against a local CoinGecko."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from marketbot.config import Settings
from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import run_jobs, sign_in, store_sample_bars
from tests.support.coingecko_server import FakeCoinGecko


@pytest.fixture
def coingecko_client(web_settings: WebSettings, coingecko: FakeCoinGecko) -> Iterator[TestClient]:
    assert web_settings.settings is not None
    settings = Settings(
        data_dir=web_settings.settings.data_dir,
        coingecko_url=coingecko.base_url,
        coingecko_history_days=0,
        coingecko_calls_per_minute=600,
    )
    with TestClient(
        create_app(replace(web_settings, settings=settings)), follow_redirects=False
    ) as client:
        context = client.app.state.web_context  # type: ignore[attr-defined]
        context.auth.set_admin("admin", web_settings.password_hasher.hash("correct horse battery"))
        client.headers["X-CSRF-Token"] = sign_in(client)
        yield client


def test_data_list_when_bars_stored_shows_range_rows_and_gaps(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)

    (series,) = client.get("/api/data/list").json()["items"]

    assert (series["source"], series["symbol"], series["timeframe"]) == (
        "bitstamp",
        "bitcoin",
        "1d",
    )
    assert series["first"].startswith("2014-11-28")
    assert series["rows"] > 3800
    assert series["gaps"] >= 0
    assert series["lag_hours"] > 0
    assert "bitstamp" in client.get("/data").text


def test_collect_when_run_as_a_job_stores_the_coin_from_coingecko(
    coingecko_client: TestClient, coingecko: FakeCoinGecko
) -> None:
    queued = coingecko_client.post("/api/data/collect", json={"symbol": "bitcoin", "days": "30"})
    assert queued.status_code == 202

    (job,) = run_jobs(coingecko_client)

    assert job.status == "done", job.error
    assert job.result["bars_stored"] > 0
    listed = coingecko_client.get("/api/data/list").json()["items"]
    assert [(s["source"], s["symbol"]) for s in listed] == [("coingecko", "bitcoin")]
    assert coingecko.requests


def test_collect_when_coin_unknown_fails_the_job_and_stores_nothing(
    coingecko_client: TestClient,
) -> None:
    coingecko_client.post("/api/data/collect", json={"symbol": "no-such-coin", "days": 30})

    (job,) = run_jobs(coingecko_client)

    assert job.status == "failed"
    assert job.error
    assert coingecko_client.get("/api/data/list").json() == {"items": [], "total": 0}


def test_collect_when_symbol_has_a_path_is_422(client: TestClient, csrf: str) -> None:
    response = client.post("/api/data/collect", json={"symbol": "../etc", "days": 30})

    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "body.symbol"
