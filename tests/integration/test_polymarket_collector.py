"""PolymarketCollector against a local Gamma and CLOB serving the real samples, both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from pytest_httpserver import HTTPServer

from marketbot.config import Settings
from marketbot.core.errors import ConfigError
from marketbot.net import ApiError, ServerUnavailableError
from marketbot.sources.polymarket import PolymarketCollector
from marketbot.sources.polymarket_api import MAX_HISTORY_WINDOW_SECONDS, PolymarketApi
from marketbot.store import Database, PolymarketHistory, PolymarketRepository
from tests.support.fake_polymarket import (
    CLOSED_MARKET_ID,
    EVENT_SLUG,
    NO_TOKEN,
    NOW,
    OPEN_MARKET_ID,
    OPEN_MARKET_SLUG,
    YES_TOKEN,
    FakePolymarket,
    sample_history,
)
from tests.support.fake_time import FakeTime

SAMPLE_START = datetime(2026, 2, 6, 16, tzinfo=UTC)
SAMPLE_POINTS = 1439  # 1,440 in the answer, the last second twice


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime(NOW)


@pytest.fixture
def polymarket(httpserver: HTTPServer) -> FakePolymarket:
    return FakePolymarket(httpserver)


def make_collector(
    polymarket: FakePolymarket,
    database: Database,
    fake_time: FakeTime,
    window_seconds: int = MAX_HISTORY_WINDOW_SECONDS,
) -> PolymarketCollector:
    settings = Settings(
        polymarket_gamma_url=polymarket.gamma_url,
        polymarket_clob_url=polymarket.clob_url,
        polymarket_calls_per_minute=600,
        http_timeout_seconds=5,
    )
    api = PolymarketApi.from_settings(settings, clock=fake_time.clock, sleep=fake_time.sleep)
    return PolymarketCollector(
        api, PolymarketRepository(database), clock=fake_time.clock, window_seconds=window_seconds
    )


@pytest.fixture
def collector(
    polymarket: FakePolymarket, database: Database, fake_time: FakeTime
) -> Iterator[PolymarketCollector]:
    with make_collector(polymarket, database, fake_time) as instance:
        yield instance


def history_rows(database: Database) -> int:
    with database.engine.connect() as connection:
        return int(connection.scalar(sa.select(sa.func.count()).select_from(PolymarketHistory)))


def test_collect_market_when_slug_given_stores_market_and_every_token(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    calls: list[tuple[int, int]] = []

    summary = collector.collect_market(
        OPEN_MARKET_SLUG, fidelity_minutes=1, progress=lambda *call: calls.append(call)
    )

    (market,) = summary.markets
    assert market.market.market_id == OPEN_MARKET_ID
    assert [(t.outcome, t.token_id, t.points) for t in market.tokens] == [
        ("Yes", YES_TOKEN, SAMPLE_POINTS),
        ("No", NO_TOKEN, SAMPLE_POINTS),
    ]
    # From the market's start (2025-12-04) to now: 65 days, five 14-day windows a token.
    assert market.start == datetime(2025, 12, 4, 21, 46, 5, 703374, tzinfo=UTC)
    assert market.end == NOW
    assert summary.requests == len(polymarket.history_requests) == 10
    assert calls[-1] == (10, 10) and len(calls) == 10
    assert all(
        int(r["endTs"]) - int(r["startTs"]) <= MAX_HISTORY_WINDOW_SECONDS and r["fidelity"] == "1"
        for r in polymarket.history_requests
    )
    assert history_rows(database) == 2 * SAMPLE_POINTS
    yes = collector.repository.load_history(YES_TOKEN)
    assert yes["price"].iloc[0] == 0.23 and yes["price"].between(0.225, 0.245).all()
    assert yes.index[0] == datetime(2026, 2, 6, 16, 9, 17, tzinfo=UTC)
    assert yes["liquidity"].isna().all()  # the CLOB history has no liquidity
    stored = collector.repository.get_market(OPEN_MARKET_SLUG)
    assert stored is not None
    assert stored.info.liquidity == pytest.approx(33379.2455)  # the snapshot, on the market
    assert stored.info.event_slug is None  # /markets?slug= does not name the event
    assert stored.collected_until == NOW and stored.fidelity_minutes == 1
    assert summary.lines()[-1] == (
        f"collected 1 market(s), 2 token(s), {2 * SAMPLE_POINTS} points in 10 "
        "price-history request(s)"
    )


def test_collect_market_when_run_twice_stores_no_duplicates(
    collector: PolymarketCollector, database: Database
) -> None:
    first = collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)
    second = collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert first.points == second.points == 2 * SAMPLE_POINTS
    assert history_rows(database) == 2 * SAMPLE_POINTS
    assert len(collector.repository.list_markets()) == 1


def test_collect_market_when_fidelity_hourly_stores_one_point_an_hour(
    collector: PolymarketCollector, polymarket: FakePolymarket
) -> None:
    summary = collector.collect_market(OPEN_MARKET_ID, start=SAMPLE_START)

    assert {r["fidelity"] for r in polymarket.history_requests} == {"60"}
    assert summary.points == 2 * 25  # 16:09 on the 6th to 16:08 on the 7th touches 25 hours
    assert polymarket.gamma_requests(f"/markets/{OPEN_MARKET_ID}") == 1  # a numeric id


def test_collect_market_when_event_slug_given_stores_every_market_of_the_event(
    collector: PolymarketCollector, polymarket: FakePolymarket
) -> None:
    summary = collector.collect_market(EVENT_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert [m.market.market_id for m in summary.markets] == [
        CLOSED_MARKET_ID,
        OPEN_MARKET_ID,
        "692250",
        "692258",
    ]
    closed = summary.markets[0]
    # It stopped trading on 2026-01-05, before the start asked for: nothing to fetch.
    assert closed.end == datetime(2026, 1, 5, 4, 22, 25, tzinfo=UTC)
    assert [t.requests for t in closed.tokens] == [0, 0]
    assert summary.points == 2 * SAMPLE_POINTS  # only one market's tokens have history here
    stored = {m.info.market_id: m for m in collector.repository.list_markets()}
    assert set(stored) == {CLOSED_MARKET_ID, OPEN_MARKET_ID, "692250", "692258"}
    assert {m.info.event_slug for m in stored.values()} == {EVENT_SLUG}
    assert stored[CLOSED_MARKET_ID].winning_outcome == "No"
    assert stored[CLOSED_MARKET_ID].info.resolution_status == "resolved"
    assert stored[CLOSED_MARKET_ID].collected_until is None  # its range was never fetched
    assert not stored[CLOSED_MARKET_ID].history_complete


@pytest.mark.parametrize("gamma_says", ["an empty list", "404"])
def test_collect_market_when_slug_unknown_raises_a_clear_404_and_stores_nothing(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database, gamma_says: str
) -> None:
    if gamma_says == "404":
        for path in ("/gamma/events", "/gamma/markets"):
            polymarket.fail_next(
                path, lambda handler: handler.respond_with_json({"error": "not found"}, status=404)
            )

    with pytest.raises(ApiError, match="no market or event with slug 'no-such-market'") as caught:
        collector.collect_market("no-such-market")

    assert caught.value.status_code == 404
    assert "Polymarket Gamma GET /events?slug=no-such-market" in str(caught.value)
    assert "GET /markets?slug=no-such-market" in str(caught.value)
    assert collector.repository.list_markets() == []


def test_collect_market_when_id_unknown_raises_a_clear_404(
    collector: PolymarketCollector,
) -> None:
    with pytest.raises(ApiError, match="no market with id 999999") as caught:
        collector.collect_market("999999")

    assert caught.value.status_code == 404
    assert "Polymarket Gamma GET /markets/999999: HTTP 404" in str(caught.value)


def test_collect_market_when_gamma_answer_truncated_stores_nothing(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    polymarket.fail_next(
        "/gamma/markets",
        lambda handler: handler.respond_with_data(
            '[{"id": "824952", "question": "MicroStr', content_type="application/json"
        ),
    )

    with pytest.raises(ApiError, match="not valid JSON") as caught:
        collector.collect_market(OPEN_MARKET_SLUG)

    assert OPEN_MARKET_SLUG in str(caught.value) and "Polymarket Gamma" in str(caught.value)
    assert collector.repository.list_markets() == []
    assert history_rows(database) == 0


def test_collect_market_when_clob_answer_malformed_stores_none_of_that_token(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    polymarket.fail_next(
        "/clob/prices-history",
        lambda handler: handler.respond_with_data(
            '{"history": [{"t": 1770394157, "p": 0.2', content_type="application/json"
        ),
    )

    with pytest.raises(ApiError, match="not valid JSON") as caught:
        collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START)

    message = str(caught.value)
    assert f"market {OPEN_MARKET_SLUG!r}, outcome 'Yes' (token {YES_TOKEN})" in message
    assert "Polymarket CLOB GET /prices-history" in message
    assert history_rows(database) == 0


def test_collect_market_when_a_late_window_has_a_bad_price_stores_nothing_of_the_token(
    polymarket: FakePolymarket, database: Database, fake_time: FakeTime
) -> None:
    polymarket.history[YES_TOKEN].append({"t": 1770480600, "p": 1.5})  # 2026-02-07 16:10
    with (
        make_collector(polymarket, database, fake_time, window_seconds=6 * 3600) as collector,
        pytest.raises(ApiError, match=r"price 1\.5 is not within 0\.\.1") as caught,
    ):
        collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert len(polymarket.history_requests) == 5  # four good windows were fetched first
    assert f"token {YES_TOKEN}" in str(caught.value)
    assert f"prices-history?market={YES_TOKEN}" in str(caught.value)
    assert history_rows(database) == 0


def test_collect_market_when_a_point_has_a_wrong_field_raises_naming_it(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    polymarket.history[NO_TOKEN][5] = {"t": polymarket.history[NO_TOKEN][5]["t"], "price": 0.7}

    with pytest.raises(ApiError, match=r"history\[5\]: 'p' should be a number") as caught:
        collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert "outcome 'No'" in str(caught.value)
    # The YES token's batch was complete and stays; nothing of the NO token is stored.
    assert collector.repository.last_timestamps().keys() == {YES_TOKEN}
    assert history_rows(database) == SAMPLE_POINTS


def test_collect_market_when_5xx_then_success_retries_and_stores_everything(
    collector: PolymarketCollector,
    polymarket: FakePolymarket,
    database: Database,
    fake_time: FakeTime,
) -> None:
    for status in (503, 502):
        polymarket.fail_next(
            "/clob/prices-history",
            lambda handler, status=status: handler.respond_with_data("busy", status=status),
        )

    summary = collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert summary.points == 2 * SAMPLE_POINTS
    assert history_rows(database) == 2 * SAMPLE_POINTS
    assert fake_time.sleeps == [1.0, 2.0]  # tenacity's backoff, on the injected sleep


def test_collect_market_when_5xx_persists_raises_naming_market_and_endpoint(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    for _ in range(4):
        polymarket.fail_next(
            "/clob/prices-history", lambda handler: handler.respond_with_data("down", status=500)
        )

    with pytest.raises(ServerUnavailableError, match="gave up after 4 attempts") as caught:
        collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START)

    assert f"market {OPEN_MARKET_SLUG!r}, outcome 'Yes'" in str(caught.value)
    assert "Polymarket CLOB GET /prices-history: HTTP 500" in str(caught.value)
    assert history_rows(database) == 0


def test_collect_market_when_rate_limited_waits_retry_after_then_succeeds(
    collector: PolymarketCollector,
    polymarket: FakePolymarket,
    database: Database,
    fake_time: FakeTime,
) -> None:
    for path in ("/gamma/markets", "/clob/prices-history"):
        polymarket.fail_next(
            path,
            lambda handler: handler.respond_with_data(
                "slow down", status=429, headers={"Retry-After": "7"}
            ),
        )

    summary = collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)

    assert summary.points == 2 * SAMPLE_POINTS
    assert fake_time.sleeps == [7.0, 7.0]


def test_collect_market_when_start_after_end_raises(collector: PolymarketCollector) -> None:
    with pytest.raises(ConfigError, match="is after end"):
        collector.collect_market(OPEN_MARKET_SLUG, start=NOW, end=SAMPLE_START)
    with pytest.raises(ConfigError, match="fidelity must be at least 1 minute"):
        collector.collect_market(OPEN_MARKET_SLUG, fidelity_minutes=0)


def test_update_all_when_partly_collected_fetches_from_the_last_point_on(
    polymarket: FakePolymarket, database: Database, fake_time: FakeTime
) -> None:
    fake_time.clock.set(datetime(2026, 2, 7, 4, tzinfo=UTC))
    with make_collector(polymarket, database, fake_time) as collector:
        first = collector.collect_market(OPEN_MARKET_SLUG, start=SAMPLE_START, fidelity_minutes=1)
        fake_time.clock.set(NOW)
        polymarket.history_requests.clear()

        update = collector.update_all()
        again = collector.update_all()

    assert first.points < 2 * SAMPLE_POINTS
    (market,) = update.collected
    assert market.points == 2 * SAMPLE_POINTS - first.points  # only what was new
    last_stored = max(p["t"] for p in sample_history() if p["t"] <= 1770436800)  # 04:00
    assert int(polymarket.history_requests[0]["startTs"]) == last_stored + 1
    assert {r["fidelity"] for r in polymarket.history_requests} == {"1"}  # as first collected
    assert history_rows(database) == 2 * SAMPLE_POINTS
    assert again.collected[0].points == 0 and again.failures == ()
    assert update.lines()[-1] == (
        f"updated 1 market(s), {market.points} points; 0 complete market(s) skipped; 0 failed"
    )


def test_update_all_when_closed_market_complete_skips_it_without_a_request(
    collector: PolymarketCollector, polymarket: FakePolymarket
) -> None:
    collector.collect_market(CLOSED_MARKET_ID, start=datetime(2025, 12, 25, tzinfo=UTC))
    before = polymarket.gamma_requests(f"/markets/{CLOSED_MARKET_ID}")

    update = collector.update_all()

    assert update.skipped == ("microstrategy-sell-any-bitcoin-in-2025",)
    assert update.collected == ()
    assert polymarket.gamma_requests(f"/markets/{CLOSED_MARKET_ID}") == before


def test_update_all_when_one_market_fails_reports_it_and_updates_the_others(
    collector: PolymarketCollector, polymarket: FakePolymarket, database: Database
) -> None:
    for market in ("692250", OPEN_MARKET_ID):
        collector.collect_market(market, start=NOW - timedelta(hours=1))
    del polymarket.markets["692250"]  # Gamma no longer knows it

    update = collector.update_all()

    assert [m.market.market_id for m in update.collected] == [OPEN_MARKET_ID]
    ((slug, message),) = update.failures
    assert slug == "microstrategy-sells-any-bitcoin-by-march-31-2026"
    assert "no market with id 692250" in message
    assert "failed: microstrategy-sells-any-bitcoin-by-march-31-2026: " in update.lines()[1]
