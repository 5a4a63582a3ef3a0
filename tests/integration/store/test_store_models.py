"""The seed's six models through the ORM, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marketbot.store import (
    Alert,
    APIKey,
    CryptoPriceHistory,
    Database,
    PolymarketHistory,
    PositionConfig,
    TradeJournal,
)

PLUS_TWO = timezone(timedelta(hours=2))


def test_models_when_saved_and_read_back_round_trip_with_utc_times(database: Database) -> None:
    triggered = datetime(2024, 3, 1, 14, 30, 15, 123456, tzinfo=PLUS_TWO)
    with database.session() as session, session.begin():
        session.add_all(
            [
                CryptoPriceHistory(
                    source="coingecko",
                    symbol="bitcoin",
                    timeframe="1d",
                    timestamp=1_700_000_000,
                    open=1.0,
                    high=2.0,
                    low=0.5,
                    close=1.5,
                    volume=0.0,
                ),
                PolymarketHistory(
                    market_id="m1", token_id="t1", outcome="Yes", timestamp=1, price=0.42
                ),
                TradeJournal(symbol="bitcoin", entry_reason="breakout", confidence=7, rating=4),
                Alert(
                    name="BTC above 100k",
                    kind="price",
                    subject="bitcoin",
                    metric="price",
                    operator=">",
                    threshold=100_000.0,
                    last_triggered=triggered,
                ),
                PositionConfig(position_key="bitcoin", stop_loss=0.05, max_hold_seconds=86_400),
                APIKey(
                    exchange="binance",
                    encrypted_key=b"gAAAA-key",
                    encrypted_secret=b"gAAAA-secret",
                    masked_key="abcd...wxyz",
                ),
            ]
        )

    with database.session() as session:
        alert = session.scalars(sa.select(Alert)).one()
        journal = session.scalars(sa.select(TradeJournal)).one()
        key = session.scalars(sa.select(APIKey)).one()
        polymarket = session.scalars(sa.select(PolymarketHistory)).one()
        config = session.scalars(sa.select(PositionConfig)).one()

    assert alert.last_triggered == triggered
    assert alert.last_triggered is not None and alert.last_triggered.tzinfo == UTC
    assert alert.enabled is True and alert.trigger_count == 0
    assert journal.created_at.tzinfo == UTC
    assert abs(datetime.now(UTC) - journal.created_at) < timedelta(minutes=5)
    assert key.label == "default" and key.encrypted_secret == b"gAAAA-secret"
    assert polymarket.liquidity is None
    assert config.take_profit is None and config.stop_loss == 0.05


def test_utc_datetime_when_naive_value_saved_reads_back_as_utc(database: Database) -> None:
    naive = datetime(2024, 1, 2, 3, 4, 5)
    with database.session() as session, session.begin():
        session.add(
            Alert(
                name="n",
                kind="portfolio",
                metric="total_value",
                operator=">=",
                threshold=1.0,
                last_triggered=naive,
            )
        )

    with database.session() as session:
        stored = session.scalars(sa.select(Alert.last_triggered)).one()

    assert stored == naive.replace(tzinfo=UTC)


@pytest.mark.parametrize(
    "make_model",
    [
        lambda: PositionConfig(position_key="a", stop_loss=1.5),
        lambda: PositionConfig(position_key="b", max_hold_seconds=0),
        lambda: PolymarketHistory(market_id="m", token_id="t", outcome="No", timestamp=1, price=2),
        lambda: Alert(name="x", kind="weather", metric="m", operator=">", threshold=1.0),
        lambda: Alert(name="x", kind="price", metric="m", operator="==", threshold=1.0),
        lambda: TradeJournal(symbol="s", confidence=11),
    ],
    ids=["stop_loss", "max_hold", "probability", "alert_kind", "operator", "confidence"],
)
def test_models_when_value_out_of_range_database_rejects_it(
    database: Database, make_model: Callable[[], object]
) -> None:
    with pytest.raises(sa.exc.IntegrityError), database.session() as session, session.begin():
        session.add(make_model())


def test_api_key_model_when_inspected_has_no_plaintext_column() -> None:
    columns = set(APIKey.__table__.columns.keys())

    assert {"encrypted_key", "encrypted_secret", "masked_key"} <= columns
    assert not columns & {"key", "secret", "api_key", "api_secret", "password"}
