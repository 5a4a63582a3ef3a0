"""Alerts through the dashboard: create (fields follow the kind), toggle, test, delete."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from marketbot.config import Settings
from marketbot.web import WebSettings, create_app
from tests.integration.web.conftest import PASSWORD, USERNAME, sign_in, store_sample_bars
from tests.support.notify_server import NotifyServer, notify_server


def create(client: TestClient, **fields: object) -> dict[str, object]:
    body = {"name": "btc high", "kind": "price", "subject": "bitcoin", "metric": "close",
            "op": ">", "threshold": "100000", **fields}  # fmt: skip
    response = client.post("/api/alerts/create", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_alert_when_created_toggled_tested_and_deleted(client: TestClient, csrf: str) -> None:
    store_sample_bars(client)
    alert = create(client)
    assert alert["state"] == "armed"
    assert alert["condition"] == "bitcoin close > 100000"

    toggled = client.post(f"/api/alerts/{alert['id']}/toggle").json()
    assert toggled["state"] == "disabled"
    assert client.post(f"/api/alerts/{alert['id']}/toggle").json()["state"] == "armed"

    typed = client.post(f"/api/alerts/{alert['id']}/test", json={"value": "120000"}).json()
    assert (typed["would_fire"], typed["value"], typed["on"]) == (True, 120000.0, "typed value")
    latest = client.post(f"/api/alerts/{alert['id']}/test", json={}).json()
    assert latest["on"] == "latest data"
    assert latest["value"] == 108033.0  # the sample's last close
    assert latest["would_fire"] is True
    listed = client.get("/api/alerts/list").json()
    assert listed["items"][0]["trigger_count"] == 0  # a test stores nothing

    assert client.post(f"/api/alerts/{alert['id']}/delete").status_code == 200
    assert client.get("/api/alerts/list").json() == {"items": [], "total": 0}


def test_alert_when_fields_do_not_fit_the_kind_is_refused_naming_the_field(
    client: TestClient, csrf: str
) -> None:
    store_sample_bars(client)
    cases = {
        "body.kind": {"kind": "weather"},
        "body.metric": {"metric": "total_value"},
        "body.unit": {"unit": "usd"},
        "body.subject": {"subject": "dogecoin"},
        "body.op": {"op": "=="},
        "body.threshold": {"threshold": "lots"},
    }
    for field, change in cases.items():
        body = {"name": "x", "kind": "price", "subject": "bitcoin", "metric": "close", "op": ">",
                "threshold": 1, **change}  # fmt: skip
        response = client.post("/api/alerts/create", json=body)
        assert response.status_code in (400, 422), field
        assert response.json()["detail"][0]["field"] == field
    portfolio_subject = client.post(
        "/api/alerts/create",
        json={
            "name": "p",
            "kind": "portfolio",
            "subject": "x",
            "metric": "total_value",
            "op": ">",
            "threshold": 1,
        },
    )
    assert portfolio_subject.json()["detail"][0]["field"] == "body.subject"
    assert client.get("/api/alerts/list").json()["total"] == 0


def test_alert_when_unknown_id_is_404(client: TestClient, csrf: str) -> None:
    for action in ("toggle", "delete"):
        assert client.post(f"/api/alerts/42/{action}").status_code == 404
    assert client.post("/api/alerts/42/test", json={}).status_code == 404


@pytest.fixture
def notices() -> Iterator[NotifyServer]:
    with notify_server() as running:
        yield running


def test_alert_test_when_send_posts_one_test_notice(
    web_settings: WebSettings, notices: NotifyServer
) -> None:
    assert web_settings.settings is not None
    settings = Settings(
        data_dir=web_settings.settings.data_dir, notify_urls=SecretStr(notices.url("/h"))
    )
    with TestClient(
        create_app(replace(web_settings, settings=settings)), follow_redirects=False
    ) as client:
        client.app.state.web_context.auth.set_admin(
            USERNAME, web_settings.password_hasher.hash(PASSWORD)
        )  # type: ignore[attr-defined]
        client.headers["X-CSRF-Token"] = sign_in(client)
        store_sample_bars(client)
        alert = create(client)

        result = client.post(
            f"/api/alerts/{alert['id']}/test", json={"value": 1, "send": True}
        ).json()

    assert result["sent"] == "delivered"
    (post,) = notices.wait_for(1)
    assert "TEST" in str(post)
    assert "PWTEST" not in str(result)


def test_alert_test_when_latest_data_reads_it_as_the_alerts_module_does(
    client: TestClient, csrf: str
) -> None:
    from tests.support.frames import sample_daily_btc

    store_sample_bars(client)
    closes = sample_daily_btc()["close"].to_numpy()
    change = create(client, name="jump", metric="change_pct", op=">=", threshold="-100")
    strategy = create(client, name="signal", kind="strategy", subject="momentum",
                      metric="entry_signal", op=">=", threshold="1")  # fmt: skip

    changed = client.post(f"/api/alerts/{change['id']}/test", json={}).json()
    no_run = client.post(f"/api/alerts/{strategy['id']}/test", json={})
    typed = client.post(f"/api/alerts/{strategy['id']}/test", json={"value": 1}).json()

    assert abs(changed["value"] - 100 * (closes[-1] / closes[-2] - 1)) < 1e-9
    assert changed["would_fire"] is True
    assert no_run.status_code == 400
    assert no_run.json()["detail"][0]["field"] == "body.value"
    assert typed["would_fire"] is True


def test_alert_test_when_a_bot_run_exists_reads_the_strategy_on_its_symbol(
    client: TestClient,
    csrf: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.support.cli import run_cli

    store_sample_bars(client)
    data_dir = client.app.state.web_context.data_dir  # type: ignore[attr-defined]
    monkeypatch.setenv("MARKETBOT_DATA_DIR", str(data_dir))
    monkeypatch.delenv("MARKETBOT_DATABASE_URL", raising=False)
    code, _out, err = run_cli(
        ["run", "--strategy", "momentum", "--symbol", "bitcoin", "--replay", "2025-06-01",
         "2025-07-04"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    alert = create(client, name="open", kind="strategy", subject="momentum",
                   metric="open_positions", op=">=", threshold="0")  # fmt: skip

    result = client.post(f"/api/alerts/{alert['id']}/test", json={}).json()

    assert result["on"] == "latest data"
    assert result["value"] in (0.0, 1.0)
    assert result["would_fire"] is True
    assert result["at"].startswith("2025-07-04")
