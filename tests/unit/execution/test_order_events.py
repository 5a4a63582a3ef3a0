"""Order events: past-tense records, their order_events rows, and events between two reports."""

from __future__ import annotations

import inspect
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketbot.execution import (
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    OrderUpdated,
    order_events,
)
from tests.support.fake_time import FakeTime
from tests.support.scripted_exchange import ScriptedExchange

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
CID = "mb-00000000000000000000000000001"

ONE_OF_EACH: list[OrderEvent] = [
    OrderDenied(
        client_order_id=CID, at=START, symbol="BTC/USDT", side=OrderSide.BUY, reason="exposure"
    ),
    OrderSubmitted(
        client_order_id=CID,
        at=START,
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        amount=0.5,
        price=100.0,
    ),
    OrderAccepted(client_order_id=CID, at=START, order_id="1", symbol="BTC/USDT"),
    OrderRejected(
        client_order_id=CID, at=START, order_id="", symbol="BTC/USDT", reason="min notional"
    ),
    OrderUpdated(
        client_order_id=CID, at=START, order_id="1", amount=0.5, price=99.0, stop_price=None
    ),
    OrderFilled(
        client_order_id=CID,
        at=START,
        order_id="1",
        symbol="BTC/USDT",
        side=OrderSide.BUY,
        trade_id="1-1",
        amount=0.25,
        price=99.0,
        filled=0.25,
        remaining=0.25,
        fee_cost=0.05,
        fee_currency="USDT",
    ),
    OrderCanceled(client_order_id=CID, at=START, order_id="1", filled=0.25, reason="timeout"),
    OrderExpired(client_order_id=CID, at=START, order_id="1", filled=0.0),
]


def test_kinds_when_each_event_class_is_its_snake_case_name() -> None:
    assert [event.kind for event in ONE_OF_EACH] == [
        "order_denied",
        "order_submitted",
        "order_accepted",
        "order_rejected",
        "order_updated",
        "order_filled",
        "order_canceled",
        "order_expired",
    ]


@pytest.mark.parametrize("event", ONE_OF_EACH, ids=lambda event: event.kind)
def test_to_row_when_any_event_has_the_four_columns_and_json_details(event: OrderEvent) -> None:
    row = event.to_row()

    assert set(row) == {"kind", "client_order_id", "at", "details"}
    assert row["client_order_id"] == CID
    assert row["at"] == START
    assert "client_order_id" not in row["details"]
    assert "at" not in row["details"]
    json.dumps(row["details"], allow_nan=False)


def test_to_row_when_given_to_the_store_matches_record_event_arguments() -> None:
    # The contract with the order_events table: a row is record_event's keyword arguments.
    from marketbot.store.bot_orders import OrderRepository

    parameters = inspect.signature(OrderRepository.record_event).parameters

    assert set(ONE_OF_EACH[0].to_row()) == set(parameters) - {"self"}


def test_to_row_when_order_filled_details_hold_the_fill_with_enum_values() -> None:
    row = ONE_OF_EACH[5].to_row()

    assert row["kind"] == "order_filled"
    assert row["details"] == {
        "order_id": "1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "trade_id": "1-1",
        "amount": 0.25,
        "price": 99.0,
        "filled": 0.25,
        "remaining": 0.25,
        "fee_cost": 0.05,
        "fee_currency": "USDT",
    }


def test_to_row_when_a_detail_is_not_finite_writes_null() -> None:
    event = OrderSubmitted(
        client_order_id=CID,
        at=datetime(2026, 3, 1, 12),
        symbol="BTC/USDT",
        side=OrderSide.SELL,
        type=OrderType.MARKET,
        amount=float("nan"),
    )

    row = event.to_row()

    assert row["details"]["amount"] is None
    assert row["at"] == START  # a naive time is taken as UTC


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(START)


@pytest.fixture
def exchange(fake: FakeTime) -> ScriptedExchange:
    return ScriptedExchange(fake.clock, fee_rate=0.001)


def place(exchange: ScriptedExchange, amount: float = 1.0) -> Order:
    return exchange.create_order(
        "BTC/USDT", OrderType.LIMIT, OrderSide.BUY, amount, 100.0, client_order_id=CID
    )


def test_order_events_when_first_seen_open_is_accepted(exchange: ScriptedExchange) -> None:
    events = order_events(None, place(exchange), START)

    assert events == [OrderAccepted(client_order_id=CID, at=START, order_id="1", symbol="BTC/USDT")]


def test_order_events_when_first_seen_rejected_is_only_rejected(
    exchange: ScriptedExchange,
) -> None:
    exchange.script_rejection(CID, "insufficient funds")

    events = order_events(None, place(exchange), START)

    assert [type(event) for event in events] == [OrderRejected]
    assert events[0].to_row()["details"]["reason"] == "insufficient funds"


