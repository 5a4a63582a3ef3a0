"""Execution records (orders, markets, balances) and the scripted exchange that tests use."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from marketbot.core.errors import DataError, TemporaryError
from marketbot.execution import (
    PRIORITY_EMERGENCY,
    PRIORITY_LOW,
    AssetBalance,
    Balance,
    Candle,
    Exchange,
    Market,
    Order,
    OrderNotFoundError,
    OrderSide,
    OrderStatus,
    OrderType,
    Ticker,
)
from tests.support.fake_time import FakeTime
from tests.support.scripted_exchange import ScriptedExchange

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
BTC = Market("BTC/USDT", "BTC", "USDT", amount_step=0.001, price_tick=0.01, min_cost=10.0)


def an_order(**fields: object) -> Order:
    values: dict[str, object] = {
        "id": "1",
        "client_order_id": "mb-x",
        "symbol": "BTC/USDT",
        "side": OrderSide.BUY,
        "type": OrderType.MARKET,
        "amount": 1.0,
        "status": OrderStatus.OPEN,
        "timestamp": START,
        "remaining": 1.0,
    }
    values.update(fields)
    return Order(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": OrderType.LIMIT}, "`price` is required"),
        ({"type": OrderType.STOP}, "`stop_price` is required"),
        ({"amount": -1.0}, "`amount` must be a finite number >= 0"),
        ({"filled": 0.5, "average": None}, "filled 0.5 but no `average` price"),
        ({"status": OrderStatus.CLOSED, "filled": 0.5, "average": 1.0}, "`closed` means fully"),
        ({"price": 0.0}, "`price` must be a finite number > 0"),
    ],
)
def test_order_when_fields_cannot_be_right_raises_data_error(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        an_order(**fields)


def test_order_when_timestamp_is_naive_takes_it_as_utc() -> None:
    order = an_order(timestamp=datetime(2026, 3, 1, 12))

    assert order.timestamp == START
    assert order.is_open
    assert not order.is_fully_filled
    assert order.cost == 0.0


@pytest.mark.parametrize(
    ("amount", "rounded"), [(0.3, 0.3), (0.0379, 0.037), (1.0, 1.0), (0.0009, 0.0)]
)
def test_amount_to_precision_when_rounding_never_rounds_up(amount: float, rounded: float) -> None:
    assert BTC.amount_to_precision(amount) == rounded


def test_price_to_precision_when_between_ticks_takes_the_nearest() -> None:
    assert BTC.price_to_precision(100.004) == 100.0
    assert BTC.price_to_precision(100.006) == 100.01
    assert Market("X/Y", "X", "Y").price_to_precision(1.23456) == 1.23456


def test_refusal_when_below_the_minimums_says_which() -> None:
    market = Market("BTC/USDT", "BTC", "USDT", min_amount=0.001, min_cost=10.0)

    assert market.refusal(0.0005, 100_000.0) == "amount 0.0005 BTC is below the minimum 0.001"
    assert market.refusal(0.001, 5_000.0) == "cost 5 USDT is below the minimum 10"
    assert market.refusal(0.001, 20_000.0) == ""


def test_balance_when_asked_for_assets_answers_free_total_and_zero_for_absent() -> None:
    balance = Balance({"USDT": AssetBalance(free=900.0, used=100.0)})

    assert balance.free("USDT") == 900.0
    assert balance.total("USDT") == 1000.0
    assert balance.total("BTC") == 0.0
    with pytest.raises(TypeError):
        balance.assets["BTC"] = AssetBalance(1.0)  # type: ignore[index]


# -- the scripted exchange ------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(START)


@pytest.fixture
def exchange(fake: FakeTime) -> ScriptedExchange:
    return ScriptedExchange(
        fake.clock,
        markets=[BTC],
        tickers={"BTC/USDT": Ticker("BTC/USDT", START, last=100.0, bid=99.9, ask=100.1)},
        candles={("BTC/USDT", "1h"): [Candle(START, 1.0, 2.0, 0.5, 1.5, 10.0)]},
        balance=Balance({"USDT": AssetBalance(1000.0)}),
    )


def as_exchange(exchange: ScriptedExchange) -> Exchange:
    """Type-checks that the double satisfies the protocol (mypy reads this)."""
    return exchange


def test_scripted_exchange_when_asked_for_market_data_answers_what_it_was_given(
    exchange: ScriptedExchange,
) -> None:
    port = as_exchange(exchange)

    assert port.load_markets()["BTC/USDT"] == BTC
    assert port.fetch_ticker("BTC/USDT").last == 100.0
    assert port.fetch_balance().free("USDT") == 1000.0
    assert len(port.fetch_ohlcv("BTC/USDT", "1h", priority=PRIORITY_LOW)) == 1
    assert port.fetch_ohlcv("BTC/USDT", "1h", since=START + timedelta(hours=1)) == []
    assert exchange.priorities("fetch_ohlcv") == [PRIORITY_LOW, 5]


def test_create_order_when_the_client_id_exists_returns_the_same_order(
    exchange: ScriptedExchange,
) -> None:
    first = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, 0.5, client_order_id="mb-a"
    )
    again = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, 0.5, client_order_id="mb-a"
    )

    assert again == first
    assert exchange.fetch_order_by_client_id("mb-a") == first
    assert exchange.fetch_order_by_client_id("mb-b") is None
    assert exchange.fetch_open_orders() == [first]


def test_create_order_when_below_the_minimum_cost_is_rejected_with_the_reason(
    exchange: ScriptedExchange,
) -> None:
    order = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, 0.01, client_order_id="mb-a"
    )

    assert order.status is OrderStatus.REJECTED
    assert order.reason == "cost 1 USDT is below the minimum 10"
    assert exchange.fetch_closed_orders() == [order]


def test_create_order_when_a_quote_amount_buy_fills_buys_cost_over_price(
    exchange: ScriptedExchange,
) -> None:
    exchange.script_fill("mb-q", price=125.0)

    order = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.BUY, cost=500.0, client_order_id="mb-q"
    )

    assert order.status is OrderStatus.CLOSED
    assert order.filled == order.amount == 4.0
    assert order.quote_amount == 500.0
    assert [trade.amount for trade in exchange.fetch_my_trades("BTC/USDT")] == [4.0]


def test_scripted_fill_when_its_time_comes_lands_on_the_next_call(
    fake: FakeTime, exchange: ScriptedExchange
) -> None:
    exchange.script_fill("mb-a", price=101.0, at=START + timedelta(seconds=10))
    order = exchange.create_order(
        "BTC/USDT", OrderType.LIMIT, OrderSide.BUY, 0.5, 101.0, client_order_id="mb-a"
    )

    fake.sleep(9)
    assert exchange.fetch_order(order.id).is_open
    fake.sleep(1)
    filled = exchange.fetch_order(order.id)

    assert filled.status is OrderStatus.CLOSED
    assert filled.average == 101.0
    assert filled.last_trade_timestamp == START + timedelta(seconds=10)


def test_cancel_order_when_already_filled_returns_it_unchanged_and_unknown_ids_raise(
    exchange: ScriptedExchange,
) -> None:
    exchange.script_fill("mb-a", price=100.0)
    order = exchange.create_order(
        "BTC/USDT", OrderType.MARKET, OrderSide.SELL, 0.5, client_order_id="mb-a"
    )

    assert exchange.cancel_order(order.id) == order
    assert exchange.priorities("cancel_order") == [PRIORITY_EMERGENCY]
    with pytest.raises(OrderNotFoundError):
        exchange.cancel_order("404")
    with pytest.raises(OrderNotFoundError):
        exchange.fetch_order("404")


def test_script_error_when_set_raises_on_that_many_calls_only(
    exchange: ScriptedExchange,
) -> None:
    exchange.script_error("fetch_ticker", TemporaryError("exchange down"), times=2)

    for _ in range(2):
        with pytest.raises(TemporaryError):
            exchange.fetch_ticker("BTC/USDT")
    assert exchange.fetch_ticker("BTC/USDT").last == 100.0
