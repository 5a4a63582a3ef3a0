"""The trade journal: save, edit, search, filter, linked trades, drafts from the bot."""

from __future__ import annotations

from fastapi.testclient import TestClient

from marketbot.store.web_journal import JournalFilter, JournalRepository, draft_journal_entry
from tests.integration.web.conftest import run_jobs, store_sample_bars


def database(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.web_context.database  # type: ignore[attr-defined]


def test_journal_when_saved_edited_and_searched_keeps_the_edit(
    client: TestClient, csrf: str
) -> None:
    created = client.post(
        "/api/trade_journal/save",
        json={"symbol": "bitcoin", "strategy": "momentum", "entry_reason": "breakout",
              "confidence": "7", "rating": "4"},
    )  # fmt: skip
    assert created.status_code == 200
    entry_id = created.json()["id"]
    client.post("/api/trade_journal/save", json={"symbol": "ethereum", "lessons": "too early"})

    edited = client.post(
        "/api/trade_journal/save",
        json={"id": entry_id, "symbol": "bitcoin", "strategy": "momentum",
              "entry_reason": "breakout", "lessons": "held through the dip", "rating": 5},
    )  # fmt: skip

    assert edited.json()["lessons"] == "held through the dip"
    assert edited.json()["confidence"] is None
    found = client.get("/api/trade_journal/list", params={"q": "DIP"}).json()
    assert [e["id"] for e in found["items"]] == [entry_id]
    assert client.get("/api/trade_journal/list", params={"rating": 5}).json()["total"] == 1
    assert client.get("/api/trade_journal/list", params={"symbol": "ethereum"}).json()["total"] == 1
    assert client.get("/api/trade_journal/list", params={"q": "100%"}).json()["total"] == 0
    assert client.get("/api/trade_journal/list").json()["total"] == 2


def test_journal_when_rating_six_or_confidence_eleven_is_422_and_nothing_saved(
    client: TestClient, csrf: str
) -> None:
    six = client.post("/api/trade_journal/save", json={"symbol": "bitcoin", "rating": 6})
    eleven = client.post("/api/trade_journal/save", json={"symbol": "bitcoin", "confidence": 11})

    assert six.status_code == 422
    assert six.json()["detail"][0]["field"] == "body.rating"
    assert eleven.json()["detail"][0]["field"] == "body.confidence"
    assert client.get("/api/trade_journal/list").json()["total"] == 0


def test_journal_when_unknown_id_is_404(client: TestClient, csrf: str) -> None:
    assert client.post("/api/trade_journal/save", json={"id": 5, "symbol": "x"}).status_code == 404
    assert client.post("/api/trade_journal/5/delete").status_code == 404


def test_journal_when_linked_to_a_backtest_trade_shows_it(client: TestClient, csrf: str) -> None:
    store_sample_bars(client)
    client.post(
        "/api/backtests/run",
        json={"strategy": "sma_crossover", "symbol": "bitcoin", "start": "2024-01-01"},
    )
    (job,) = run_jobs(client)
    reference = f"run:{job.result['run_id']}:1"

    saved = client.post(
        "/api/trade_journal/save", json={"symbol": "bitcoin", "trade_ref": reference}
    )
    missing = client.post(
        "/api/trade_journal/save", json={"symbol": "bitcoin", "trade_ref": "run:999:1"}
    )

    assert saved.status_code == 200
    (item,) = client.get("/api/trade_journal/list").json()["items"]
    assert item["trade"]["strategy"] == "sma_crossover"
    assert item["trade"]["entry_price"] > 0
    assert missing.status_code == 400
    assert missing.json()["detail"][0]["field"] == "body.trade_ref"
    page = client.get("/trade_journal", params={"trade_ref": reference})
    assert reference in page.text


def test_journal_when_deleted_is_gone(client: TestClient, csrf: str) -> None:
    entry_id = client.post("/api/trade_journal/save", json={"symbol": "bitcoin"}).json()["id"]

    assert client.post(f"/api/trade_journal/{entry_id}/delete").status_code == 200
    assert client.get("/api/trade_journal/list").json()["total"] == 0


def test_draft_journal_entry_when_called_twice_for_a_trade_makes_one_draft(
    client: TestClient, csrf: str
) -> None:
    first = draft_journal_entry(
        database(client),
        trade_id=7,
        symbol="BTC/USDT",
        strategy="momentum",
        entry_tag="breakout_long",
    )
    second = draft_journal_entry(
        database(client), trade_id=7, symbol="BTC/USDT", strategy="momentum", entry_tag="other"
    )

    assert first == second
    entries, total = JournalRepository(database(client)).list_entries(JournalFilter())
    assert total == 1
    assert (entries[0].trade_ref, entries[0].entry_reason) == ("trade:7", "breakout_long")


def test_journal_list_when_search_form_sends_blank_filters_ignores_them(
    client: TestClient, csrf: str
) -> None:
    client.post("/api/trade_journal/save", json={"symbol": "bitcoin"})

    response = client.get(
        "/api/trade_journal/list?q=&strategy=&symbol=&rating=&start=&end=",
        headers={"HX-Request": "true"},
    )

    assert response.status_code == 200
    assert "bitcoin" in response.text