def test_order_events_when_trades_arrive_gives_one_fill_each_then_the_cancel(
    fake: FakeTime, exchange: ScriptedExchange
) -> None:
    first = place(exchange)
    exchange.script_fill(CID, price=99.0, amount=0.25, at=START + timedelta(seconds=2))
    exchange.script_fill(CID, price=99.5, amount=0.25, at=START + timedelta(seconds=3))
    fake.sleep(5)
    second = exchange.fetch_order(first.id)
    third = exchange.cancel_order(first.id)
    now = fake.clock.now()

    fills = order_events(first, second, now)
    ending = order_events(second, third, now)

    assert [(type(e), e.at, e.amount, e.price, e.filled) for e in fills] == [  # type: ignore[attr-defined]
        (OrderFilled, START + timedelta(seconds=2), 0.25, 99.0, 0.25),
        (OrderFilled, START + timedelta(seconds=3), 0.25, 99.5, 0.5),
    ]
    assert fills[0].to_row()["details"]["fee_cost"] == pytest.approx(0.25 * 99.0 * 0.001)
    assert ending == [
        OrderCanceled(
            client_order_id=CID, at=now, order_id="1", filled=0.5, reason="canceled by request"
        )
    ]


def test_order_events_when_fills_come_without_trades_derives_the_fill_price(
    exchange: ScriptedExchange,
) -> None:
    before = replace(place(exchange), filled=0.5, remaining=0.5, average=100.0)
    after = replace(
        before,
        filled=1.0,
        remaining=0.0,
        average=101.0,
        status=OrderStatus.CLOSED,
        last_trade_timestamp=START + timedelta(seconds=9),
    )

    (event,) = order_events(before, after, START + timedelta(seconds=10))

    assert isinstance(event, OrderFilled)
    assert event.trade_id == ""
    assert event.amount == pytest.approx(0.5)
    assert event.price == pytest.approx(102.0)  # (101 x 1 - 100 x 0.5) / 0.5
    assert event.at == START + timedelta(seconds=9)


def test_order_events_when_edited_is_updated(exchange: ScriptedExchange) -> None:
    before = place(exchange)
    after = exchange.edit_order(before.id, "BTC/USDT", price=98.0)

    assert order_events(before, after, START) == [
        OrderUpdated(
            client_order_id=CID, at=START, order_id="1", amount=1.0, price=98.0, stop_price=None
        )
    ]


def test_order_events_when_nothing_changed_is_empty(exchange: ScriptedExchange) -> None:
    order = place(exchange)

    assert order_events(order, exchange.fetch_order(order.id), START) == []


def test_order_events_when_expired_is_expired(fake: FakeTime, exchange: ScriptedExchange) -> None:
    exchange.script_expiry(CID, at=START + timedelta(seconds=1))
    before = place(exchange)
    fake.sleep(1)

    events = order_events(before, exchange.fetch_order(before.id), fake.clock.now())

    assert [type(event) for event in events] == [OrderExpired]


# Fills in eighths of the amount (exact sums), polled at whole seconds.
@given(
    fills=st.lists(
        st.tuples(st.integers(min_value=1, max_value=8), st.integers(min_value=0, max_value=20)),
        max_size=5,
    ),
    poll_every=st.integers(min_value=1, max_value=7),
    cancel_at_end=st.booleans(),
)
def test_order_events_when_polled_the_fills_add_up_to_what_the_order_filled(
    fills: list[tuple[int, int]], poll_every: int, cancel_at_end: bool
) -> None:
    fake = FakeTime(START)
    exchange = ScriptedExchange(fake.clock)
    for eighths, at in fills:
        exchange.script_fill(
            CID, price=100.0 + at, amount=eighths / 8, at=START + timedelta(seconds=at)
        )
    previous = None
    current = place(exchange)
    events: list[OrderEvent] = []
    while True:
        events += order_events(previous, current, fake.clock.now())
        if not current.is_open or fake.clock.now() > START + timedelta(seconds=20):
            break
        fake.sleep(poll_every)
        previous, current = current, exchange.fetch_order(current.id)
    if cancel_at_end and current.is_open:
        previous, current = current, exchange.cancel_order(current.id)
        events += order_events(previous, current, fake.clock.now())

    filled_events = [event for event in events if isinstance(event, OrderFilled)]
    assert sum(event.amount for event in filled_events) == current.filled
    assert [event.filled for event in filled_events] == [
        sum(event.amount for event in filled_events[: index + 1])
        for index in range(len(filled_events))
    ]
    assert isinstance(events[0], OrderAccepted)
    assert sum(isinstance(event, OrderCanceled) for event in events) == (
        current.status is OrderStatus.CANCELED
    )
