"""Reading ccxt's unified dicts into the execution records, edge cases included."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketbot.core.errors import DataError
from marketbot.execution.ccxt_records import (
    read_balance,
    read_market,
    read_order,
    read_ticker,
    read_time,
)
from marketbot.execution.models import Fee, OrderStatus, OrderType

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
MS = 1_767_614_400_000  # 2026-01-05T12:00:00Z


def order(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "id": "42", "clientOrderId": "mb-1", "symbol": "BTC/USDT", "side": "buy",
        "type": "market", "amount": 0.01, "filled": 0.01, "status": "closed",
        "average": 30000.0, "timestamp": MS, "price": 30000.0, "triggerPrice": None,
        "trades": [
            {"price": 30000.0, "amount": 0.004, "fee": {"cost": 0.000004, "currency": "BTC"}},
            {"price": 30000.0, "amount": 0.006, "fee": {"cost": 0.000006, "currency": "BTC"}},
        ],
    }  # fmt: skip
    return values | changes


def test_read_order_when_filled_in_two_fills_sums_their_fees_in_one_currency() -> None:
    read = read_order(order(), NOW)

    assert (read.status, read.type, read.filled, read.remaining) == (
        OrderStatus.CLOSED,
        OrderType.MARKET,
        0.01,
        0.0,
    )
    assert read.price is None  # a market order has no limit price
    assert read.fee == Fee(cost=pytest.approx(0.00001), currency="BTC")  # type: ignore[arg-type]
    assert [(t.order_id, t.side, t.client_order_id) for t in read.trades] == [
        ("42", "buy", "mb-1"),
        ("42", "buy", "mb-1"),
    ]
    assert read.timestamp == NOW


def test_read_order_when_a_stop_rests_reads_its_trigger_price() -> None:
    read = read_order(
        order(type="stop_loss", filled=0.0, status="open", average=None, price=None,
              triggerPrice=28000.0, trades=[]),
        NOW,
    )  # fmt: skip

    assert (read.type, read.stop_price, read.remaining, read.status) == (
        OrderType.STOP,
        28000.0,
        0.01,
        OrderStatus.OPEN,
    )


def test_read_order_when_closed_with_nothing_filled_reads_it_as_canceled() -> None:
    read = read_order(order(filled=0.0, average=None, trades=[]), NOW)

    assert read.status is OrderStatus.CANCELED


def test_read_order_when_the_status_is_missing_or_unknown() -> None:
    assert read_order(order(status=None, filled=0.0, average=None), NOW).is_open
    with pytest.raises(DataError, match="order 42: unknown status 'weird'"):
        read_order(order(status="weird"), NOW)
    with pytest.raises(DataError, match="an order without an id"):
        read_order(order(id=None), NOW)


def test_read_order_when_the_average_is_missing_derives_it_from_the_cost() -> None:
    read = read_order(order(average=None, cost=301.0), NOW)

    assert read.average == pytest.approx(30100.0)


def test_read_ticker_when_there_is_no_last_price_uses_the_close_or_refuses() -> None:
    ticker = read_ticker({"close": 100.5, "bid": 0, "ask": None, "timestamp": None}, "X/USD", NOW)

    assert (ticker.last, ticker.bid, ticker.ask, ticker.at) == (100.5, None, None, NOW)
    with pytest.raises(DataError, match="ticker of X/USD: no last price"):
        read_ticker({"last": None, "close": None}, "X/USD", NOW)


def test_read_balance_and_market_when_values_are_missing_or_negative() -> None:
    balance = read_balance({"free": {"USDT": 10.0, "BNB": -0.5}, "used": {"USDT": 2.0}}, NOW)
    market = read_market({"symbol": "A/USD", "base": "A", "quote": "USD", "precision": {}})

    assert (balance.free("USDT"), balance.total("USDT"), balance.free("BNB")) == (10, 12, 0)
    assert (market.amount_step, market.min_cost) == (None, None)
    assert read_time(MS) == NOW
    with pytest.raises(ValueError, match="open time"):
        read_time("yesterday")
