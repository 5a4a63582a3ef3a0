"""PolymarketRepository on SQLite and PostgreSQL: idempotent upserts, whole batches, loading."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pandas as pd
import pytest

from marketbot.core.errors import DataError
from marketbot.store import (
    Database,
    PolymarketMarketInfo,
    PolymarketPricePoint,
    PolymarketRepository,
)

YES_TOKEN = "111128191581505463501777127559667396812474366956707382672202929745167742497287"
NO_TOKEN = "99807503632459517030616292055983105381849115736225256331133222076990620978808"

MARKET = PolymarketMarketInfo(
    market_id="824952",
    condition_id="0x8213d395e079614d6c4d7f4cbb9be9337ab51648a21cc2a334ae8f1966d164b4",
    slug="microstrategy-sells-any-bitcoin-by-december-31-2026",
    question="MicroStrategy sells any Bitcoin by December 31, 2026?",
    event_slug="microstrategy-sell-any-bitcoin-in-2025",
    outcomes=("Yes", "No"),
    token_ids=(YES_TOKEN, NO_TOKEN),
    outcome_prices=(0.23, 0.77),
    volume=225742.615693,
    liquidity=33379.2455,
    start_date=datetime(2025, 12, 4, 21, 46, 5, tzinfo=UTC),
    end_date=datetime(2026, 7, 1, 4, tzinfo=UTC),
    closed=False,
    closed_time=None,
    resolution_status=None,
)
T0 = 1770394157  # 2026-02-06 16:09:17 UTC, the first point of the CLOB sample


def points(*prices: float, start: int = T0) -> list[PolymarketPricePoint]:
    return [PolymarketPricePoint(start + 60 * i, price) for i, price in enumerate(prices)]


@pytest.fixture
def repository(database: Database) -> PolymarketRepository:
    repo = PolymarketRepository(database)
    repo.upsert_market(MARKET)
    return repo


def test_upsert_market_when_stored_twice_keeps_one_row_with_new_values(
    repository: PolymarketRepository,
) -> None:
    repository.upsert_market(dataclasses.replace(MARKET, liquidity=1.0, event_slug=None))

    markets = repository.list_markets()
    assert len(markets) == 1
    stored = markets[0]
    assert stored.info.liquidity == 1.0
    assert stored.info.event_slug == MARKET.event_slug  # a missing slug keeps the known one
    assert stored.info.tokens == (("Yes", YES_TOKEN), ("No", NO_TOKEN))
    assert stored.info.start_date == MARKET.start_date
    assert stored.winning_outcome is None
    assert not stored.history_complete


def test_get_market_when_given_slug_or_id_finds_it(repository: PolymarketRepository) -> None:
    by_id = repository.get_market("824952")
    by_slug = repository.get_market(MARKET.slug)

    assert by_id is not None and by_slug is not None
    assert by_id.info == by_slug.info == MARKET
    assert repository.get_market("nope") is None


def test_upsert_points_when_rerun_is_idempotent(repository: PolymarketRepository) -> None:
    batch = points(0.23, 0.24, 0.25)

    assert repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", batch) == 3
    assert repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", batch) == 3
    history = repository.load_history(YES_TOKEN)

    assert list(history["price"]) == [0.23, 0.24, 0.25]
    assert history.index[0] == pd.Timestamp(T0, unit="s", tz="UTC")
    assert history["liquidity"].isna().all()


def test_upsert_points_when_point_restored_later_wins(repository: PolymarketRepository) -> None:
    repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.23, 0.24))
    repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.5, start=T0 + 60))

    assert list(repository.load_history(YES_TOKEN)["price"]) == [0.23, 0.5]


def test_upsert_points_when_a_price_is_outside_0_1_stores_nothing_of_the_batch(
    repository: PolymarketRepository,
) -> None:
    with pytest.raises(DataError, match=rf"{YES_TOKEN}.*1\.5, not within 0\.\.1"):
        repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.2, 1.5, 0.3))

    assert repository.load_history(YES_TOKEN).empty


def test_upsert_points_when_database_rejects_a_row_stores_nothing_of_the_batch(
    repository: PolymarketRepository,
) -> None:
    repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.2))
    batch = points(0.3, 0.4, start=T0 + 600)

    # A missing outcome gets past the Python checks and is refused by NOT NULL.
    with pytest.raises(DataError, match="rejected the batch of 2 points, so none of them"):
        repository.upsert_points(MARKET.market_id, YES_TOKEN, None, batch)  # type: ignore[arg-type]

    assert list(repository.load_history(YES_TOKEN)["price"]) == [0.2]


def test_upsert_points_when_timestamp_not_whole_seconds_raises(
    repository: PolymarketRepository,
) -> None:
    with pytest.raises(DataError, match="not whole seconds"):
        repository.upsert_points(
            MARKET.market_id,
            YES_TOKEN,
            "Yes",
            [PolymarketPricePoint(1.5, 0.2)],  # type: ignore[arg-type]
        )


def test_load_history_when_bounds_given_is_inclusive(repository: PolymarketRepository) -> None:
    repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.1, 0.2, 0.3, 0.4))

    history = repository.load_history(
        YES_TOKEN,
        start=pd.Timestamp(T0 + 60, unit="s", tz="UTC"),
        end=pd.Timestamp(T0 + 120, unit="s", tz="UTC"),
    )

    assert list(history["price"]) == [0.2, 0.3]


def test_last_timestamps_and_summaries_when_two_tokens_stored(
    repository: PolymarketRepository,
) -> None:
    repository.upsert_points(MARKET.market_id, YES_TOKEN, "Yes", points(0.2, 0.3))
    repository.upsert_points(MARKET.market_id, NO_TOKEN, "No", points(0.8, 0.7, 0.6))

    last = repository.last_timestamps(MARKET.market_id)
    (summary,) = repository.list_summaries()
    prices = repository.load_market_prices(MARKET.slug)

    assert last == {
        YES_TOKEN: pd.Timestamp(T0 + 60, unit="s", tz="UTC"),
        NO_TOKEN: pd.Timestamp(T0 + 120, unit="s", tz="UTC"),
    }
    assert summary.points == 5
    assert summary.first == pd.Timestamp(T0, unit="s", tz="UTC")
    assert summary.last == pd.Timestamp(T0 + 120, unit="s", tz="UTC")
    assert list(prices.columns) == ["Yes", "No"]
    assert prices["Yes"].isna().sum() == 1


def test_mark_collected_when_market_closed_and_covered_is_complete(
    repository: PolymarketRepository,
) -> None:
    closed_at = datetime(2026, 1, 5, 4, 22, 25, tzinfo=UTC)
    repository.upsert_market(
        dataclasses.replace(MARKET, closed=True, closed_time=closed_at, outcome_prices=(0, 1))
    )
    repository.mark_collected(MARKET.market_id, closed_at, fidelity_minutes=60)
    # An earlier range collected later does not move the mark back.
    repository.mark_collected(MARKET.market_id, datetime(2025, 1, 1, tzinfo=UTC), 60)

    stored = repository.get_market(MARKET.market_id)

    assert stored is not None
    assert stored.winning_outcome == "No"
    assert stored.fidelity_minutes == 60
    assert stored.collected_until is not None and stored.collected_until >= closed_at
    assert stored.info.history_end == closed_at  # trading stopped then, not at end_date
    assert stored.history_complete


def test_load_market_prices_when_market_unknown_raises(repository: PolymarketRepository) -> None:
    with pytest.raises(DataError, match="no Polymarket market 'nope' is stored"):
        repository.load_market_prices("nope")
