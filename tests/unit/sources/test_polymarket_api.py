"""Parsing Polymarket's Gamma and CLOB answers: the real samples, and every malformed shape."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.core.errors import ConfigError
from marketbot.net import ApiError
from marketbot.sources.polymarket_api import (
    MAX_HISTORY_WINDOW_SECONDS,
    history_windows,
    parse_gamma_events,
    parse_gamma_market,
    parse_gamma_markets,
    parse_price_history,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "polymarket"
WHERE = "Polymarket Gamma GET /markets?slug=x"
YES_TOKEN = "111128191581505463501777127559667396812474366956707382672202929745167742497287"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def markets_sample() -> list[dict[str, Any]]:
    return load("gamma_markets_response.json")  # type: ignore[no-any-return]


@pytest.fixture
def events_sample() -> list[dict[str, Any]]:
    return load("gamma_events_response.json")  # type: ignore[no-any-return]


@pytest.fixture
def market(events_sample: list[dict[str, Any]]) -> dict[str, Any]:
    return copy.deepcopy(events_sample[0]["markets"][1])  # 824952, open, with liquidity


# -- Gamma -----------------------------------------------------------------------------------


def test_parse_gamma_markets_when_real_sample_reads_every_market(
    markets_sample: list[dict[str, Any]],
) -> None:
    markets = parse_gamma_markets(markets_sample, where=WHERE)

    assert len(markets) == 20
    first = markets[0]
    assert first.market_id == "12"
    assert first.slug == "will-joe-biden-get-coronavirus-before-the-election"
    assert first.condition_id.startswith("0xe3b423df")
    assert first.outcomes == ("Yes", "No")
    assert len(first.token_ids) == 2 and all(t.isdigit() for t in first.token_ids)
    assert first.volume == pytest.approx(32257.45)
    assert first.liquidity == 0.0
    assert first.closed is True
    assert first.closed_time == datetime(2020, 11, 2, 16, 31, 1, tzinfo=UTC)
    assert first.end_date == datetime(2020, 11, 4, tzinfo=UTC)
    assert first.start_date == datetime(2020, 10, 2, 16, 10, 1, 467000, tzinfo=UTC)  # createdAt
    assert first.event_slug == "will-joe-biden-get-coronavirus-before-the-election"
    assert first.resolution_status is None


def test_winning_outcome_when_real_closed_markets_follows_settled_prices(
    markets_sample: list[dict[str, Any]], events_sample: list[dict[str, Any]]
) -> None:
    by_id = {m.market_id: m for m in parse_gamma_markets(markets_sample, where=WHERE)}
    by_id |= {m.market_id: m for m in parse_gamma_events(events_sample, where=WHERE)}

    assert by_id["19"].winning_outcome == "No"  # 0.000001 / 0.999999 (an old AMM market)
    assert by_id["48"].winning_outcome == "Long"
    assert by_id["12"].winning_outcome is None  # Gamma reports 0 / 0
    assert by_id["43"].winning_outcome is None  # a scalar market settled at 0.58 / 0.42
    assert by_id["516926"].winning_outcome == "No"  # "0" / "1", UMA resolved
    assert by_id["824952"].winning_outcome is None  # open


def test_parse_gamma_events_when_real_sample_tags_markets_with_the_event(
    events_sample: list[dict[str, Any]],
) -> None:
    markets = parse_gamma_events(events_sample, where=WHERE)

    assert [m.market_id for m in markets] == ["516926", "824952", "692250", "692258"]
    assert {m.event_slug for m in markets} == {"microstrategy-sell-any-bitcoin-in-2025"}
    resolved, open_market, no_end_date = markets[0], markets[1], markets[2]
    assert resolved.resolution_status == "resolved"
    assert resolved.liquidity is None  # a closed market without liquidity fields
    assert resolved.history_end == datetime(2026, 1, 5, 4, 22, 25, tzinfo=UTC)
    assert open_market.token_ids[0] == YES_TOKEN
    assert open_market.outcome_prices == (0.23, 0.77)
    assert open_market.liquidity == pytest.approx(33379.2455)
    assert open_market.history_end is None
    assert open_market.start_date == datetime(2025, 12, 4, 21, 46, 5, 703374, tzinfo=UTC)
    assert no_end_date.end_date is None


def test_parse_gamma_events_when_a_market_is_not_on_the_order_book_skips_only_it(
    events_sample: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    events = copy.deepcopy(events_sample)
    del events[0]["markets"][2]["clobTokenIds"]

    markets = parse_gamma_events(events, where=WHERE)

    assert [m.market_id for m in markets] == ["516926", "824952", "692258"]
    assert "no clobTokenIds; skipped" in caplog.text


def test_parse_gamma_events_when_token_ids_malformed_still_raises(
    events_sample: list[dict[str, Any]],
) -> None:
    events = copy.deepcopy(events_sample)
    events[0]["markets"][2]["clobTokenIds"] = "[1, 2"

    with pytest.raises(ApiError, match="clobTokenIds"):
        parse_gamma_events(events, where=WHERE)


def test_parse_gamma_market_when_lists_are_real_json_lists_accepts_them(
    market: dict[str, Any],
) -> None:
    market["outcomes"] = ["Yes", "No"]
    market["clobTokenIds"] = json.loads(market["clobTokenIds"])

    assert parse_gamma_market(market, where=WHERE).outcomes == ("Yes", "No")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"outcomes": '["Yes", "No"'}, "'outcomes' is not a JSON-encoded list"),
        ({"outcomes": '{"a": 1}'}, "'outcomes' should be a list"),
        ({"outcomes": "[]"}, "'outcomes' should be a non-empty list of text"),
        ({"clobTokenIds": '["1"]'}, "2 outcomes, 1 clobTokenIds"),
        ({"clobTokenIds": None}, "has no 'clobTokenIds'"),
        ({"outcomePrices": '["0.2", "1.7"]'}, "'outcomePrices' should be prices within 0..1"),
        ({"outcomePrices": '["0.2", "x"]'}, "'outcomePrices' should be prices"),
        ({"conditionId": None}, "has no 'conditionId'"),
        ({"question": 42.5}, "'question' should be text"),
        ({"closed": "false"}, "'closed' should be true or false"),
        ({"endDate": "soon"}, "'endDate' should be an ISO date"),
        ({"liquidityNum": -3}, "'liquidityNum' should be an amount >= 0"),
        ({"volumeNum": "lots"}, "'volumeNum' should be an amount >= 0"),
    ],
)
def test_parse_gamma_market_when_a_field_is_wrong_names_market_field_and_endpoint(
    market: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    market.update(change)

    with pytest.raises(ApiError, match=message) as caught:
        parse_gamma_market(market, where=WHERE)

    assert WHERE in str(caught.value)
    assert "microstrategy-sells-any-bitcoin-by-december-31-2026" in str(caught.value)


def test_parse_gamma_market_when_slug_missing_names_the_id(market: dict[str, Any]) -> None:
    del market["slug"]

    with pytest.raises(ApiError, match="market id '824952' has no 'slug'"):
        parse_gamma_market(market, where=WHERE)


@pytest.mark.parametrize("payload", [{"id": "1"}, "markets", None, 3])
def test_parse_gamma_markets_when_not_a_list_raises(payload: Any) -> None:
    with pytest.raises(ApiError, match="expected a list of markets"):
        parse_gamma_markets(payload, where=WHERE)


def test_parse_gamma_markets_when_an_item_is_not_an_object_raises() -> None:
    with pytest.raises(ApiError, match="expected a market object, got str"):
        parse_gamma_markets(["12"], where=WHERE)


@pytest.mark.parametrize("payload", [{"markets": []}, [{"slug": "e"}], [{"markets": "[]"}]])
def test_parse_gamma_events_when_shape_wrong_raises(payload: Any) -> None:
    with pytest.raises(ApiError, match="event"):
        parse_gamma_events(payload, where=WHERE)


# -- CLOB ------------------------------------------------------------------------------------

CLOB_WHERE = f"Polymarket CLOB GET /prices-history?market={YES_TOKEN}"


def test_parse_price_history_when_real_sample_reads_every_point() -> None:
    points = parse_price_history(
        load("clob_prices_history_interval-1d_response.json"), where=CLOB_WHERE
    )

    # 1,440 points, the last one twice (the live answer repeats the newest second).
    assert len(points) == 1439
    assert points[0] == (1770394157, 0.23, None)
    assert points[-1].timestamp == 1770480499 and points[-1].price == 0.225
    assert all(a.timestamp < b.timestamp for a, b in itertools.pairwise(points))
    assert min(p.price for p in points) >= 0.225 and max(p.price for p in points) <= 0.245


def test_parse_price_history_when_unsorted_with_repeats_sorts_and_keeps_the_later() -> None:
    payload = {"history": [{"t": 30, "p": 0.3}, {"t": 10, "p": 0.1}, {"t": 30.0, "p": 0.4}]}

    points = parse_price_history(payload, where=CLOB_WHERE)

    assert [(p.timestamp, p.price) for p in points] == [(10, 0.1), (30, 0.4)]


def test_parse_price_history_when_empty_history_returns_nothing() -> None:
    assert parse_price_history({"history": []}, where=CLOB_WHERE) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([{"t": 1, "p": 0.5}], "expected {'history': \\[...\\]}, got list without 'history'"),
        ({"error": "invalid filters: interval is too long"}, "got an error: 'invalid filters"),
        ({"history": {"t": 1}}, "'history' should be a list, got dict"),
        ({"history": [[1, 0.5]]}, r"history\[0\] should be an object"),
        ({"history": [{"t": "1770394157", "p": 0.5}]}, r"history\[0\]: 't' should be Unix"),
        ({"history": [{"t": 1.5, "p": 0.5}]}, "'t' should be Unix seconds"),
        ({"history": [{"t": -1, "p": 0.5}]}, "'t' should be Unix seconds"),
        ({"history": [{"t": 1, "p": "0.5"}]}, "'p' should be a number"),
        ({"history": [{"t": 1, "p": True}]}, "'p' should be a number"),
        ({"history": [{"t": 1}]}, "'p' should be a number"),
        ({"history": [{"t": 1, "p": 0.5}, {"t": 2, "p": 1.5}]}, r"price 1.5 is not within 0..1"),
        ({"history": [{"t": 1, "p": float("nan")}]}, "price nan is not within 0..1"),
    ],
)
def test_parse_price_history_when_shape_wrong_names_endpoint_and_token(
    payload: Any, message: str
) -> None:
    with pytest.raises(ApiError, match=message) as caught:
        parse_price_history(payload, where=CLOB_WHERE)

    assert YES_TOKEN in str(caught.value)


# -- windows ---------------------------------------------------------------------------------


def test_history_windows_when_range_long_splits_it_at_most_window_long() -> None:
    assert history_windows(0, 25, 10) == [(0, 10), (11, 21), (22, 25)]
    assert history_windows(5, 5, 10) == [(5, 5)]
    assert history_windows(6, 5, 10) == []


def test_history_windows_when_window_not_positive_raises() -> None:
    with pytest.raises(ConfigError, match="window_seconds"):
        history_windows(0, 10, 0)


@given(
    start=st.integers(0, 2_000_000_000),
    length=st.integers(-5, 400 * 86_400),
    window=st.integers(1, MAX_HISTORY_WINDOW_SECONDS),
)
def test_history_windows_cover_the_range_exactly_without_overlap(
    start: int, length: int, window: int
) -> None:
    windows = history_windows(start, start + length, window)

    covered = sum(last - first + 1 for first, last in windows)
    assert covered == max(0, length + 1)
    assert all(0 <= last - first <= window for first, last in windows)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(windows))
    if windows:
        assert windows[0][0] == start and windows[-1][1] == start + length
