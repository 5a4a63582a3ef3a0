"""API keys through the dashboard: masked cards, tests against a local Binance, no leaks."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from marketbot.config import Settings
from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import PASSWORD, USERNAME, sign_in
from tests.support.fake_binance import FakeBinanceSpot

SENTINEL_KEY = "SENTINELKEY7f3a9c1e5b2d4a6c8e0f1a3b5c7d9e1f"
SENTINEL_SECRET = "SENTINELSECRET0d2f4b6a8c1e3a5c7e9b1d3f5a7c9e1b"
WRONG_SECRET = "SENTINELWRONG9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"


class RecordingClient(TestClient):
    """A TestClient that keeps every response, to search them all for secrets."""

    responses: list[httpx.Response]

    def request(self, *args, **kwargs) -> httpx.Response:  # type: ignore[no-untyped-def, override]
        response = super().request(*args, **kwargs)
        self.responses.append(response)
        return response


@pytest.fixture
def binance() -> Iterator[FakeBinanceSpot]:
    with FakeBinanceSpot(api_key=SENTINEL_KEY, secret=SENTINEL_SECRET) as server:
        yield server


@pytest.fixture
def keys_client(
    web_settings: WebSettings, binance: FakeBinanceSpot, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RecordingClient]:
    monkeypatch.delenv("MARKETBOT_MASTER_KEY", raising=False)
    assert web_settings.settings is not None
    settings = Settings(
        data_dir=web_settings.settings.data_dir, exchange_api_urls={"binance": binance.api_urls}
    )
    app = create_app(replace(web_settings, settings=settings))
    with RecordingClient(app, follow_redirects=False) as client:
        client.responses = []
        context = client.app.state.web_context  # type: ignore[attr-defined]
        context.auth.set_admin(USERNAME, web_settings.password_hasher.hash(PASSWORD))
        client.headers["X-CSRF-Token"] = sign_in(client)
        yield client


def save(client: TestClient, secret: str = SENTINEL_SECRET) -> httpx.Response:
    return client.post(
        "/api/keys/save",
        json={"exchange": "binance", "api_key": SENTINEL_KEY, "secret": secret},
    )


def test_keys_when_saved_show_only_the_mask(keys_client: RecordingClient) -> None:
    saved = save(keys_client)

    assert saved.status_code == 200
    assert saved.json()["masked_key"] == "****" + SENTINEL_KEY[-4:]
    (item,) = keys_client.get("/api/keys/list").json()["items"]
    assert item["masked_key"] == "****9e1f"
    page = keys_client.get("/api_keys")
    assert "****9e1f" in page.text
    assert "Security" in page.text


def test_keys_test_when_the_exchange_accepts_records_ok(
    keys_client: RecordingClient, binance: FakeBinanceSpot
) -> None:
    save(keys_client)

    tested = keys_client.post("/api/keys/test", json={"exchange": "binance"}).json()

    assert tested["ok"] is True
    assert tested["message"] == "ok"
    assert tested["tested_at"]
    (item,) = keys_client.get("/api/keys/list").json()["items"]
    assert item["last_test_ok"] is True
    assert any("/account" in path for path in binance.paths())


def test_keys_test_when_the_exchange_refuses_records_why(keys_client: RecordingClient) -> None:
    save(keys_client, WRONG_SECRET)

    tested = keys_client.post("/api/keys/test", json={"exchange": "binance"}).json()

    assert tested["ok"] is False
    assert tested["message"]
    assert keys_client.get("/api/keys/list").json()["items"][0]["last_test_ok"] is False


def test_keys_when_exchange_unknown_or_key_missing_are_refused(
    keys_client: RecordingClient,
) -> None:
    unknown = keys_client.post("/api/keys/save", json={"exchange": "nosuchx", "api_key": "a"})
    nothing = keys_client.post("/api/keys/save", json={"exchange": "binance"})
    untested = keys_client.post("/api/keys/test", json={"exchange": "kraken"})
    undeleted = keys_client.post("/api/keys/kraken/delete")
    stored_only = keys_client.post(
        "/api/keys/save",
        json={"exchange": "polymarket", "private_key": "0xabc", "wallet_address": "0x1234"},
    )

    assert unknown.status_code == 400
    assert unknown.json()["detail"][0]["field"] == "body.exchange"
    assert nothing.status_code == 400
    assert untested.status_code == 404
    assert undeleted.status_code == 404
    assert stored_only.json()["masked_key"] == "****1234"
    assert keys_client.post("/api/keys/test", json={"exchange": "polymarket"}).status_code == 400


def test_keys_when_deleted_are_gone(keys_client: RecordingClient) -> None:
    save(keys_client)

    assert keys_client.post("/api/keys/binance/delete").status_code == 200
    assert keys_client.get("/api/keys/list").json() == {"items": [], "total": 0}


def test_secrets_when_saved_tested_and_refused_appear_in_no_response_log_or_file(
    keys_client: RecordingClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    save(keys_client)
    keys_client.post("/api/keys/test", json={"exchange": "binance"})
    save(keys_client, WRONG_SECRET)
    keys_client.post("/api/keys/test", json={"exchange": "binance"})
    keys_client.post(
        "/api/keys/save", json={"exchange": "binance", "api_key": SENTINEL_KEY, "secret": 5}
    )
    keys_client.post("/api/keys/save", json={"exchange": "binance", "bogus": SENTINEL_SECRET})
    keys_client.post("/api/keys/save", json={"exchange": SENTINEL_SECRET, "api_key": SENTINEL_KEY})
    keys_client.post(
        "/api/keys/save",
        content=b"{" + SENTINEL_SECRET.encode(),
        headers={"content-type": "application/json"},
    )
    for path in ("/api/keys/list", "/api_keys", "/api/bot/events", "/api/jobs/list"):
        keys_client.get(path)

    data_dir = keys_client.app.state.web_context.data_dir  # type: ignore[attr-defined]
    files = [path for path in Path(data_dir).rglob("*") if path.is_file()]
    assert any(path.name.startswith("marketbot.db") for path in files)
    for sentinel in (SENTINEL_KEY, SENTINEL_SECRET, WRONG_SECRET):
        for response in keys_client.responses:
            assert sentinel not in response.text, response.request.url
            assert sentinel not in json.dumps(dict(response.headers))
        assert sentinel not in caplog.text
        for path in files:
            assert sentinel.encode() not in path.read_bytes(), path
    assert len(keys_client.responses) >= 12
