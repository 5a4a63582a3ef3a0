"""The bot page: status from the store, commands written as rows (the web never calls a bot)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from marketbot.store.bot_commands import BotCommandRepository
from tests.integration.web.conftest import USERNAME


def commands(client: TestClient) -> BotCommandRepository:
    return BotCommandRepository(client.app.state.web_context.database)  # type: ignore[attr-defined]


def test_bot_page_when_no_run_says_so(client: TestClient, csrf: str) -> None:
    for path in ("/", "/bot"):
        page = client.get(path)
        assert page.status_code == 200
        assert "No bot run yet" in page.text
    status = client.get("/api/bot/status").json()
    assert status["run_id"] is None
    assert status["commands"] == []
    assert {limit["name"] for limit in status["limits"]} >= {"open positions", "daily loss (USD)"}


def test_bot_command_when_confirmed_writes_a_pending_row_with_who_and_why(
    client: TestClient, csrf: str
) -> None:
    response = client.post(
        "/api/bot/commands",
        json={"kind": "force_exit", "symbol": "BTC/USDT", "reason": "delisting", "confirm": "true"},
    )

    assert response.status_code == 201
    (row,) = commands(client).pending()
    assert (row.kind, row.args, row.by, row.reason) == (
        "force_exit",
        {"symbol": "BTC/USDT"},
        USERNAME,
        "delisting",
    )
    shown = client.get("/api/bot/status").json()["commands"]
    assert [(c["id"], c["status"]) for c in shown] == [(row.id, "pending")]
    commands(client).acknowledge(row.id, "closed BTC/USDT")
    assert client.get("/api/bot/status").json()["commands"][0]["status"] == "acknowledged"


def test_bot_command_when_not_confirmed_or_without_reason_stores_nothing(
    client: TestClient, csrf: str
) -> None:
    unconfirmed = client.post("/api/bot/commands", json={"kind": "pause", "reason": "lunch"})
    no_reason = client.post("/api/bot/commands", json={"kind": "pause", "confirm": True})
    bad_kind = client.post(
        "/api/bot/commands", json={"kind": "explode", "reason": "x", "confirm": True}
    )
    both = client.post(
        "/api/bot/commands",
        json={"kind": "force_exit", "symbol": "X", "all": True, "reason": "x", "confirm": True},
    )

    assert unconfirmed.status_code == 400
    assert unconfirmed.json()["detail"][0]["field"] == "body.confirm"
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["field"] == "body.reason"
    assert bad_kind.status_code == 422
    assert bad_kind.json()["detail"][0]["field"] == "body.kind"
    assert both.status_code == 400
    assert commands(client).pending() == []


def test_bot_events_when_none_is_an_empty_list(client: TestClient, csrf: str) -> None:
    assert client.get("/api/bot/events").json() == {"items": [], "total": 0}
    assert client.get("/api/bot/equity").json() == {"time": [], "equity": []}


def test_breaker_reason_when_tripped_or_overridden_says_why() -> None:
    from marketbot.web.bot_view import breaker_reason

    tripped = {"trip": "daily_loss", "tripped_at": "2026-01-02T00:00:00+00:00",
               "trip_reason": "loss 600 > 500", "override": None}  # fmt: skip
    halted = {"trip": None, "override": {"mode": "halt", "who": "alice", "why": "news"}}

    assert breaker_reason(tripped) == "daily_loss since 2026-01-02T00:00:00+00:00: loss 600 > 500"
    assert breaker_reason(halted) == "halt by alice: news"
    assert breaker_reason({}) is None
